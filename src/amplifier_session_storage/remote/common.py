"""What push, fetch and the checks share: tracking refs, progress, ranged downloads."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..core.codec import unframe
from ..core.ids import ObjectId, validate_name
from ..core.refnames import session_ref
from ..repository.repo import Repository
from ..stores.cosmos_index import Location
from ..stores.visibility import Access
from .session import SyncRemote

__all__ = [
    "Progress",
    "access_of",
    "download",
    "locate",
    "set_tracking",
    "tracking_prefix",
    "tracking_ref",
]

# progress(what, done, total): what is "sessions", "objects" or "bytes"
Progress = Callable[[str, int, int], None]
DOWNLOAD_PACKS_AT_ONCE = 4
POINT_READS_MAX = 32  # up to this many ids: point reads (1 RU each, no query engine)
POINT_READS_AT_ONCE = 8


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


async def locate(remote: SyncRemote, ids: Iterable[ObjectId]) -> dict[ObjectId, Location]:
    """Where those of ``ids`` that the remote has are.

    A few ids are point reads (the cheapest Cosmos DB operation, and independent of how
    much the partition holds); more are batched ``IN`` queries (256 ids per request).
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
