"""What push, fetch and the checks share: tracking refs, progress, ranged downloads."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import Any, TypeVar

from ..core.codec import unframe
from ..core.ids import ObjectId, validate_name
from ..core.refnames import session_ref
from ..errors import CorruptObjectError, NotFoundError
from ..repository.repo import Repository
from ..stores.cosmos_index import Location
from ..stores.visibility import Access
from .session import SyncRemote

__all__ = [
    "Progress",
    "access_of",
    "download",
    "gather",
    "leaf_packs",
    "locate",
    "locate_blocks",
    "set_tracking",
    "task_group",
    "tracking_prefix",
    "tracking_ref",
]

T = TypeVar("T")
# progress(what, done, total): what is "sessions", "objects" or "bytes"
Progress = Callable[[str, int, int], None]
DOWNLOAD_PACKS_AT_ONCE = 4
POINT_READS_MAX = 2  # up to this many ids: point reads (1 RU each); more: one query
POINT_READS_AT_ONCE = 8
IDX_AT_ONCE = 4


def _first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            return _first_error(exc)
        if not isinstance(exc, asyncio.CancelledError):
            return exc
    return group.exceptions[0]


@contextlib.asynccontextmanager
async def task_group() -> AsyncIterator[asyncio.TaskGroup]:
    """An ``asyncio.TaskGroup`` (the first failure cancels the other tasks) that raises
    that first error itself rather than an ``ExceptionGroup``, so callers see the typed
    errors of the stores."""
    try:
        async with asyncio.TaskGroup() as tasks:
            yield tasks
    except BaseExceptionGroup as group:
        raise _first_error(group) from None


async def gather(*aws: Awaitable[T]) -> list[T]:
    """``asyncio.gather`` that cancels the others when one fails (see :func:`task_group`)."""

    async def wrap(aw: Awaitable[T]) -> T:
        return await aw

    async with task_group() as tasks:
        started = [tasks.create_task(wrap(a)) for a in aws]
    return [t.result() for t in started]


def tracking_ref(remote: str, session_id: str) -> str:
    """``remotes/<remote>/sessions/<id>``: what the remote had at the last push or fetch."""
    return f"remotes/{validate_name(remote, 'remote name')}/{session_ref(session_id)}"


def tracking_prefix(remote: str) -> str:
    return f"remotes/{validate_name(remote, 'remote name')}/sessions/"


async def set_tracking(
    repo: Repository, remote: str, session_id: str, head: ObjectId | None, reason: str
) -> None:
    """Point the tracking ref at ``head`` (plain compare-and-swap from its current value)."""
    name = tracking_ref(remote, session_id)
    for _ in range(16):
        old = await repo.refs.get(name)
        if old == head:
            return
        if await repo.refs.set_if_equals(name, old, head, reason):
            return


def access_of(summary: Mapping[str, Any] | None) -> Access:
    """The sharing settings of a session summary; private when absent or malformed."""
    try:
        return Access.of(summary or {})
    except (ValueError, TypeError):
        return Access()


async def locate_blocks(remote: SyncRemote, ids: Iterable[ObjectId]) -> dict[ObjectId, Location]:
    """Where those of ``ids`` that have an object document are (blocks; any object of a
    format-1 remote).

    One or two ids are point reads (the cheapest Cosmos DB operation); more are batched
    queries (1,000 ids per request), whose cost, like a point read's, does not depend on
    how much the partition holds (the index on ``id``).
    """
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return {}
    index, user = remote.index, remote.user_id
    if len(wanted) > POINT_READS_MAX:
        return await remote.call(lambda: index.locate_many(user, wanted), "locate objects")
    sem = asyncio.Semaphore(POINT_READS_AT_ONCE)

    async def one(oid: ObjectId) -> tuple[ObjectId, Location | None]:
        async with sem:
            return oid, await remote.call(lambda: index.locate(user, oid), "locate object")

    found = await asyncio.gather(*(one(o) for o in wanted))
    return {oid: loc for oid, loc in found if loc is not None}


async def leaf_packs(remote: SyncRemote, ids: Iterable[ObjectId]) -> dict[ObjectId, str]:
    """The pack holding each of ``ids`` that a pack document lists (1,000 ids per query)."""
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return {}
    index, user = remote.index, remote.user_id
    return await remote.call(lambda: index.packs_of(user, wanted), "locate leaf objects")


async def _locate_listed(remote: SyncRemote, ids: Iterable[ObjectId]) -> dict[ObjectId, Location]:
    packs = await leaf_packs(remote, ids)
    by_pack: dict[str, list[ObjectId]] = defaultdict(list)
    for oid, pack in packs.items():
        by_pack[pack].append(oid)
    sem = asyncio.Semaphore(IDX_AT_ONCE)
    out: dict[ObjectId, Location] = {}

    async def one(pack: str, oids: list[ObjectId]) -> None:
        async with sem:
            try:
                entries = await remote.call(
                    lambda: remote.blobs.pack_index(pack), f"read the idx of pack {pack[:12]}"
                )
            except NotFoundError as exc:
                raise CorruptObjectError(
                    f"pack {pack}: listed by a pack document, but its idx is missing", pack
                ) from exc
        for oid in oids:
            entry = entries.get(oid)
            if entry is None:
                raise CorruptObjectError(
                    f"object {oid.hex()}: listed in pack {pack}, which does not hold it",
                    oid.hex(),
                )
            out[oid] = Location(pack, *entry)

    await asyncio.gather(*(one(p, o) for p, o in by_pack.items()))
    return out


async def locate(
    remote: SyncRemote, ids: Iterable[ObjectId], *, leaves: bool = False
) -> dict[ObjectId, Location]:
    """Where those of ``ids`` that the remote records are, whatever records them.

    Blocks have object documents; leaves (``leaves=True``: chunks, links) are listed by
    pack documents and their offsets read from the packs' idx blobs (one download per
    pack, cached). The likelier kind is asked first, the other only for what is left.
    """
    wanted = list(dict.fromkeys(ids))
    first, second = (_locate_listed, locate_blocks) if leaves else (locate_blocks, _locate_listed)
    found = await first(remote, wanted)
    rest = [o for o in wanted if o not in found]
    if rest:
        found.update(await second(remote, rest))
    return found


async def download(
    remote: SyncRemote, wanted: Mapping[ObjectId, Location], progress: Progress | None = None
) -> dict[ObjectId, bytes]:
    """The verified frames of ``wanted``: few ranged reads per pack, packs concurrently.

    Every frame is unframed and checked against its id (IntegrityError otherwise); the
    frames are returned as stored (no re-compression).
    """
    by_pack: dict[str, list[tuple[ObjectId, Location]]] = defaultdict(list)
    for oid, loc in wanted.items():
        by_pack[loc.pack].append((oid, loc))
    out: dict[ObjectId, bytes] = {}
    sem = asyncio.Semaphore(DOWNLOAD_PACKS_AT_ONCE)
    total_bytes = sum(loc.length for loc in wanted.values())
    done = [0, 0]

    async def one(pack: str, items: list[tuple[ObjectId, Location]]) -> None:
        ranges = [(loc.offset, loc.length) for _, loc in items]
        async with sem:
            frames = await remote.call(
                lambda: remote.blobs.read_ranges(pack, ranges), f"read pack {pack[:12]}"
            )
        for (oid, _), data in zip(items, frames, strict=True):
            unframe(oid, data)  # verify before anything is stored
            out[oid] = data
            done[0] += 1
            done[1] += len(data)
        if progress is not None:
            progress("objects", done[0], len(wanted))
            progress("bytes", done[1], total_bytes)

    await asyncio.gather(*(one(p, items) for p, items in by_pack.items()))
    return out


def chunks_of(ids: Iterable[ObjectId], size: int) -> list[list[ObjectId]]:
    items = list(ids)
    return [items[i : i + size] for i in range(0, len(items), size)]
