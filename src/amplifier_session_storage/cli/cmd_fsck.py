"""sessctl fsck: verify every object and every reference."""

from __future__ import annotations

import dataclasses

import click

from ..errors import IntegrityError
from .context import Env, data_options, pass_env


@click.command("fsck", short_help="Verify every object and reference.")
@data_options
@pass_env
def fsck_cmd(env: Env) -> None:
    """Re-hash every object; check every ref, parent, chunk and link is present.

    Exits 5 when anything is wrong (each problem is printed).
    """
    from ..repository.maintenance import fsck

    with env.out.progress("checking objects"):
        report = env.run(fsck)
    if env.json:
        env.out.json({"ok": report.ok, **dataclasses.asdict(report)})
    else:
        for p in report.problems:
            env.out.line(f"{p['kind']} {p['object']}: {p['detail']}", "removed")
        env.out.line(
            f"checked {report.objects} objects ({report.blocks} blocks, "
            f"{report.chunks} chunks) and {report.refs} refs: "
            + ("ok" if report.ok else f"{len(report.problems)} problem(s)")
        )
    if not report.ok:
        n = len(report.problems)
        raise IntegrityError(f"fsck found {n} problem{'s' if n != 1 else ''}")


def register(group: click.Group) -> None:
    group.add_command(fsck_cmd)
