"""One call per ``sessctl`` verb: open the local repository and the remote, run, close.

These take the repository's root directory; the engine itself (``push``, ``fetch``,
``pull``, ``remote_status``, ``fsck_remote``) works on open objects and is what library
users and ``HybridBlockStorage`` call.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from ..errors import InvalidInputError
from ..repository.repo import Repository
from .checks import RemoteFsckReport, SessionStatus, fsck_remote, remote_status
from .common import Progress, tracking_prefix
from .config import RemoteSpec, add_remote, get_remote, load_remotes, remove_remote
from .fetch import FetchResult, fetch, pull
from .lazy import add_promisor, open_repository, remove_promisor
from .push import PushResult, push
from .session import SyncRemote, open_remote_from

__all__ = [
    "clone_repo",
    "fetch_repo",
    "fsck_remote_repo",
    "init_remote",
    "pull_repo",
    "push_repo",
    "remove_remote_repo",
    "status_repo",
]


@asynccontextmanager
async def _opened(
    root: Path | str, remote: str | None, user_id: str = ""
) -> AsyncIterator[tuple[Repository, SyncRemote]]:
    repo = await open_repository(root, user_id=user_id)
    try:
        spec = get_remote(root, remote)
        async with await open_remote_from(spec) as sync:
            yield repo, sync
    finally:
        await repo.close()


def _ids(session_ids: Sequence[str] | None) -> list[str] | None:
    return list(session_ids) if session_ids else None


async def init_remote(spec: RemoteSpec) -> None:
    """Create the remote's database, containers and Blob container (idempotent)."""
    remote = await open_remote_from(spec, create=True)
    await remote.close()


async def remove_remote_repo(root: Path | str, name: str) -> RemoteSpec:
    """Forget a remote, its tracking refs and its promisor entry."""
    spec = remove_remote(root, name)
    repo = await open_repository(root)
    try:
        async for ref, head in repo.refs.list(tracking_prefix(name)):
            await repo.refs.set_if_equals(ref, head, None, f"remote remove {name}")
    finally:
        await repo.close()
    remove_promisor(root, name)
    return spec


async def push_repo(
    root: Path | str,
    remote: str | None = None,
    session_ids: Sequence[str] | None = None,
    *,
    force: bool = False,
    progress: Progress | None = None,
) -> PushResult:
    async with _opened(root, remote) as (repo, sync):
        return await push(repo, sync, _ids(session_ids), force=force, progress=progress)


async def fetch_repo(
    root: Path | str,
    remote: str | None = None,
    session_ids: Sequence[str] | None = None,
    *,
    lazy: bool = False,
    progress: Progress | None = None,
) -> FetchResult:
    async with _opened(root, remote) as (repo, sync):
        if lazy:
            add_promisor(root, sync.name)  # before anything relies on the promise
        return await fetch(repo, sync, _ids(session_ids), lazy=lazy, progress=progress)


async def pull_repo(
    root: Path | str,
    remote: str | None = None,
    session_ids: Sequence[str] | None = None,
    *,
    lazy: bool = False,
    user_id: str = "",
    progress: Progress | None = None,
) -> FetchResult:
    async with _opened(root, remote, user_id) as (repo, sync):
        if lazy:
            add_promisor(root, sync.name)
        return await pull(repo, sync, _ids(session_ids), lazy=lazy, progress=progress)


async def clone_repo(
    spec: RemoteSpec,
    dest: Path | str,
    *,
    lazy: bool = False,
    progress: Progress | None = None,
) -> FetchResult:
    """A new local repository at ``dest`` with every session of the remote ``spec``.

    ``dest`` must not hold sessions already; ``spec`` is saved as its remote.
    """
    from ..repository.local import init_local

    root = Path(dest).expanduser()
    init_local(root)
    existing = load_remotes(root)
    if spec.name in existing and existing[spec.name] != spec:
        raise InvalidInputError(f"{root} already has a different remote {spec.name!r}")
    repo = await open_repository(root)
    try:
        if await repo.session_ids():
            raise InvalidInputError(f"{root} already holds sessions: use pull instead")
    finally:
        await repo.close()
    add_remote(root, spec, replace=True)
    if lazy:
        add_promisor(root, spec.name)
    async with _opened(root, spec.name) as (repo, sync):
        return await pull(repo, sync, None, lazy=lazy, progress=progress)


async def status_repo(root: Path | str, remote: str | None = None) -> list[SessionStatus]:
    """Ahead/behind per session against ``remote`` (no network: tracking refs only)."""
    name = get_remote(root, remote).name
    repo = await open_repository(root)
    try:
        return await remote_status(repo, name)
    finally:
        await repo.close()


async def fsck_remote_repo(
    root: Path | str, remote: str | None = None, *, sample: int | None = None
) -> RemoteFsckReport:
    spec = get_remote(root, remote)
    async with await open_remote_from(spec) as sync:
        return await fsck_remote(sync, sample=sample)
