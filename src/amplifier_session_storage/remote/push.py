"""Push: send a session's new blocks and objects to a remote, then move its ref.

Per session, git style (docs/sync.md has the full protocol):

1. read the remote head ``R`` (one point read);
2. unless ``R`` is unset or an ancestor of the local head ``L`` (known locally), refuse
   with :class:`PushRejectedError` (a ``NotFastForwardError``) -- ``force`` overrides;
3. find the candidate blocks: the local first-parent chain from ``L`` back to where ``R``'s
   history begins (O(k), local reads only); second parents (a REWIND's abandoned head, a
   MERGE's other line) that are not ancestors of ``R``, and everything when ``R`` is unset
   or not an ancestor, are walked breadth first in windows, one batched presence query
   per window, stopping at blocks the remote has (the invariant below: a recorded block
   has all its ancestors recorded);
4. meanwhile, ask which candidates (object documents) and payload chunks / links (pack
   documents) the remote records, so a push that was interrupted does not send again what
   landed;
5. upload the missing frames as they are stored locally (no re-compression), in packs
   (4 MiB, then doubling up to 16 MiB, at most 3 in flight); as each pack lands, the pack
   documents listing its leaves (chunks, links: they depend on nothing);
6. write the blocks' object documents in topological order in sequential transactional
   batches: **an object is recorded only when every object it depends on is**, even after
   a crash; meanwhile, the session's block index documents;
7. move the remote ref by compare-and-swap from ``R`` (create when unset): losing the race
   is a :class:`PushRejectedError`, nothing is lost (the objects stay, a retry after
   ``pull`` reuses them);
8. update the session document and the local tracking ref ``remotes/<name>/sessions/<id>``.

The remote therefore never points at an object it lacks.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from ..core.ids import ObjectId
from ..core.objects import Block
from ..core.refnames import session_ref
from ..errors import IntegrityError, NotFastForwardError, SessionNotFoundError
from ..repository.repo import Repository
from ..stores.cosmos_index import BATCH_OPS, Location
from .common import (
    Progress,
    access_of,
    gather,
    leaf_packs,
    locate_blocks,
    set_tracking,
    task_group,
)
from .session import SyncRemote
from .stats import TransferStats

__all__ = ["PushRejectedError", "PushResult", "SessionPush", "push"]

WINDOW_START = 16
WINDOW_MAX = 1024
UPLOADS_AT_ONCE = 3
FIRST_PACK_BYTES = 4 * 1024 * 1024  # then doubling up to PACK_BYTES: uploads start early
PACK_BYTES = 16 * 1024 * 1024  # small enough for building and uploading to overlap
RECORD_OVERHEAD = 36  # id + length in front of every frame in a pack
YIELD_EVERY = 256 * 1024  # bytes read locally between two turns of the event loop


@dataclass
class SessionPush:
    """What happened to one session: ``status`` is ``created``, ``fast-forward``,
    ``forced``, ``up-to-date`` or ``rejected``."""

    session_id: str
    status: str
    old: ObjectId | None
    new: ObjectId | None
    blocks: int = 0
    objects: int = 0
    bytes: int = 0
    message: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "status": self.status,
            "old": self.old.hex() if self.old else None,
            "new": self.new.hex() if self.new else None,
            "blocks": self.blocks,
            "objects": self.objects,
            "bytes": self.bytes,
            "message": self.message,
        }


@dataclass
class PushResult:
    """Every session's outcome and the totals (``transfer``: HTTP requests and body bytes)."""

    remote: str
    sessions: list[SessionPush] = field(default_factory=list)
    objects: int = 0
    bytes: int = 0
    packs: int = 0
    seconds: float = 0.0
    transfer: TransferStats = field(default_factory=TransferStats)
    # wall time by phase: negotiate, presence, upload (packs + pack documents), documents
    phases: dict[str, float] = field(default_factory=dict)

    @property
    def rejected(self) -> list[SessionPush]:
        return [s for s in self.sessions if s.status == "rejected"]

    def to_json(self) -> dict[str, Any]:
        return {
            "remote": self.remote,
            "sessions": [s.to_json() for s in self.sessions],
            "objects": self.objects,
            "bytes": self.bytes,
            "packs": self.packs,
            "seconds": round(self.seconds, 3),
            "phases": {k: round(v, 3) for k, v in self.phases.items()},
            **self.transfer.to_json(),
        }


class PushRejectedError(NotFastForwardError):
    """Some sessions were not pushed: the remote has history the local heads lack."""

    def __init__(self, message: str, result: PushResult) -> None:
        super().__init__(message)
        self.result = result


class _Push:
    def __init__(
        self, repo: Repository, remote: SyncRemote, result: PushResult, progress: Progress | None
    ) -> None:
        self.repo = repo
        self.remote = remote
        self.user = remote.user_id
        self.result = result
        self.progress = progress
        self.sent_objects = 0
        self.sent_bytes = 0
        self.planned = 0

    def phase(self, name: str, previous: tuple[str, float] | None = None) -> tuple[str, float]:
        """Close ``previous`` (adding its wall time to ``result.phases``), open ``name``."""
        now = time.perf_counter()
        if previous is not None and previous[0]:
            phases = self.result.phases
            phases[previous[0]] = phases.get(previous[0], 0.0) + now - previous[1]
        return name, now

    # ------------------------------------------------------------------ candidates
    async def chain_to(
        self, local: ObjectId, rhead: ObjectId
    ) -> tuple[list[Block], list[ObjectId]]:
        """First-parent blocks of ``local`` not in ``rhead``'s history, and their other parents."""
        repo = self.repo
        rseq = (await repo.get_block(rhead, resolve=False)).sequence
        chain: list[Block] = []
        others: list[ObjectId] = []
        cur: ObjectId | None = local
        while cur is not None and cur != rhead:
            b = await repo.get_block(cur, resolve=False)
            # Sequences fall by one along a first-parent chain: below R's, ask the DAG.
            if b.sequence <= rseq and await repo.is_ancestor(cur, rhead):
                break
            chain.append(b)
            others.extend(b.parents[1:])
            cur = b.parents[0] if b.parents else None
        unknown = []
        for oid in dict.fromkeys(others):
            if oid == rhead or oid in {b.id for b in chain}:
                continue
            if await repo.objects.has(oid) and await repo.is_ancestor(oid, rhead):
                continue
            unknown.append(oid)
        return chain, unknown

    async def discover(
        self,
        roots: Sequence[ObjectId],
        known: set[ObjectId],
        on_new: Callable[[Iterable[Block]], None] | None = None,
    ) -> tuple[dict[ObjectId, Block], dict[ObjectId, Location]]:
        """Blocks reachable from ``roots`` that the remote lacks (windowed presence queries).

        A window is filled by expanding parents locally without asking; one query then
        tells which of them the remote has. Parents found only through blocks the remote
        has are dropped: it has them too (invariant). ``on_new`` is told each window's new
        blocks as soon as they are known (to look up their chunks meanwhile).
        """
        repo = self.repo
        new: dict[ObjectId, Block] = {}
        found: dict[ObjectId, Location] = {}
        present: set[ObjectId] = set()
        pending: deque[tuple[ObjectId, ObjectId | None]] = deque(
            (r, None) for r in dict.fromkeys(roots) if r not in known
        )
        seen = {r for r, _ in pending} | set(known)
        window = WINDOW_START
        while pending:
            batch: dict[ObjectId, Block] = {}
            while pending and len(batch) < window:
                oid, via = pending.popleft()
                if via is not None and via in present:
                    present.add(oid)
                    continue
                b = await repo.get_block(oid, resolve=False)
                batch[oid] = b
                for p in b.parents:
                    if p not in seen:
                        seen.add(p)
                        pending.append((p, oid))
            if not batch:
                break
            locs = await locate_blocks(self.remote, batch)
            found.update(locs)
            fresh = []
            for oid, b in batch.items():
                if oid in locs:
                    present.add(oid)
                else:
                    new[oid] = b
                    fresh.append(b)
            if on_new is not None and fresh:
                on_new(fresh)
            # Drop parents that were reached only through blocks the remote has.
            pending = deque((o, v) for o, v in pending if v is None or v not in present)
            window = min(window * 2, WINDOW_MAX)
        return new, found

    # ------------------------------------------------------------------ upload
    async def upload(
        self, leaves: list[ObjectId], blocks: list[ObjectId]
    ) -> dict[ObjectId, Location]:
        """Upload frames (leaves first) in packs; record each pack's leaves as it lands.

        Packs stream: each is uploaded as soon as it is full (the first at
        ``FIRST_PACK_BYTES``, each next one twice as large, up to ``PACK_BYTES``), at
        most ``UPLOADS_AT_ONCE`` in flight, so uploading starts early and memory stays
        bounded whatever the size of the push.
        """
        order = leaves + blocks
        if not order:
            return {}
        self.planned += len(order)
        leaf_set = set(leaves)
        locs: dict[ObjectId, Location] = {}
        slots = asyncio.Semaphore(UPLOADS_AT_ONCE)
        blobs, index, user = self.remote.blobs, self.remote.index, self.user

        async def send(frames: list[tuple[ObjectId, bytes]]) -> None:
            try:
                info = await self.remote.call(
                    lambda: blobs.upload_pack(frames, register=False), "upload pack"
                )
            finally:
                slots.release()
            here = {o: Location(info.name, off, n) for o, (off, n) in info.entries.items()}
            self.result.packs += 1
            self.sent_objects += len(frames)
            self.sent_bytes += sum(len(f) for _, f in frames)
            if self.progress is not None:
                self.progress("objects", self.sent_objects, self.planned)
                self.progress("bytes", self.sent_bytes, 0)
            listed = [o for o in here if o in leaf_set]
            if listed:  # leaves depend on nothing: their documents may go in any order
                await self.remote.call(
                    lambda: index.put_pack(user, info.name, listed), "write pack documents"
                )
            locs.update(here)

        limit = FIRST_PACK_BYTES
        async with task_group() as tasks:
            batch: list[tuple[ObjectId, bytes]] = []
            size = unyielded = 0
            for oid in order:
                frame = await self.repo.objects.get(oid)
                if frame is None:
                    raise IntegrityError(
                        f"cannot push: object {oid.hex()} is missing locally", oid.hex()
                    )
                if batch and size + len(frame) + RECORD_OVERHEAD > min(limit, PACK_BYTES):
                    await slots.acquire()
                    tasks.create_task(send(batch))
                    batch, size, limit = [], 0, limit * 2
                batch.append((oid, frame))
                size += len(frame) + RECORD_OVERHEAD
                unyielded += len(frame)
                if unyielded >= YIELD_EVERY:
                    # Local reads do not wait: let the uploads in flight send meanwhile.
                    await asyncio.sleep(0)
                    unyielded = 0
            await slots.acquire()
            tasks.create_task(send(batch))
        return locs

    async def write_block_objects(
        self, order: list[ObjectId], locs: dict[ObjectId, Location]
    ) -> None:
        """Block object documents, parents first, one transactional batch at a time."""
        index, user = self.remote.index, self.user
        for i in range(0, len(order), BATCH_OPS):
            docs = [(o, locs[o]) for o in order[i : i + BATCH_OPS]]
            await self.remote.call(partial(index.put_objects, user, docs), "write block documents")

    # ------------------------------------------------------------------ one session
    async def session(self, sid: str, force: bool) -> SessionPush:
        repo, remote = self.repo, self.remote
        local = await repo.head(sid)
        if local is None:
            raise SessionNotFoundError(sid)
        ref = session_ref(sid)
        clock = self.phase("negotiate")
        rhead = await remote.refs.get(ref)
        out = SessionPush(sid, "up-to-date", rhead, local)
        if rhead == local:
            await set_tracking(repo, remote.name, sid, local, f"push: {sid} up to date")
            return out
        ff = rhead is None or (
            await repo.objects.has(rhead) and await repo.is_ancestor(rhead, local)
        )
        if not ff and not force:
            out.status = "rejected"
            out.message = (
                f"{sid}: the remote head {rhead.hex()[:12] if rhead else None} is not in the "
                "local history (not a fast-forward): pull to merge it, or push --force"
            )
            return out
        if rhead is not None and ff:
            chain, roots = await self.chain_to(local, rhead)
            known = {b.id for b in chain}
        else:
            chain, roots, known = [], [local], set()
        # Presence, asked while the candidates are being found: blocks have object
        # documents, their chunks and links are listed by pack documents.
        asked: dict[ObjectId, None] = {}  # in order: packs come out the same every time
        leaf_lookups: list[asyncio.Task[dict[ObjectId, str]]] = []
        async with task_group() as tasks:

            def look_up_leaves(group: Iterable[Block]) -> None:
                ids = [o for b in group for o in b.object_refs() if o not in asked]
                asked.update(dict.fromkeys(ids))
                if ids:
                    leaf_lookups.append(tasks.create_task(leaf_packs(remote, ids)))

            look_up_leaves(chain)
            chain_found = tasks.create_task(locate_blocks(remote, [b.id for b in chain]))
            new, locs = await self.discover(roots, known, look_up_leaves)
            clock = self.phase("presence", clock)
        locs.update(chain_found.result())
        listed: dict[ObjectId, str] = {}
        for lookup in leaf_lookups:
            listed.update(lookup.result())
        blocks: dict[ObjectId, Block] = {b.id: b for b in chain}
        blocks.update(new)
        leaves = [o for o in asked if o not in listed and o not in blocks]
        topo = _topological(blocks)
        missing_blocks = [o for o in topo if o not in locs]
        before_objects, before_bytes = self.sent_objects, self.sent_bytes
        clock = self.phase("upload", clock)
        locs.update(await self.upload(leaves, missing_blocks))
        clock = self.phase("documents", clock)
        summary = await repo.catalog.get(sid) or {"session_id": sid}
        index, user = remote.index, self.user
        indexed = [(blocks[o], locs[o]) for o in topo]

        async def block_index() -> None:
            if indexed:  # not a presence record: may go alongside the object documents
                await remote.call(
                    lambda: index.put_blocks(user, sid, indexed, access_of(summary)),
                    "write block index",
                )

        await gather(self.write_block_objects(missing_blocks, locs), block_index())
        out.blocks = len(missing_blocks)
        out.objects = self.sent_objects - before_objects
        out.bytes = self.sent_bytes - before_bytes
        moved = not await remote.refs.set_if_equals(
            ref, rhead, local, f"push {repo.device_id}".strip()
        )
        if moved and await remote.refs.get(ref) == local:
            # A retried CAS whose first answer was lost (dropped connection after the
            # server applied it): the ref holds exactly what we pushed, so it is ours.
            moved = False
        if moved:
            out.status = "rejected"
            out.message = (
                f"{sid}: the remote moved while pushing (another push won): pull to merge, "
                "then push again; the uploaded objects are kept"
            )
            return out
        out.status = "created" if rhead is None else ("fast-forward" if ff else "forced")
        await remote.call(
            lambda: index.put_session(user, sid, summary, local), "write session document"
        )
        await set_tracking(repo, remote.name, sid, local, f"push: {out.status}")
        self.phase("", clock)
        return out


def _topological(blocks: dict[ObjectId, Block]) -> list[ObjectId]:
    """Ids of ``blocks`` with every parent (within the set) before its children."""
    order: list[ObjectId] = []
    state: dict[ObjectId, int] = {}
    for root in blocks:
        if root in state:
            continue
        stack: list[tuple[ObjectId, bool]] = [(root, False)]
        while stack:
            oid, expanded = stack.pop()
            if expanded:
                if state.get(oid) != 2:
                    state[oid] = 2
                    order.append(oid)
                continue
            if oid in state:
                continue
            state[oid] = 1
            stack.append((oid, True))
            for p in blocks[oid].parents:
                if p in blocks and p not in state:
                    stack.append((p, False))
    return order


async def push(
    repo: Repository,
    remote: SyncRemote,
    session_ids: Iterable[str] | None = None,
    *,
    force: bool = False,
    progress: Progress | None = None,
) -> PushResult:
    """Push sessions (default: every local session) to ``remote``; see the module docstring.

    Raises :class:`PushRejectedError` (exit code 4 in the CLI) after pushing what it could
    when any session was not a fast-forward or lost a race; ``err.result`` has the details.
    """
    started = time.perf_counter()
    before = remote.stats.snapshot()
    result = PushResult(remote.name)
    ids = list(session_ids) if session_ids is not None else await repo.session_ids()
    work = _Push(repo, remote, result, progress)
    for n, sid in enumerate(ids, 1):
        result.sessions.append(await work.session(sid, force))
        if progress is not None:
            progress("sessions", n, len(ids))
    result.objects, result.bytes = work.sent_objects, work.sent_bytes
    result.seconds = time.perf_counter() - started
    result.transfer = remote.stats.since(before)
    if result.rejected:
        lines = "; ".join(s.message for s in result.rejected)
        raise PushRejectedError(
            f"push rejected for {len(result.rejected)} session(s): {lines}", result
        )
    return result
