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
@click.option(
    "--expire-reflogs",
    "expire",
    type=DURATION,
    default=None,
    metavar="DURATION",
    help="First drop reflog entries older than this (e.g. 90d), so deleted sessions and "
    "abandoned heads stop being kept; off by default: reflogs keep everything.",
)
@click.option("--no-repack", is_flag=True, help="Do not repack after deleting.")
@data_options
@pass_env
def gc_cmd(env: Env, dry_run: bool, grace: float, expire: float | None, no_repack: bool) -> None:
    """Remove unreachable objects (refs and reflogs are roots: nothing recoverable goes,
    unless --expire-reflogs drops old reflog entries first), then repack to free their
    bytes."""
    import time

    from ..repository.maintenance import gc
    from ..repository.views import GC_STATE_FILE

    state = env.repo_path / GC_STATE_FILE
    before = None if expire is None else time.time_ns() - int(expire * 1e9)
    with env.out.progress("collecting garbage"):
        report = env.run(
            lambda repo: gc(
                repo,
                grace_seconds=grace,
                dry_run=dry_run,
                state_file=state,
                expire_before_ns=before,
                repack=not no_repack,
            )
        )
    if env.json:
        env.out.json(dataclasses.asdict(report))
        return
    verb = "would delete" if dry_run else "deleted"
    count = len(report.deleted_ids) if dry_run else report.deleted
    expired = f"expired {report.expired_entries} reflog entries; " if expire is not None else ""
    repacked = (
        f"; repacked {report.repacked_objects} objects"
        if report.repacked_objects is not None
        else ""
    )
    env.out.line(
        f"{expired}scanned {report.scanned} objects: {report.reachable} reachable, "
        f"{report.candidates} unreachable; {verb} {count}, "
        f"{report.kept_in_grace} kept within the grace period{repacked}"
    )


def register(group: click.Group) -> None:
    group.add_command(gc_cmd)
