"""Looking at sync state: ahead/behind per session, and fsck of a remote.

``remote_status`` compares each local head with its tracking ref
(``remotes/<name>/sessions/<id>``, what the remote had at the last push or fetch); it reads
local blocks only. ``fsck_remote`` proves a remote whole: every ref's target is recorded;
every recorded object (an object document, or an entry of a pack document located through
its pack's idx) range-reads from its pack and verifies; every verified block's parents,
payload chunks and links are recorded.
"""

from __future__ import annotations

import asyncio
import heapq
import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..core.codec import unframe
from ..core.ids import ObjectId
from ..core.objects import decode_block, object_kind
from ..errors import IntegrityError, NotFoundError, RemoteError
from ..repository.repo import Repository
from ..stores.cosmos_common import objects_partition, query_all
from ..stores.cosmos_index import Location
from .common import tracking_prefix
from .session import SyncRemote

__all__ = [
    "RemoteFsckReport",
    "SessionStatus",
    "ahead_behind",
    "fsck_remote",
    "remote_status",
]

WALK_CAP = 10_000
READS_AT_ONCE = 4


@dataclass
class SessionStatus:
    """One session against one remote: ``state`` is ``up-to-date``, ``ahead``, ``behind``,
    ``diverged``, ``local-only`` (never pushed) or ``remote-only`` (fetched, not pulled).
    ``capped``: the walk stopped at the cap, counts are lower bounds."""

    session_id: str
    remote: str
    state: str
    local: ObjectId | None
    tracking: ObjectId | None
    ahead: int = 0
    behind: int = 0
    capped: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "remote": self.remote,
            "state": self.state,
            "local": self.local.hex() if self.local else None,
            "tracking": self.tracking.hex() if self.tracking else None,
            "ahead": self.ahead,
            "behind": self.behind,
            "capped": self.capped,
        }


async def ahead_behind(
    repo: Repository, local: ObjectId | None, other: ObjectId | None, cap: int = WALK_CAP
) -> tuple[int, int, bool]:
    """Blocks reachable from ``local`` only, from ``other`` only, and whether capped.

    A walk from both heads at once, highest sequence first, marking each block with the
    side(s) that reach it; it stops when every block still queued is reached by both.
    """
    mine, theirs, both = 1, 2, 3
    flags: dict[ObjectId, int] = {}
    for oid, f in ((local, mine), (other, theirs)):
        if oid is not None:
            flags[oid] = flags.get(oid, 0) | f
    heap: list[tuple[int, bytes]] = []
    queued: set[ObjectId] = set()
    mixed: set[ObjectId] = set()

    async def enqueue(oid: ObjectId) -> None:
        if oid not in queued:
            seq = (await repo.get_block(oid, resolve=False)).sequence
            heapq.heappush(heap, (-seq, bytes(oid)))
            queued.add(oid)
        if flags[oid] == both:
            mixed.discard(oid)
        else:
            mixed.add(oid)

    for oid in list(flags):
        await enqueue(oid)
    done: set[ObjectId] = set()
    capped = False
    while heap and mixed:
        if len(done) >= cap:
            capped = True
            break
        _, raw = heapq.heappop(heap)
        oid = ObjectId(raw)
        queued.discard(oid)
        mixed.discard(oid)
        done.add(oid)
        f = flags[oid]
        for p in (await repo.get_block(oid, resolve=False)).parents:
            if flags.get(p, 0) | f != flags.get(p, 0):
                flags[p] = flags.get(p, 0) | f
                await enqueue(p)
    counted = done | (queued if capped else set())
    ahead = sum(1 for o in counted if flags[o] == mine)
    behind = sum(1 for o in counted if flags[o] == theirs)
    return ahead, behind, capped


async def remote_status(
    repo: Repository, remote: str, *, cap: int = WALK_CAP
) -> list[SessionStatus]:
    """Ahead/behind of every local session against ``remote`` (local reads only)."""
    prefix = tracking_prefix(remote)
    local = {name[len("sessions/") :]: h async for name, h in repo.refs.list("sessions/")}
    tracked = {name[len(prefix) :]: h async for name, h in repo.refs.list(prefix)}
    out: list[SessionStatus] = []
    for sid in sorted(set(local) | set(tracked)):
        mine, theirs = local.get(sid), tracked.get(sid)
        st = SessionStatus(sid, remote, "up-to-date", mine, theirs)
        if mine is None:
            st.state = "remote-only"
        elif theirs is None:
            st.state = "local-only"
            st.ahead, _, st.capped = await ahead_behind(repo, mine, None, cap)
        elif mine != theirs:
            st.ahead, st.behind, st.capped = await ahead_behind(repo, mine, theirs, cap)
            st.state = "diverged" if st.ahead and st.behind else "ahead" if st.ahead else "behind"
        out.append(st)
    return out


# ---------------------------------------------------------------------- fsck --remote
@dataclass
class RemoteFsckReport:
    """What was checked on the remote and every problem found (empty: clean)."""

    remote: str
    refs: int = 0
    object_docs: int = 0  # objects recorded: object documents + pack-document entries
    pack_docs: int = 0
    objects: int = 0  # frames read and verified
    blocks: int = 0
    chunks: int = 0
    packs: int = 0
    sampled: bool = False
    problems: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, kind: str, object_id: str | None, detail: str) -> None:
        self.problems.append({"kind": kind, "object": object_id, "detail": detail})

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "remote": self.remote,
            "refs": self.refs,
            "object_docs": self.object_docs,
            "pack_docs": self.pack_docs,
            "objects": self.objects,
            "blocks": self.blocks,
            "chunks": self.chunks,
            "packs": self.packs,
            "sampled": self.sampled,
            "problems": self.problems,
        }


async def _object_docs(remote: SyncRemote) -> dict[ObjectId, Location]:
    index = remote.index
    sql = "SELECT c.id, c.pack, c.offset, c.length FROM c WHERE c.type = 'object'"
    rows = await remote.call(
        lambda: query_all(
            index.container, sql, partition=objects_partition(remote.user_id), page_size=1000
        ),
        "list object documents",
    )
    return {ObjectId.from_hex(str(r["id"])): Location.of(r) for r in rows}


async def _listed(remote: SyncRemote, report: RemoteFsckReport) -> dict[ObjectId, Location]:
    """The leaves the pack documents list, located through their packs' idx blobs."""
    index, user = remote.index, remote.user_id

    async def pack_docs() -> list[tuple[str, list[ObjectId]]]:
        return [item async for item in index.list_packs(user)]

    docs = await remote.call(pack_docs, "list pack documents")
    report.pack_docs = len(docs)
    by_pack: dict[str, list[ObjectId]] = defaultdict(list)
    for pack, oids in docs:
        by_pack[pack].extend(oids)
    out: dict[ObjectId, Location] = {}
    sem = asyncio.Semaphore(READS_AT_ONCE)

    async def one(pack: str, oids: list[ObjectId]) -> None:
        try:
            async with sem:
                entries = await remote.call(
                    lambda: remote.blobs.pack_index(pack), f"read the idx of pack {pack[:12]}"
                )
        except (IntegrityError, NotFoundError, RemoteError) as exc:
            for o in oids:
                report.add("unreadable", o.hex(), f"pack {pack} (its idx): {exc}")
            return
        for oid in oids:
            entry = entries.get(oid)
            if entry is None:
                report.add("not-in-pack", oid.hex(), f"listed in pack {pack}, not in its idx")
            else:
                out[oid] = Location(pack, *entry)

    await asyncio.gather(*(one(p, o) for p, o in by_pack.items()))
    return out


async def fsck_remote(
    remote: SyncRemote,
    *,
    sample: int | None = None,
    seed: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> RemoteFsckReport:
    """Check the remote (see the module docstring); ``sample`` reads only that many random
    frames (plus every ref target) instead of all of them."""
    report = RemoteFsckReport(remote.name)
    docs = await _listed(remote, report)
    docs.update(await _object_docs(remote))
    report.object_docs = len(docs)
    heads: list[tuple[str, ObjectId]] = [(n, h) async for n, h in remote.refs.list()]
    report.refs = len(heads)
    for name, head in heads:
        if head not in docs:
            report.add("missing-ref-target", head.hex(), f"ref {name} points at it")
    chosen = list(docs)
    if sample is not None and sample < len(chosen):
        report.sampled = True
        chosen = random.Random(seed).sample(chosen, sample)
        chosen = list(dict.fromkeys(chosen + [h for _, h in heads if h in docs]))
    by_pack: dict[str, list[ObjectId]] = defaultdict(list)
    for oid in chosen:
        by_pack[docs[oid].pack].append(oid)
    report.packs = len(by_pack)
    sem = asyncio.Semaphore(READS_AT_ONCE)
    done = [0]

    async def check_pack(pack: str, oids: list[ObjectId]) -> None:
        ranges = [(docs[o].offset, docs[o].length) for o in oids]
        try:
            async with sem:
                frames = await remote.call(
                    lambda: remote.blobs.read_ranges(pack, ranges), f"read pack {pack[:12]}"
                )
        except (IntegrityError, RemoteError) as exc:
            for o in oids:
                report.add("unreadable", o.hex(), f"pack {pack}: {exc}")
            return
        for oid, frame in zip(oids, frames, strict=True):
            report.objects += 1
            try:
                canonical = unframe(oid, frame)
                if object_kind(canonical) == "b":
                    block = decode_block(canonical, oid)
                    report.blocks += 1
                    for p in block.parents:
                        if p not in docs:
                            report.add("missing-parent", p.hex(), f"parent of {oid.hex()}")
                    for c in block.object_refs():
                        if c not in docs:
                            report.add("missing-chunk", c.hex(), f"needed by {oid.hex()}")
                else:
                    report.chunks += 1
            except IntegrityError as exc:
                report.add("corrupt", oid.hex(), str(exc))
        done[0] += len(oids)
        if progress is not None:
            progress(done[0], len(chosen))

    await asyncio.gather(*(check_pack(p, o) for p, o in by_pack.items()))
    return report
