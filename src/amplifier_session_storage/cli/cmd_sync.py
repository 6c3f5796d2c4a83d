"""sessctl push | pull | fetch | clone, and the remote halves of status and fsck.

Each verb makes one library call (``remote.api``) and prints a summary: objects, bytes and
HTTP requests. A push that is not a fast-forward (or loses a race with another push) exits
4 after printing what it did push.
"""

from __future__ import annotations

import asyncio
import getpass
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

from .cmd_remote import repository_root, spec_from, spec_options
from .context import Env, complete_session, data_options, pass_env

if TYPE_CHECKING:
    from ..remote.fetch import FetchResult
    from ..remote.push import PushResult

__all__ = ["fsck_remote_report", "register", "remote_status_report"]


def _size(n: int) -> str:
    from ..repository.views import human_size

    return human_size(n)


@contextmanager
def _progress(env: Env, verb: str) -> Iterator[Callable[[str, int, int], None]]:
    """A progress callback drawing objects and bytes (a no-op off a terminal)."""
    with env.out.progress(verb) as bar:
        state = {"objects": (0, 0), "bytes": (0, 0), "sessions": (0, 0)}

        def update(what: str, done: int, total: int) -> None:
            state[what] = (done, total)
            objs, size = state["objects"], state["bytes"]
            sess = state["sessions"]
            bar.update(
                completed=objs[0],
                total=objs[1] or None,
                description=f"{verb}: session {sess[0]}/{sess[1] or '?'}, "
                f"{_size(size[0])}/{_size(size[1])}",
            )

        yield update


def _traffic(t: Any) -> str:
    return f"{t.requests} requests ({_size(t.bytes_sent)} sent, {_size(t.bytes_received)} received)"


def _ids(sessions: tuple[str, ...], all_: bool, default_all: bool) -> list[str] | None:
    if sessions and all_:
        raise click.UsageError("give session ids or --all, not both")
    if not sessions and not all_ and not default_all:
        raise click.UsageError("name the sessions to push, or give --all")
    return list(sessions) or None


def _print_push(env: Env, result: PushResult) -> None:
    if env.json:
        env.out.json(result.to_json())
        return
    for s in result.sessions:
        old = s.old.hex()[:12] if s.old else "(none)"
        new = s.new.hex()[:12] if s.new else "(none)"
        style = "removed" if s.status == "rejected" else ""
        env.out.line(f"{s.status:<12} {s.session_id}  {old}..{new}  {s.objects} objects", style)
        if s.message:
            env.out.note(f"  {s.message}")
    counts: dict[str, int] = {}
    for s in result.sessions:
        counts[s.status] = counts.get(s.status, 0) + 1
    how = ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "nothing"
    env.out.note(
        f"pushed to {result.remote}: {how}; {result.objects} objects, {_size(result.bytes)} "
        f"in {result.packs} pack(s); {_traffic(result.transfer)} in {result.seconds:.1f} s"
    )


def _print_fetch(env: Env, result: FetchResult, verb: str) -> None:
    if env.json:
        env.out.json(result.to_json())
        return
    for s in result.sessions:
        what = s.integration or s.status
        new = s.new.hex()[:12] if s.new else "(none)"
        env.out.line(f"{what:<12} {s.session_id}  {new}  {s.objects} objects")
    env.out.note(
        f"{verb} from {result.remote}{' (lazy)' if result.lazy else ''}: "
        f"{len(result.sessions)} session(s); {result.objects} objects, {_size(result.bytes)}; "
        f"{_traffic(result.transfer)} in {result.seconds:.1f} s"
    )


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return ""


@click.command("push", short_help="Send sessions to a remote.")
@click.argument("sessions", nargs=-1, shell_complete=complete_session)
@click.option("--all", "all_", is_flag=True, help="Every local session.")
@click.option("--remote", metavar="NAME", help="The remote (default: origin or the only one).")
@click.option("--force", is_flag=True, help="Overwrite remote history that is not local.")
@data_options
@pass_env
def push_cmd(
    env: Env, sessions: tuple[str, ...], all_: bool, remote: str | None, force: bool
) -> None:
    """Upload what the remote lacks, then move its refs (compare-and-swap).

    Exits 4 when a session is not a fast-forward of the remote (pull first, or --force).
    """
    from ..remote.api import push_repo
    from ..remote.push import PushRejectedError

    ids = _ids(sessions, all_, default_all=False)
    try:
        with _progress(env, "pushing") as progress:
            result = asyncio.run(
                push_repo(repository_root(env), remote, ids, force=force, progress=progress)
            )
    except PushRejectedError as exc:
        _print_push(env, exc.result)
        raise
    _print_push(env, result)


def _fetch_like(verb: str, pull: bool) -> click.Command:
    @click.command(verb, short_help=f"{verb.capitalize()} sessions from a remote.")
    @click.argument("sessions", nargs=-1, shell_complete=complete_session)
    @click.option("--all", "all_", is_flag=True, help="Every session of the remote (default).")
    @click.option("--remote", metavar="NAME", help="The remote (default: origin or the only one).")
    @click.option(
        "--lazy", is_flag=True, help="Blocks only; payload chunks are fetched on first read."
    )
    @data_options
    @pass_env
    def cmd(
        env: Env, sessions: tuple[str, ...], all_: bool, remote: str | None, lazy: bool
    ) -> None:
        from ..remote.api import fetch_repo, pull_repo

        ids = _ids(sessions, all_, default_all=True)
        with _progress(env, f"{verb}ing") as progress:
            if pull:
                result = asyncio.run(
                    pull_repo(
                        repository_root(env),
                        remote,
                        ids,
                        lazy=lazy,
                        user_id=_user(),
                        progress=progress,
                    )
                )
            else:
                result = asyncio.run(
                    fetch_repo(repository_root(env), remote, ids, lazy=lazy, progress=progress)
                )
        _print_fetch(env, result, verb)

    cmd.help = (
        "Fetch new blocks and objects, then bring local sessions up to date (fast-forward, "
        "or merge when both sides changed)."
        if pull
        else "Download new blocks and objects and move the tracking refs "
        "(remotes/NAME/sessions/ID); local sessions are left alone."
    )
    return cmd


@click.command("clone", short_help="A new repository with every session of a remote.")
@click.argument("dest", required=False, type=click.Path(file_okay=False, path_type=str))
@click.option("--name", default="origin", show_default=True, help="Name of the remote.")
@spec_options
@click.option("--lazy", is_flag=True, help="Blocks only; payload chunks come on first read.")
@data_options
@pass_env
def clone_cmd(env: Env, /, dest: str | None, name: str, lazy: bool, **options: Any) -> None:
    """Create DEST (default: --repo) and fetch every session of the remote into it."""
    from pathlib import Path

    from ..remote.api import clone_repo

    spec = spec_from(name, options)
    root = Path(dest).expanduser() if dest else env.repo_path
    with _progress(env, "cloning") as progress:
        result = asyncio.run(clone_repo(spec, root, lazy=lazy, progress=progress))
    _print_fetch(env, result, "cloned")


# ---------------------------------------------------------------------- status / fsck
def remote_status_report(env: Env, remote: str | None) -> None:
    """``sessctl status --remote NAME``: ahead/behind per session (no network)."""
    from ..remote.api import status_repo

    rows = asyncio.run(status_repo(repository_root(env), remote))
    if env.json:
        env.out.json([r.to_json() for r in rows])
        return
    table = []
    for r in rows:
        plus = "+" if r.capped else ""
        table.append([r.session_id, r.state, f"{r.ahead}{plus}", f"{r.behind}{plus}"])
    if table:
        env.out.table(["SESSION", "STATE", "AHEAD", "BEHIND"], table)
    pending = sum(1 for r in rows if r.state != "up-to-date")
    name = rows[0].remote if rows else remote or "the remote"
    env.out.note(f"{len(rows)} session(s), {pending} not in sync with {name}")


def fsck_remote_report(env: Env, remote: str | None, sample: int | None) -> None:
    """``sessctl fsck --remote NAME [--sample N]``: exits 5 when anything is wrong."""
    from ..errors import IntegrityError
    from ..remote.api import fsck_remote_repo

    with env.out.progress("checking the remote"):
        report = asyncio.run(fsck_remote_repo(repository_root(env), remote, sample=sample))
    if env.json:
        env.out.json(report.to_json())
    else:
        for p in report.problems:
            env.out.line(f"{p['kind']} {p['object']}: {p['detail']}", "removed")
        scope = f" (a sample of {report.objects})" if report.sampled else ""
        env.out.line(
            f"remote {report.remote}: {report.refs} refs, {report.object_docs} recorded "
            f"objects ({report.pack_docs} pack documents); read and verified "
            f"{report.objects} objects{scope} ({report.blocks} "
            f"blocks, {report.chunks} chunks) in {report.packs} packs: "
            + ("ok" if report.ok else f"{len(report.problems)} problem(s)")
        )
    if not report.ok:
        n = len(report.problems)
        raise IntegrityError(f"fsck --remote found {n} problem{'s' if n != 1 else ''}")


def register(group: click.Group) -> None:
    group.add_command(push_cmd)
    group.add_command(_fetch_like("pull", pull=True))
    group.add_command(_fetch_like("fetch", pull=False))
    group.add_command(clone_cmd)
