"""sessctl fsck: verify every object and every reference."""

from __future__ import annotations

import dataclasses

import click

from ..errors import IntegrityError
from .context import Env, data_options, pass_env


@click.command("fsck", short_help="Verify every object and reference.")
@click.option("--remote", metavar="NAME", help="Check remote NAME instead of the local store.")
@click.option(
    "--sample",
    type=click.IntRange(min=1),
    metavar="N",
    help="With --remote: read and verify N random objects (and every ref target).",
)
@data_options
@pass_env
def fsck_cmd(env: Env, remote: str | None, sample: int | None) -> None:
    """Re-hash every object; check every ref, parent, chunk and link is present.

    Exits 5 when anything is wrong (each problem is printed).
    """
    from ..repository.maintenance import fsck

    if remote is not None:
        from .cmd_sync import fsck_remote_report

        fsck_remote_report(env, remote, sample)
        return
    if sample is not None:
        raise click.UsageError("--sample goes with --remote")

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
