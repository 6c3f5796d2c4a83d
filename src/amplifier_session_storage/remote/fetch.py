"""Fetch and pull: bring a remote's new blocks and objects into the local repository.

Fetch, per session:

1. the remote head ``R`` (one fan-out listing for all sessions, or one point read each);
2. if the local repository has ``R``, only the tracking ref moves;
3. otherwise one paged query of the session's block index documents with a sequence above
   the tracking ref's (``blocks_since``) tells which blocks are new and where their frames
   are; the DAG is followed from ``R`` through the documents' parent lists, in memory;
   parents the documents do not cover (a fork's source blocks in another session's
   partition, a rewind below the tracking ref) are located with one batched query per
   round, downloaded and decoded, and their session's index is read when it is another;
4. the new block frames are downloaded with ranged reads grouped by pack and verified
   (``unframe``); then, unless ``lazy``, every payload chunk and link they name that is
   not local (one batched location query, ranged reads);
5. everything is stored locally in ONE batch (objects before the ref), then the tracking ref
   ``remotes/<name>/sessions/<id>`` moves to ``R``.

Pull = fetch, then integrate each session: create the local ref at ``R``, fast-forward,
nothing when the local head is ahead, or ``Repository.merge`` when the lines diverged
(a MERGE block: sessions merge across devices, nothing is lost or duplicated).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..core.codec import unframe
from ..core.ids import ObjectId
from ..core.objects import Block, decode_block
from ..core.refnames import session_ref
from ..errors import ConflictError, IntegrityError, SessionNotFoundError
from ..repository.repo import Repository
from ..stores.cosmos_index import Location
from .common import Progress, download, locate, set_tracking, tracking_ref
from .session import SyncRemote
from .stats import TransferStats

__all__ = ["FetchResult", "SessionFetch", "fetch", "pull", "remote_heads"]


@dataclass
class SessionFetch:
    """One session: ``status`` is ``new``, ``updated``, ``up-to-date`` or ``gone`` (no such
    session on the remote); after a pull ``integration`` is ``created``, ``fast-forward``,
    ``merged``, ``up-to-date`` or ``ahead`` and ``head`` the local head."""

    session_id: str
    status: str
    old: ObjectId | None
    new: ObjectId | None
    blocks: int = 0
    objects: int = 0
    bytes: int = 0
    integration: str = ""
    head: ObjectId | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "status": self.status,
            "old": self.old.hex() if self.old else None,
            "new": self.new.hex() if self.new else None,
            "blocks": self.blocks,
            "objects": self.objects,
            "bytes": self.bytes,
            "integration": self.integration or None,
            "head": self.head.hex() if self.head else None,
        }


@dataclass
class FetchResult:
    """Every session's outcome and the totals (``transfer``: HTTP requests and body bytes)."""

    remote: str
    lazy: bool = False
    sessions: list[SessionFetch] = field(default_factory=list)
    objects: int = 0
    bytes: int = 0
    seconds: float = 0.0
    transfer: TransferStats = field(default_factory=TransferStats)

    def to_json(self) -> dict[str, Any]:
        return {
            "remote": self.remote,
            "lazy": self.lazy,
            "sessions": [s.to_json() for s in self.sessions],
            "objects": self.objects,
            "bytes": self.bytes,
            "seconds": round(self.seconds, 3),
            **self.transfer.to_json(),
        }


async def remote_heads(
    remote: SyncRemote, session_ids: Iterable[str] | None = None
) -> dict[str, ObjectId | None]:
    """The remote's session heads: all of them (one listing) or those asked for."""
    if session_ids is None:
        prefix = "sessions/"
        return {name[len(prefix) :]: head async for name, head in remote.refs.list(prefix)}
    return {sid: await remote.refs.get(session_ref(sid)) for sid in session_ids}


class _Fetch:
    def __init__(
        self, repo: Repository, remote: SyncRemote, lazy: bool, progress: Progress | None
    ) -> None:
        self.repo = repo
        self.remote = remote
        self.user = remote.user_id
        self.lazy = lazy
        self.progress = progress

    async def _floor(self, sid: str, tracking: ObjectId | None) -> int:
        for cand in (tracking, await self.repo.head(sid)):
            if cand is not None and await self.repo.objects.has(cand):
                return (await self.repo.get_block(cand, resolve=False)).sequence
        return 0

    async def _index(self, sid: str, floor: int) -> dict[ObjectId, dict[str, Any]]:
        index, user = self.remote.index, self.user
        docs = await self.remote.call(
            lambda: index.blocks_since(user, sid, floor), f"read the block index of {sid}"
        )
        return {ObjectId.from_hex(str(d["id"])): d for d in docs}

    async def new_blocks(
        self, sid: str, rhead: ObjectId, floor: int
    ) -> tuple[dict[ObjectId, Block], dict[ObjectId, bytes]]:
        """The blocks reachable from ``rhead`` that are not local, verified, with frames."""
        repo, remote = self.repo, self.remote
        docmap = await self._index(sid, floor)
        partitions = {sid}
        listed: dict[ObjectId, Location] = {}
        blocks: dict[ObjectId, Block] = {}
        frames: dict[ObjectId, bytes] = {}
        seen: set[ObjectId] = set()
        stack = [rhead]
        while stack:
            unresolved: list[ObjectId] = []
            while stack:
                oid = stack.pop()
                if oid in seen:
                    continue
                seen.add(oid)
                doc = docmap.get(oid)
                if doc is None:
                    unresolved.append(oid)
                    continue
                listed[oid] = Location.of(doc)
                stack.extend(ObjectId.from_hex(str(p)) for p in doc.get("parents") or ())
            if not unresolved:
                break
            local = await repo.objects.has_many(unresolved)
            rest = [o for o in unresolved if o not in local]
            if not rest:
                continue
            locs = await locate(remote, rest)
            lost = [o for o in rest if o not in locs]
            if lost:
                raise IntegrityError(
                    f"the remote lacks block {lost[0].hex()} (needed by session {sid})",
                    lost[0].hex(),
                )
            got = await download(remote, locs)
            for oid in rest:
                block = decode_block(unframe(oid, got[oid]), oid)
                blocks[oid] = block
                frames[oid] = got[oid]
                stack.extend(block.parents)
                other = block.session_id
                if other not in partitions:  # shared history of a fork: read its index too
                    partitions.add(other)
                    docmap.update(
                        {k: v for k, v in (await self._index(other, 0)).items() if k not in docmap}
                    )
        local = await repo.objects.has_many(listed)
        wanted = {o: loc for o, loc in listed.items() if o not in local}
        got = await download(remote, wanted, self.progress)
        for oid in wanted:
            block = decode_block(unframe(oid, got[oid]), oid)
            doc_parents = [str(p) for p in docmap[oid].get("parents") or ()]
            if [p.hex() for p in block.parents] != doc_parents:
                raise IntegrityError(
                    f"block {oid.hex()}: its index document lists other parents", oid.hex()
                )
            blocks[oid] = block
            frames[oid] = got[oid]
        return blocks, frames

    async def objects_of(self, blocks: Iterable[Block]) -> dict[ObjectId, bytes]:
        """The payload chunks and links of ``blocks`` that are not local."""
        refs: dict[ObjectId, None] = {}
        for b in blocks:
            refs.update(dict.fromkeys(b.object_refs()))
        if not refs:
            return {}
        local = await self.repo.objects.has_many(refs)
        want = [o for o in refs if o not in local]
        if not want:
            return {}
        locs = await locate(self.remote, want, leaves=True)
        lost = [o for o in want if o not in locs]
        if lost:
            raise IntegrityError(f"the remote lacks object {lost[0].hex()}", lost[0].hex())
        return await download(self.remote, locs, self.progress)

    async def session(self, sid: str, rhead: ObjectId | None) -> SessionFetch:
        repo = self.repo
        tracking = await repo.refs.get(tracking_ref(self.remote.name, sid))
        out = SessionFetch(sid, "up-to-date", tracking, rhead)
        if rhead is None:
            out.status = "gone"
            return out
        if not await repo.objects.has(rhead):
            floor = await self._floor(sid, tracking)
            blocks, frames = await self.new_blocks(sid, rhead, floor)
            chunks = {} if self.lazy else await self.objects_of(blocks.values())
            items = list(chunks.items()) + [(o, frames[o]) for o in blocks]
            if items:
                await repo.objects.put_many(items)  # one batch, before any ref moves
            out.blocks = len(blocks)
            out.objects = len(items)
            out.bytes = sum(len(f) for _, f in items)
        if tracking != rhead:
            out.status = "new" if tracking is None else "updated"
            await set_tracking(repo, self.remote.name, sid, rhead, "fetch")
        return out


async def fetch(
    repo: Repository,
    remote: SyncRemote,
    session_ids: Iterable[str] | None = None,
    *,
    lazy: bool = False,
    progress: Progress | None = None,
) -> FetchResult:
    """Fetch sessions (default: every session of the remote); see the module docstring.

    ``lazy`` fetches blocks only: payload chunks and links come on first read through
    :class:`~.lazy.PromisorObjectStore` (the caller records the remote as a promisor).
    """
    started = time.perf_counter()
    before = remote.stats.snapshot()
    result = FetchResult(remote.name, lazy)
    heads = await remote_heads(remote, session_ids)
    if session_ids is not None:
        gone = [sid for sid, h in heads.items() if h is None]
        if gone:
            raise SessionNotFoundError(gone[0], f"no session {gone[0]!r} on remote {remote.name}")
    work = _Fetch(repo, remote, lazy, progress)
    for n, (sid, head) in enumerate(sorted(heads.items()), 1):
        # From the presence checks to the tracking ref's move: no gc sweep in between.
        async with repo.writing():
            one = await work.session(sid, head)
        result.sessions.append(one)
        result.objects += one.objects
        result.bytes += one.bytes
        if progress is not None:
            progress("sessions", n, len(heads))
    result.seconds = time.perf_counter() - started
    result.transfer = remote.stats.since(before)
    return result


async def _integrate(repo: Repository, remote: SyncRemote, one: SessionFetch) -> None:
    sid, rhead = one.session_id, one.new
    if rhead is None:
        return
    local = await repo.head(sid)
    if local == rhead:
        one.integration, one.head = "up-to-date", local
        return
    if local is not None and await repo.is_ancestor(rhead, local):
        one.integration, one.head = "ahead", local
        return
    if local is None or await repo.is_ancestor(local, rhead):
        if not await repo.refs.set_if_equals(
            session_ref(sid), local, rhead, f"pull from {remote.name}"
        ):
            await repo.head(sid)
            raise ConflictError(f"session {sid!r} moved during the pull; run it again")
        await repo.head(sid)  # refresh the repository's head cache
        catalog = remote.stores.catalog
        summary = await remote.call(lambda: catalog.get(sid), "read session summary")
        if summary is not None:
            await repo.catalog.put(sid, summary)
        one.integration = "created" if local is None else "fast-forward"
        one.head = rhead
        return
    merged = await repo.merge(sid, rhead, reason=f"pull from {remote.name}")
    one.integration = "merged"
    one.head = merged.id if merged is not None else local


async def pull(
    repo: Repository,
    remote: SyncRemote,
    session_ids: Iterable[str] | None = None,
    *,
    lazy: bool = False,
    progress: Progress | None = None,
) -> FetchResult:
    """Fetch, then bring each local session up to its remote head (merging if diverged)."""
    result = await fetch(repo, remote, session_ids, lazy=lazy, progress=progress)
    before = remote.stats.snapshot()
    for one in result.sessions:
        await _integrate(repo, remote, one)
    extra = remote.stats.since(before)
    t = result.transfer
    result.transfer = TransferStats(
        t.requests + extra.requests,
        t.failed + extra.failed,
        t.bytes_sent + extra.bytes_sent,
        t.bytes_received + extra.bytes_received,
    )
    return result
