"""sessctl import / archive / export: Amplifier session folders in and out."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import IntegrityError, StorageError
from .context import Env, _user_id, complete_session, data_options, pass_env


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TB"


def _run_import(
    env: Env, path: Path, project: str | None, rescan: bool, verify: bool, compact: bool, what: str
) -> None:
    import asyncio

    from ..compat.amplifier.archive import import_tree
    from ..repository.local import init_local

    init_local(env.repo_path)
    with env.out.progress(f"{what} sessions") as bar:

        def tick(index: int, total: int, session_id: str) -> None:
            bar.update(completed=index, total=total, description=f"{what} {session_id[:24]}")

        summary = asyncio.run(
            import_tree(
                env.repo_path,
                path,
                user_id=_user_id() or "local",
                project_filter=project,
                skip_if_exists=not rescan,
                verify=verify,
                compact=compact,
                on_progress=tick,
            )
        )
    if env.json:
        env.out.json(summary.to_json())
    else:
        for w in summary.warnings:
            env.out.note(f"warning: {w}")
        for f in summary.failures:
            env.out.note(f"failed: {f['session_id']} ({f['path']}): {f['error']}")
        env.out.line(
            f"{summary.sessions} sessions: {summary.completed} imported, "
            f"{summary.skipped} unchanged, {summary.failed} failed; "
            f"{_human(summary.bytes_in)} in, {_human(summary.stored_added)} stored "
            f"({summary.ratio:.1f}x smaller)"
            + (f"; {summary.verified} verified byte-identical" if verify else "")
        )
    if summary.mismatches:
        raise IntegrityError(
            f"export differs from the source for {len(summary.mismatches)} "
            f"session(s): {', '.join(summary.mismatches[:5])}"
        )
    if summary.failed and not summary.completed and not summary.skipped:
        raise StorageError(f"all {summary.failed} session(s) failed to import")


@click.command("import", short_help="Import Amplifier session folders.")
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--project", help="Only this project slug.")
@click.option("--rescan", is_flag=True, help="Re-check sessions already imported.")
@data_options
@pass_env
def import_cmd(env: Env, path: Path, project: str | None, rescan: bool) -> None:
    """Import every session under PATH (~/.amplifier or a projects/ or sessions/ folder).

    Re-running picks up lines appended since; bad lines are reported (file:line) and
    everything else is imported.
    """
    _run_import(env, path, project, rescan, verify=False, compact=False, what="importing")


@click.command("archive", short_help="Import, verify byte-identity, and compact.")
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--project", help="Only this project slug.")
@click.option("--no-verify", is_flag=True, help="Skip the byte-identical export check.")
@data_options
@pass_env
def archive_cmd(env: Env, path: Path, project: str | None, no_verify: bool) -> None:
    """Archive the sessions under PATH: import them, export each again and compare it
    byte for byte with its source, then repack the store. The source is never modified."""
    _run_import(
        env, path, project, rescan=True, verify=not no_verify, compact=True, what="archiving"
    )


@click.command("export", short_help="Write sessions back in Amplifier's layout.")
@click.argument("sessions", nargs=-1, shell_complete=complete_session)
@click.option(
    "--to",
    "dest",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Destination folder (one subfolder per session, or the Amplifier layout with --all).",
)
@click.option(
    "--all",
    "all_",
    is_flag=True,
    help="Export every session under DEST in the projects/<slug>/sessions/<id>/ layout.",
)
@click.option("--project", help="With --all: only this project.")
@data_options
@pass_env
def export_cmd(
    env: Env, sessions: tuple[str, ...], dest: Path, all_: bool, project: str | None
) -> None:
    """Write SESSIONS (or --all) as transcript.jsonl, events.jsonl and metadata.json,
    byte-identical to what was imported."""
    from ..compat.amplifier.exporter import export_all, export_session

    if not sessions and not all_:
        raise click.UsageError("name sessions to export, or --all")
    if sessions and all_:
        raise click.UsageError("give sessions or --all, not both")

    async def go(repo):  # type: ignore[no-untyped-def]
        if all_:
            return await export_all(repo, dest, project_filter=project)
        return [await export_session(repo, sid, dest / sid) for sid in sessions]

    results = env.run(go)
    if env.json:
        env.out.json(
            [
                {
                    "session_id": r.session_id,
                    "path": str(r.path),
                    "files": r.files,
                    "messages": r.messages,
                    "events": r.events,
                }
                for r in results
            ]
        )
    else:
        for r in results:
            env.out.line(f"{r.session_id} -> {r.path} ({r.messages} messages, {r.events} events)")


def register(group: click.Group) -> None:
    group.add_command(import_cmd)
    group.add_command(archive_cmd)
    group.add_command(export_cmd)
