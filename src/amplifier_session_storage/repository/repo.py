"""The repository: a DAG of content-addressed blocks with one ref per session head.

Every operation is built from three primitives: store objects (chunks first, then the
block), read a verified block, and move a ref by compare-and-swap. A lost race never loses
a block: the append is rebuilt on the new head and tried again (or ConflictError is raised
when the caller pinned the head it expected).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Concatenate, ParamSpec, TypeVar

from ..core.codec import frame, unframe
from ..core.ids import ObjectId, is_hex_prefix, validate_session_id
from ..core.objects import (
    Block,
    BlockType,
    ChunkedPayload,
    decode_block,
    decode_chunk,
    object_kind,
    resolve_chunked,
)
from ..core.refnames import session_ref
from ..errors import (
    ConflictError,
    CorruptObjectError,
    InvalidInputError,
    NotFoundError,
    SessionNotFoundError,
)
from ..stores.base import ObjectStore, RefStore
from ..stores.catalog import CatalogStore, MemoryCatalogStore
from .state import PayloadRender, SessionState, fold

__all__ = ["ANY", "Repository"]

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _writes(
    fn: Callable[Concatenate[Repository, _P], Coroutine[Any, Any, _R]],
) -> Callable[Concatenate[Repository, _P], Coroutine[Any, Any, _R]]:
    """Run a mutating operation under the object store's write guard (``stores.guard``):
    from its first object write or presence check to its ref move, no gc sweep runs."""

    @functools.wraps(fn)
    async def guarded(self: Repository, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        async with self.objects.write_guard():
            return await fn(self, *args, **kwargs)

    return guarded


class _Any:
    def __repr__(self) -> str:
        return "ANY"


ANY: Any = _Any()  # "whatever the head is now": appends retry on a moved head
SUMMARY_TYPES = {
    BlockType.SESSION_CREATED,
    BlockType.SESSION_UPDATED,
    BlockType.FORK,
    BlockType.SESSION_DELETED,
}
CATALOG_KEYS = (
    "project_slug",
    "name",
    "description",
    "visibility",
    "org_id",
    "team_ids",
    "parent_session_id",
    "parent_id",
    "tags",
    "bundle",
    "model",
)


class Repository:
    """Sessions as a DAG of blocks over an :class:`ObjectStore` and a :class:`RefStore`."""

    def __init__(
        self,
        objects: ObjectStore,
        refs: RefStore,
        catalog: CatalogStore | None = None,
        *,
        user_id: str = "",
        device_id: str = "",
        cache_blocks: int = 200_000,
    ) -> None:
        self.objects = objects
        self.refs = refs
        self.catalog = catalog if catalog is not None else MemoryCatalogStore()
        self.user_id = user_id
        self.device_id = device_id
        self._cache: OrderedDict[ObjectId, Block] = OrderedDict()
        self._cache_max = cache_blocks
        self._heads: dict[str, ObjectId] = {}

    async def close(self) -> None:
        await self.objects.close()
        await self.refs.close()
        await self.catalog.close()

    async def __aenter__(self) -> Repository:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ objects
    async def read_object(self, oid: ObjectId) -> bytes:
        """Verified canonical bytes of any object; NotFoundError / IntegrityError."""
        stored = await self.objects.get(oid)
        if stored is None:
            raise NotFoundError(f"object {oid.hex()} not found")
        return unframe(oid, stored)

    async def get_block(self, oid: ObjectId, *, resolve: bool = True) -> Block:
        """The verified block ``oid``; with ``resolve`` its chunked payload is loaded."""
        oid = ObjectId(oid)
        block = self._cache.get(oid)
        if block is None:
            canonical = await self.read_object(oid)
            if object_kind(canonical) != "b":
                raise InvalidInputError(f"object {oid.hex()} is not a block")
            block = decode_block(canonical, oid)
            self._remember(block)
        else:
            self._cache.move_to_end(oid)
        if resolve and isinstance(block.data, ChunkedPayload):
            block = await self._resolve(block)
        return block

    def _remember(self, block: Block) -> None:
        # The cache holds blocks as stored: a chunked payload stays a ChunkedPayload, so
        # resolve=False readers (gc, fsck, walks) always see the chunk ids.
        if block.encoded.chunks and not isinstance(block.data, ChunkedPayload):
            block = decode_block(block.encoded.canonical, block.id)
        self._cache[block.id] = block
        if len(self._cache) > self._cache_max:
            self._cache.popitem(last=False)

    async def _resolve(self, block: Block) -> Block:
        ref = block.data
        assert isinstance(ref, ChunkedPayload)
        parts = []
        for cid in ref.chunk_ids:
            try:
                parts.append(decode_chunk(await self.read_object(cid)))
            except NotFoundError as exc:
                raise CorruptObjectError(
                    f"block {block.block_id}: chunk {cid.hex()} is missing", block.block_id
                ) from exc
        return resolve_chunked(block, parts)

    async def read_blob(self, chunk_ids: Sequence[ObjectId]) -> bytes:
        """The bytes of a blob stored as chunk objects (see ``core.objects.encode_blob``)."""
        return b"".join([decode_chunk(await self.read_object(c)) for c in chunk_ids])

    def writing(self) -> AbstractAsyncContextManager[None]:
        """Hold the write guard across several steps that end in a ref move (e.g. check
        which objects are present, store the rest, append blocks naming them all): a gc
        sweep waits until it is released. Nested holds are free."""
        return self.objects.write_guard()

    @_writes
    async def store_blocks(
        self, blocks: Sequence[Block], extra: Sequence[tuple[ObjectId, bytes]] = ()
    ) -> None:
        """Store blocks, their chunks and ``extra`` objects (canonical bytes, e.g. blob
        chunks named in the blocks' links): one put for a single object, one batch otherwise.
        """
        items: list[tuple[ObjectId, bytes]] = []
        seen: set[ObjectId] = set()
        for oid, canonical in extra:
            if oid not in seen:
                seen.add(oid)
                items.append((oid, frame(canonical)))
        for b in blocks:
            enc = b.encoded
            for cid, ccanon in enc.chunks:
                if cid not in seen:
                    seen.add(cid)
                    items.append((cid, frame(ccanon)))
            if enc.id not in seen:
                seen.add(enc.id)
                items.append((enc.id, frame(enc.canonical)))
        if len(items) == 1:
            await self.objects.put(*items[0])
        elif items:
            await self.objects.put_many(items)
        for b in blocks:
            self._remember(b)

    # ------------------------------------------------------------------ refs
    async def head(self, session_id: str) -> ObjectId | None:
        head = await self.refs.get(session_ref(session_id))
        if head is None:
            self._heads.pop(session_id, None)
        else:
            self._heads[session_id] = head
        return head

    async def require_head(self, session_id: str) -> ObjectId:
        head = await self.head(session_id)
        if head is None:
            raise SessionNotFoundError(session_id)
        return head

    async def exists(self, session_id: str) -> bool:
        return await self.head(session_id) is not None

    async def session_ids(self) -> list[str]:
        return [name[len("sessions/") :] async for name, _ in self.refs.list("sessions/")]

    async def _move(
        self, session_id: str, old: ObjectId | None, new: ObjectId | None, reason: str
    ) -> bool:
        ok = await self.refs.set_if_equals(session_ref(session_id), old, new, reason)
        if ok:
            if new is None:
                self._heads.pop(session_id, None)
            else:
                self._heads[session_id] = new
        else:
            self._heads.pop(session_id, None)
        return ok

    # ------------------------------------------------------------------ building blocks
    def _new_block(
        self,
        block_type: BlockType,
        session_id: str,
        parents: Sequence[ObjectId],
        sequence: int,
        data: Any,
        timestamp_ns: int | None = None,
        user_id: str | None = None,
        device_id: str | None = None,
        links: Sequence[ObjectId] = (),
    ) -> Block:
        return Block(
            block_type,
            session_id,
            parents,
            sequence,
            time.time_ns() if timestamp_ns is None else timestamp_ns,
            self.device_id if device_id is None else device_id,
            self.user_id if user_id is None else user_id,
            data,
            links,
        )

    async def _sequence_of(self, oid: ObjectId | None) -> int:
        if oid is None:
            return 0
        return (await self.get_block(oid, resolve=False)).sequence

    @_writes
    async def create_session(
        self,
        session_id: str,
        metadata: dict[str, Any] | None = None,
        *,
        timestamp_ns: int | None = None,
    ) -> Block:
        """Write a SESSION_CREATED block as the session's first block (ConflictError if taken)."""
        validate_session_id(session_id)
        block = self._new_block(
            BlockType.SESSION_CREATED, session_id, (), 1, dict(metadata or {}), timestamp_ns
        )
        await self.store_blocks([block])
        if not await self._move(session_id, None, block.id, "create"):
            raise ConflictError(f"session {session_id!r} already exists")
        await self._update_catalog(session_id, [block])
        return block

    @_writes
    async def append(
        self,
        session_id: str,
        block_type: BlockType | str,
        data: Any,
        *,
        timestamp_ns: int | None = None,
        expected_head: Any = ANY,
        max_retries: int = 64,
    ) -> Block:
        """Append one block on the session's head (compare-and-swap; see class docs)."""
        return (
            await self.append_many(
                session_id,
                [(BlockType(block_type), data, timestamp_ns)],
                expected_head=expected_head,
                max_retries=max_retries,
            )
        )[0]

    @_writes
    async def append_many(
        self,
        session_id: str,
        entries: Sequence[
            tuple[BlockType, Any, int | None]
            | tuple[BlockType, Any, int | None, Sequence[ObjectId]]
        ],
        *,
        expected_head: Any = ANY,
        max_retries: int = 64,
        reason: str = "append",
        extra: Sequence[tuple[ObjectId, bytes]] = (),
    ) -> list[Block]:
        """Append a run of blocks with one batch write and one ref update.

        Each entry is ``(block_type, data, timestamp_ns_or_None[, links])``; ``extra`` holds
        objects (canonical bytes) the links name, stored in the same batch before the ref moves.
        """
        validate_session_id(session_id)
        if not entries:
            return []
        for attempt in range(max_retries + 1):
            head = self._heads.get(session_id) if attempt == 0 else None
            if head is None:
                head = await self.head(session_id)
            if expected_head is not ANY and head != expected_head:
                raise ConflictError(
                    f"session {session_id!r} moved: head is {head.hex() if head else None}"
                )
            if head is None:
                raise SessionNotFoundError(session_id)
            seq = await self._sequence_of(head)
            parent = head
            blocks = []
            for entry in entries:
                block_type, data, ts = entry[0], entry[1], entry[2]
                links = entry[3] if len(entry) > 3 else ()
                seq += 1
                b = self._new_block(
                    BlockType(block_type), session_id, [parent], seq, data, ts, links=links
                )
                blocks.append(b)
                parent = b.id
            await self.store_blocks(blocks, extra if attempt == 0 else ())
            if await self._move(session_id, head, parent, reason):
                await self._update_catalog(session_id, blocks)
                return blocks
            if expected_head is not ANY:
                raise ConflictError(f"session {session_id!r} moved during the append")
            await asyncio.sleep(0.0005 * min(attempt, 20))
        raise ConflictError(f"session {session_id!r}: gave up after {max_retries} lost races")

    @_writes
    async def commit(self, session_id: str, blocks: Sequence[Block]) -> list[Block]:
        """Write pre-built blocks (from a BlockWriter) for one session.

        If they already chain onto the head they are stored as they are (same ids); otherwise
        they are rebuilt on the current head (new ids, same content and timestamps), so nothing
        is lost when another writer got there first. Returns the blocks as committed.
        """
        validate_session_id(session_id)
        if not blocks:
            return []
        for b in blocks:
            if b.session_id != session_id:
                raise InvalidInputError(
                    f"block for session {b.session_id!r} committed to {session_id!r}"
                )
        for _ in range(64):
            head = await self.head(session_id)
            chain = list(blocks)
            if not self._chains_onto(head, chain):
                chain = await self._rebase(session_id, head, chain)
            await self.store_blocks(chain)
            if await self._move(session_id, head, chain[-1].id, f"commit {len(chain)}"):
                await self._update_catalog(session_id, chain)
                return chain
        raise ConflictError(f"session {session_id!r}: gave up after repeated lost races")

    @staticmethod
    def _chains_onto(head: ObjectId | None, chain: Sequence[Block]) -> bool:
        expected = head
        for b in chain:
            first = b.parents[0] if b.parents else None
            if first != expected:
                return False
            if b.block_type is BlockType.REWIND:
                return False  # always resolved against the live chain
            expected = b.id
        return True

    async def _rebase(
        self, session_id: str, head: ObjectId | None, chain: Sequence[Block]
    ) -> list[Block]:
        out: list[Block] = []
        parent = head
        seq = await self._sequence_of(head)
        for b in chain:
            if b.block_type is BlockType.SESSION_CREATED and parent is None:
                nb = b.replace(parents=(), sequence=1)
            elif b.block_type is BlockType.SESSION_CREATED:
                raise ConflictError(f"session {session_id!r} already exists")
            elif parent is None and b.block_type is BlockType.FORK:
                nb = b  # a fork's parent is in its source session
            elif parent is None:
                raise SessionNotFoundError(session_id)
            elif b.block_type is BlockType.REWIND:
                target = await self._rewind_target(parent, b)
                nb = b.replace(parents=(target.id, parent), sequence=target.sequence + 1)
            else:
                nb = b.replace(parents=(parent,), sequence=seq + 1)
            out.append(nb)
            parent, seq = nb.id, nb.sequence
        return out

    async def _rewind_target(self, head: ObjectId, rewind: Block) -> Block:
        data = rewind.data if isinstance(rewind.data, dict) else {}
        target_seq = data.get("target_sequence")
        if not isinstance(target_seq, int):
            raise InvalidInputError("a REWIND block needs an integer target_sequence")
        async for b in self.walk(head):
            if b.sequence == target_seq:
                return b
            if b.sequence < target_seq:
                break
        raise NotFoundError(f"no block at sequence {target_seq} on the session's chain")

    # ------------------------------------------------------------------ fork / rewind / merge
    @_writes
    async def fork(
        self,
        source_session_id: str,
        new_session_id: str,
        *,
        at: ObjectId | None = None,
        metadata: dict[str, Any] | None = None,
        timestamp_ns: int | None = None,
    ) -> Block:
        """A new session whose FORK block has ``at`` (default: the source head) as parent. O(1)."""
        validate_session_id(new_session_id)
        source_head = await self.require_head(source_session_id)
        at = source_head if at is None else ObjectId(at)
        target = await self.get_block(at, resolve=False)
        if at != source_head and not await self.is_ancestor(at, source_head):
            raise InvalidInputError(
                f"block {at.hex()[:12]} is not in session {source_session_id!r}"
            )
        data = {"source_session_id": source_session_id, "metadata": dict(metadata or {})}
        block = self._new_block(
            BlockType.FORK, new_session_id, [at], target.sequence + 1, data, timestamp_ns
        )
        await self.store_blocks([block])
        if not await self._move(
            new_session_id, None, block.id, f"fork {source_session_id}@{target.sequence}"
        ):
            raise ConflictError(f"session {new_session_id!r} already exists")
        await self._update_catalog(new_session_id, [block])
        return block

    @_writes
    async def rewind(
        self,
        session_id: str,
        target: ObjectId,
        reason: str | None = None,
        *,
        timestamp_ns: int | None = None,
    ) -> Block:
        """Move the session back to ``target`` with a REWIND block that keeps the old head.

        The REWIND's parents are ``[target, abandoned_head]``: the abandoned blocks stay
        reachable (nothing is lost) and blocks appended afterwards continue from target.
        """
        target = ObjectId(target)
        for _ in range(64):
            head = await self.require_head(session_id)
            if target != head and not await self.is_ancestor(target, head, first_parent=True):
                raise InvalidInputError(
                    f"block {target.hex()[:12]} is not on session {session_id!r}'s history"
                )
            tblock = await self.get_block(target, resolve=False)
            data = {
                "target": target.hex(),
                "target_sequence": tblock.sequence,
                "abandoned_head": head.hex(),
                "reason": reason,
            }
            block = self._new_block(
                BlockType.REWIND,
                session_id,
                [target, head],
                tblock.sequence + 1,
                data,
                timestamp_ns,
            )
            await self.store_blocks([block])
            if await self._move(session_id, head, block.id, f"rewind to {tblock.sequence}"):
                return block
        raise ConflictError(f"session {session_id!r}: gave up after repeated lost races")

    @_writes
    async def merge(
        self,
        session_id: str,
        other: ObjectId,
        reason: str | None = None,
        *,
        timestamp_ns: int | None = None,
    ) -> Block | None:
        """Join ``other`` into the session: MERGE block with parents [head, other].

        Returns None when there is nothing to merge (other is already in the history) and
        fast-forwards when the head is an ancestor of ``other``.
        """
        other = ObjectId(other)
        head = await self.require_head(session_id)
        if other == head or await self.is_ancestor(other, head):
            return None
        if await self.is_ancestor(head, other):
            if not await self._move(session_id, head, other, "merge: fast-forward"):
                raise ConflictError(f"session {session_id!r} moved during the merge")
            return await self.get_block(other, resolve=False)
        base = await self.merge_base(head, other)
        seq = await self._sequence_of(head)
        data = {"merged_head": other.hex(), "base": base.hex() if base else None, "reason": reason}
        block = self._new_block(
            BlockType.MERGE, session_id, [head, other], seq + 1, data, timestamp_ns
        )
        await self.store_blocks([block])
        if not await self._move(session_id, head, block.id, "merge"):
            raise ConflictError(f"session {session_id!r} moved during the merge")
        return block

    @_writes
    async def delete_session(self, session_id: str) -> Block:
        """Record SESSION_DELETED and drop the ref; the reflog keeps the head (recoverable)."""
        block = await self.append(session_id, BlockType.SESSION_DELETED, {"deleted": True})
        if not await self._move(session_id, block.id, None, "delete"):
            raise ConflictError(f"session {session_id!r} moved during the delete")
        await self.catalog.delete(session_id)
        return block

    @_writes
    async def delete_ref_after(self, session_id: str, block: Block) -> None:
        """Drop the ref once a committed SESSION_DELETED block is its head."""
        if await self._move(session_id, block.id, None, "delete"):
            await self.catalog.delete(session_id)

    # ------------------------------------------------------------------ walking the DAG
    async def walk(
        self, head: ObjectId | None, *, limit: int | None = None, resolve: bool = False
    ) -> AsyncIterator[Block]:
        """First-parent history from ``head`` back to the root, newest first."""
        cur = head
        n = 0
        while cur is not None and (limit is None or n < limit):
            b = await self.get_block(cur, resolve=resolve)
            yield b
            n += 1
            cur = b.parents[0] if b.parents else None

    async def walk_all(
        self, heads: Iterable[ObjectId], *, limit: int | None = None
    ) -> AsyncIterator[Block]:
        """Every block reachable from ``heads`` through all parents, newest first by time."""
        import heapq

        seen: set[ObjectId] = set()
        heap: list[tuple[int, int, bytes, Block]] = []
        for h in heads:
            if h not in seen:
                seen.add(h)
                b = await self.get_block(h, resolve=False)
                heapq.heappush(heap, (-b.timestamp_ns, -b.sequence, bytes(b.id), b))
        n = 0
        while heap and (limit is None or n < limit):
            *_, b = heapq.heappop(heap)
            yield b
            n += 1
            for p in b.parents:
                if p not in seen:
                    seen.add(p)
                    pb = await self.get_block(p, resolve=False)
                    heapq.heappush(heap, (-pb.timestamp_ns, -pb.sequence, bytes(pb.id), pb))

    async def is_ancestor(
        self, ancestor: ObjectId, descendant: ObjectId, *, first_parent: bool = False
    ) -> bool:
        """Whether ``ancestor`` is reachable from ``descendant`` (sequence-bounded search)."""
        target = await self.get_block(ancestor, resolve=False)
        stack = [descendant]
        seen: set[ObjectId] = set()
        while stack:
            cur = stack.pop()
            if cur == ancestor:
                return True
            if cur in seen:
                continue
            seen.add(cur)
            b = await self.get_block(cur, resolve=False)
            # Only MERGE and REWIND blocks have a second parent that may sit higher.
            if b.sequence <= target.sequence and len(b.parents) <= 1:
                continue
            parents = b.parents[:1] if first_parent else b.parents
            stack.extend(parents)
        return False

    async def merge_base(self, a: ObjectId, b: ObjectId) -> ObjectId | None:
        """The newest common ancestor of ``a`` and ``b`` (None when unrelated)."""
        ancestors: set[ObjectId] = set()
        async for blk in self.walk_all([a]):
            ancestors.add(blk.id)
        async for blk in self.walk_all([b]):
            if blk.id in ancestors:
                return blk.id
        return None

    async def chain(
        self,
        session_id: str,
        *,
        since_sequence: int | None = None,
        limit: int | None = None,
        resolve: bool = True,
    ) -> list[Block]:
        """The session's first-parent chain, oldest first: blocks with sequence > since."""
        head = await self.require_head(session_id)
        return await self.chain_from(
            head, since_sequence=since_sequence, limit=limit, resolve=resolve
        )

    async def chain_from(
        self,
        head: ObjectId,
        *,
        since_sequence: int | None = None,
        limit: int | None = None,
        resolve: bool = True,
    ) -> list[Block]:
        out: list[Block] = []
        floor = -1 if since_sequence is None else since_sequence
        async for b in self.walk(head):
            if b.sequence <= floor:
                break
            out.append(b)
        out.reverse()
        if limit is not None:
            out = out[: max(limit, 0)]
        if resolve:
            out = [await self._resolve(b) if isinstance(b.data, ChunkedPayload) else b for b in out]
        return out

    async def history(self, head: ObjectId) -> list[Block]:
        """The ordered blocks a session at ``head`` consists of, with merges spliced in."""
        chain = await self.chain_from(head, resolve=False)
        out: list[Block] = []
        for b in chain:
            if b.block_type is BlockType.MERGE and len(b.parents) > 1:
                base_hex = b.data.get("base") if isinstance(b.data, dict) else None
                base = ObjectId.from_hex(base_hex) if base_hex else None
                # The other line's own root (a FORK or SESSION_CREATED of another session)
                # says nothing about this session's identity: only its content merges in.
                theirs = [
                    x
                    async for x in self._segment(b.parents[1], base)
                    if x.block_type not in (BlockType.FORK, BlockType.SESSION_CREATED)
                ]
                ours_start = next((i + 1 for i, x in enumerate(out) if x.id == base), 0)
                ours = out[ours_start:]
                merged = sorted(ours + theirs, key=lambda x: (x.timestamp_ns, x.device_id))
                out = out[:ours_start] + merged
            out.append(b)
        return [await self._resolve(b) if isinstance(b.data, ChunkedPayload) else b for b in out]

    async def _segment(self, head: ObjectId, base: ObjectId | None) -> AsyncIterator[Block]:
        seg = []
        async for b in self.walk(head):
            if b.id == base:
                break
            seg.append(b)
        for b in reversed(seg):
            yield b

    async def materialize(
        self, session_id: str, *, render: PayloadRender | None = None
    ) -> SessionState:
        """Metadata, messages and events of the session as of its head; ``render`` gives
        what each block shows (from a layer that knows the payload's format)."""
        head = await self.require_head(session_id)
        blocks = await self.history(head)
        if render is None:
            return fold(blocks, session_id)
        return fold(blocks, session_id, payloads=[await render(b) for b in blocks])

    # ------------------------------------------------------------------ revisions
    async def resolve_rev(self, session_id: str, rev: str | int | None) -> ObjectId:
        """A block of the session by sequence number, ``HEAD``, ``HEAD~N`` or hex prefix.

        A string of digits is a sequence number when the session has a block there, else
        (4 digits or more) a hex prefix: block ids are hex, and some prefixes are digits."""
        head = await self.require_head(session_id)
        if rev is None or rev == "HEAD":
            return head
        if isinstance(rev, str) and rev.startswith("HEAD~") and rev[5:].isdigit():
            back = int(rev[5:])
            async for b in self.walk(head, limit=back + 1):
                if back == 0:
                    return b.id
                back -= 1
            raise NotFoundError(f"{rev}: history is shorter than that")
        if isinstance(rev, int) or (isinstance(rev, str) and rev.isdigit() and len(rev) < 20):
            seq = int(rev)
            async for b in self.walk(head):
                if b.sequence == seq:
                    return b.id
                if b.sequence < seq:
                    break
            if isinstance(rev, int) or len(rev) < 4:
                raise NotFoundError(f"session {session_id!r} has no block at sequence {seq}")
        prefix = str(rev).lower()
        if not is_hex_prefix(prefix) or len(prefix) < 4:
            raise InvalidInputError(f"not a revision: {rev!r} (sequence, HEAD~N or hex prefix)")
        matches = []
        async for b in self.walk_all([head]):
            if b.block_id.startswith(prefix):
                matches.append(b.id)
        if not matches:
            raise NotFoundError(f"no block {prefix} in session {session_id!r}")
        if len(matches) > 1:
            raise InvalidInputError(f"ambiguous block prefix {prefix}")
        return matches[0]

    async def find_object(self, prefix: str) -> ObjectId:
        """The unique object whose hex id starts with ``prefix`` (at least 4 digits)."""
        prefix = prefix.lower()
        if len(prefix) == 64:
            oid = ObjectId.from_hex(prefix)
            if await self.objects.has(oid):
                return oid
            raise NotFoundError(f"object {prefix} not found")
        if not is_hex_prefix(prefix) or len(prefix) < 4:
            raise InvalidInputError(f"not an object id prefix: {prefix!r} (4+ hex digits)")
        found = [oid async for oid in self.objects.list() if oid.hex().startswith(prefix)]
        if not found:
            raise NotFoundError(f"no object {prefix}")
        if len(found) > 1:
            raise InvalidInputError(f"ambiguous object prefix {prefix} ({len(found)} matches)")
        return found[0]

    # ------------------------------------------------------------------ catalog
    async def _update_catalog(self, session_id: str, blocks: Sequence[Block]) -> None:
        if not any(b.block_type in SUMMARY_TYPES for b in blocks):
            return
        doc = await self.catalog.get(session_id) or {"session_id": session_id}
        for b in blocks:
            if b.block_type is BlockType.SESSION_CREATED or b.block_type is BlockType.FORK:
                if b.block_type is BlockType.FORK:
                    src = await self.catalog.get(str(b.data.get("source_session_id")))
                    doc = {k: v for k, v in (src or {}).items() if k in CATALOG_KEYS}
                    meta = b.data.get("metadata") or {}
                    doc["forked_from"] = b.data.get("source_session_id")
                else:
                    doc = {}
                    meta = b.data if isinstance(b.data, dict) else {}
                doc.update({k: meta[k] for k in CATALOG_KEYS if k in meta})
                doc["session_id"] = session_id
                doc["created_ns"] = b.timestamp_ns
                doc["user_id"] = b.user_id
            elif b.block_type is BlockType.SESSION_UPDATED and isinstance(b.data, dict):
                doc.update({k: b.data[k] for k in CATALOG_KEYS if k in b.data})
            doc["updated_ns"] = b.timestamp_ns
        await self.catalog.put(session_id, doc)

    async def rebuild_catalog(self) -> int:
        """Recompute every session summary from the refs (the catalog is derived data)."""
        n = 0
        for sid in await self.session_ids():
            await self.catalog.delete(sid)
            head = await self.require_head(sid)
            blocks = [b async for b in self.walk(head)]
            blocks.reverse()
            summary = [b for b in blocks if b.block_type in SUMMARY_TYPES]
            if summary:
                await self._update_catalog(sid, summary)
            n += 1
        return n

    async def list_sessions(
        self, project_slug: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[dict[str, Any]]:
        """Session summaries, newest first, filtered by project, paginated."""
        if limit < 0 or offset < 0:
            raise InvalidInputError("limit and offset must be >= 0")
        docs = [
            d
            async for d in self.catalog.list()
            if project_slug is None or d.get("project_slug") == project_slug
        ]
        docs.sort(key=lambda d: (d.get("created_ns", 0), d.get("session_id", "")), reverse=True)
        return docs[offset : offset + limit]
