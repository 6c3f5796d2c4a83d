"""sessctl gc: delete objects nothing can reach any more, after a grace period."""

from __future__ import annotations

import dataclasses

import click

from .context import Env, data_options, pass_env
from .params import DURATION


@click.command("gc", short_help="Delete unreachable objects after a grace period.")
@click.option("--dry-run", is_flag=True, help="Only say what would be deleted.")
@click.option(
    "--grace",
    type=DURATION,
    default="14d",
    show_default=True,
    metavar="DURATION",
    help="Delete only what an earlier gc saw unreachable this long ago "
    "(e.g. 0, 90s, 30m, 12h, 14d, 2w).",
)
@data_options
@pass_env
def gc_cmd(env: Env, dry_run: bool, grace: float) -> None:
    """Remove unreachable objects (refs and reflogs are roots: nothing recoverable goes)."""
    from ..repository.maintenance import gc
    from ..repository.views import GC_STATE_FILE

    state = env.repo_path / GC_STATE_FILE
    with env.out.progress("collecting garbage"):
        report = env.run(
            lambda repo: gc(repo, grace_seconds=grace, dry_run=dry_run, state_file=state)
        )
    if env.json:
        env.out.json(dataclasses.asdict(report))
        return
    verb = "would delete" if dry_run else "deleted"
    count = len(report.deleted_ids) if dry_run else report.deleted
    env.out.line(
        f"scanned {report.scanned} objects: {report.reachable} reachable, "
        f"{report.candidates} unreachable; {verb} {count}, "
        f"{report.kept_in_grace} kept within the grace period"
    )


def register(group: click.Group) -> None:
    group.add_command(gc_cmd)
