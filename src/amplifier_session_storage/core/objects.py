"""The immutable objects of the repository: blocks and chunks.

A **block** is one change to a session (a message, an event, a metadata update, a fork, a
rewind, a merge). It names its parents, so blocks form a DAG. Its canonical encoding is::

    ["b", 1, block_type, session_id, [parent_id, ...], sequence, timestamp_ns,
     device_id, user_id, payload_form, payload, [link_id, ...]]

``payload_form`` 0 means ``payload`` is the value itself; 1 means the value was packed to
msgpack bytes, cut by content-defined chunking and stored as chunk objects, and ``payload`` is
``[total_length, [chunk_id, ...]]``. Fields unique to a session (session id, user, device,
parents, time) live in the header, never in chunked bytes, so equal payloads dedup across
sessions and forks. ``links`` name further objects the payload refers to (chunks of blobs
stored by higher layers, e.g. each message inside an ``llm:request``): fsck, gc and sync
treat them exactly like payload chunks.

A **chunk** is ``["c", 1, bytes]``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from ..errors import CorruptObjectError, InvalidInputError
from . import chunking
from .codec import pack, unpack
from .ids import ID_BYTES, ObjectId

__all__ = [
    "Block",
    "BlockType",
    "ChunkedPayload",
    "EncodedBlock",
    "decode_block",
    "decode_chunk",
    "encode_blob",
    "encode_block",
    "encode_chunk",
    "object_kind",
]

BLOCK_VERSION = 1
CHUNK_VERSION = 1
PAYLOAD_INLINE = 0
PAYLOAD_CHUNKED = 1
MAX_PARENTS = 64
MAX_LINKS = 1_000_000


class BlockType(StrEnum):
    """What a block records. The seed's seven types plus SESSION_DELETED and MERGE."""

    SESSION_CREATED = "session_created"
    SESSION_UPDATED = "session_updated"
    SESSION_DELETED = "session_deleted"
    MESSAGE = "message"
    EVENT = "event"
    EVENT_CHUNK = "event_chunk"
    REWIND = "rewind"
    FORK = "fork"
    MERGE = "merge"


_TYPES = {t.value: t for t in BlockType}


@dataclass(frozen=True, slots=True)
class ChunkedPayload:
    """A payload kept as chunk objects; resolve it through the repository."""

    size: int
    chunk_ids: tuple[ObjectId, ...]


class Block:
    """An immutable block. ``block_id`` is the BLAKE3 of its canonical encoding.

    The seed API's attribute names are kept: ``block_id`` (hex), ``parent_block_id``,
    ``checksum`` (equal to ``block_id``), ``size_bytes``, ``timestamp`` (a UTC datetime),
    ``block_type`` and ``data``.
    """

    __slots__ = (
        "_encoded",
        "block_type",
        "data",
        "device_id",
        "links",
        "parents",
        "sequence",
        "session_id",
        "timestamp_ns",
        "user_id",
    )

    block_type: BlockType
    session_id: str
    parents: tuple[ObjectId, ...]
    sequence: int
    timestamp_ns: int
    device_id: str
    user_id: str
    data: Any
    links: tuple[ObjectId, ...]
    _encoded: EncodedBlock | None

    def __init__(
        self,
        block_type: BlockType | str,
        session_id: str,
        parents: Sequence[ObjectId] = (),
        sequence: int = 1,
        timestamp_ns: int | None = None,
        device_id: str = "",
        user_id: str = "",
        data: Any = None,
        links: Sequence[ObjectId] = (),
    ) -> None:
        bt = _TYPES.get(str(block_type.value if isinstance(block_type, BlockType) else block_type))
        if bt is None:
            raise InvalidInputError(f"unknown block type {block_type!r}")
        if not isinstance(sequence, int) or sequence < 0:
            raise InvalidInputError(f"sequence must be a non-negative int, got {sequence!r}")
        set_ = object.__setattr__
        set_(self, "block_type", bt)
        set_(self, "session_id", session_id)
        set_(self, "parents", tuple(ObjectId(p) for p in parents))
        set_(self, "sequence", sequence)
        set_(self, "timestamp_ns", _now_ns() if timestamp_ns is None else int(timestamp_ns))
        set_(self, "device_id", device_id)
        set_(self, "user_id", user_id)
        set_(self, "data", data)
        set_(self, "links", tuple(ObjectId(x) for x in links))
        set_(self, "_encoded", None)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Block is immutable")

    # --- identity -------------------------------------------------------------------
    @property
    def encoded(self) -> EncodedBlock:
        enc: EncodedBlock | None = self._encoded
        if enc is None:
            enc = encode_block(self)
            object.__setattr__(self, "_encoded", enc)
        return enc

    @property
    def id(self) -> ObjectId:
        return self.encoded.id

    @property
    def block_id(self) -> str:
        return self.encoded.id.hex()

    @property
    def checksum(self) -> str:
        return self.block_id

    @property
    def size_bytes(self) -> int:
        return len(self.encoded.canonical)

    @property
    def parent_block_id(self) -> str | None:
        return self.parents[0].hex() if self.parents else None

    @property
    def timestamp(self) -> datetime:
        return datetime.fromtimestamp(self.timestamp_ns / 1e9, tz=UTC)

    def object_refs(self) -> tuple[ObjectId, ...]:
        """Objects (not blocks) this block needs: payload chunks, then links."""
        data = self.data
        if isinstance(data, ChunkedPayload):
            return data.chunk_ids + self.links
        return self.encoded.chunk_ids + self.links

    def replace(self, **changes: Any) -> Block:
        """A new block with some fields changed (a new id)."""
        fields = {
            "block_type": self.block_type,
            "session_id": self.session_id,
            "parents": self.parents,
            "sequence": self.sequence,
            "timestamp_ns": self.timestamp_ns,
            "device_id": self.device_id,
            "user_id": self.user_id,
            "data": self.data,
            "links": self.links,
        }
        fields.update(changes)
        return Block(**fields)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Block) and self.id == other.id

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        return (
            f"Block({self.block_type.value}, session={self.session_id!r}, seq={self.sequence}, "
            f"id={self.block_id[:12]})"
        )


def _now_ns() -> int:
    import time

    return time.time_ns()


@dataclass(frozen=True, slots=True)
class EncodedBlock:
    """A block's id, canonical bytes and the chunk objects its payload was cut into."""

    id: ObjectId
    canonical: bytes
    chunks: tuple[tuple[ObjectId, bytes], ...]  # chunk objects still to be stored (encode only)
    chunk_ids: tuple[ObjectId, ...] = ()  # every payload chunk id (also after decoding)


def encode_chunk(data: bytes | memoryview) -> tuple[ObjectId, bytes]:
    canonical = pack(["c", CHUNK_VERSION, bytes(data)])
    return ObjectId.of(canonical), canonical


def decode_chunk(canonical: bytes) -> bytes:
    value = unpack(canonical, "chunk")
    if (
        not isinstance(value, list)
        or len(value) != 3
        or value[0] != "c"
        or value[1] != CHUNK_VERSION
        or not isinstance(value[2], bytes)
    ):
        raise CorruptObjectError("not a chunk object")
    return value[2]


def _check_str(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise InvalidInputError(f"block {what} must be a string, got {type(value).__name__}")
    return value


def encode_block(block: Block) -> EncodedBlock:
    """Canonical bytes and id of ``block``; large payloads are cut into chunk objects."""
    _check_str(block.session_id, "session_id")
    _check_str(block.device_id, "device_id")
    _check_str(block.user_id, "user_id")
    if len(block.links) > MAX_LINKS:
        raise InvalidInputError(f"a block has at most {MAX_LINKS} links")
    if len(block.parents) > MAX_PARENTS:
        raise InvalidInputError(f"a block has at most {MAX_PARENTS} parents")
    data = block.data
    chunks: list[tuple[ObjectId, bytes]] = []
    if isinstance(data, ChunkedPayload):
        form, payload = PAYLOAD_CHUNKED, [data.size, list(data.chunk_ids)]
    else:
        packed = pack(data)
        if len(packed) > chunking.CHUNK_THRESHOLD:
            ids: list[bytes] = []
            for piece in chunking.cut(packed):
                cid, ccanon = encode_chunk(piece)
                chunks.append((cid, ccanon))
                ids.append(cid)
            form, payload = PAYLOAD_CHUNKED, [len(packed), ids]
        else:
            form, payload = PAYLOAD_INLINE, data
    header = [
        "b",
        BLOCK_VERSION,
        block.block_type.value,
        block.session_id,
        list(block.parents),
        block.sequence,
        block.timestamp_ns,
        block.device_id,
        block.user_id,
        form,
    ]
    canonical = pack([*header, payload, list(block.links)])
    chunk_ids = data.chunk_ids if isinstance(data, ChunkedPayload) else tuple(c for c, _ in chunks)
    return EncodedBlock(ObjectId.of(canonical), canonical, tuple(chunks), chunk_ids)


def encode_blob(data: bytes | memoryview) -> list[tuple[ObjectId, bytes]]:
    """Cut bytes into content-defined chunk objects (ids + canonical), in order.

    Higher layers store a blob's chunks and list their ids in a block's ``links``; equal
    content anywhere in the repository yields the same chunks, stored once.
    """
    return [encode_chunk(piece) for piece in chunking.cut(bytes(data))]


def object_kind(canonical: bytes) -> str:
    """``"b"`` for a block, ``"c"`` for a chunk (cheap: reads the first element only)."""
    # fixarray header, then a fixstr of length 1
    if len(canonical) >= 3 and canonical[1] == 0xA1:
        return chr(canonical[2])
    raise CorruptObjectError("object has no kind tag")


def decode_block(canonical: bytes, oid: ObjectId | None = None) -> Block:
    """Parse a block's canonical bytes (already verified against its id).

    A chunked payload comes back as a :class:`ChunkedPayload` for the repository to resolve.
    Any structural problem raises :class:`CorruptObjectError`.
    """
    v = unpack(canonical, "block")
    try:
        if not isinstance(v, list) or len(v) != 12 or v[0] != "b" or v[1] != BLOCK_VERSION:
            raise CorruptObjectError("not a block object (bad tag or version)")
        _, _, btype, sid, parents, seq, ts, dev, user, form, payload, links = v
        if not isinstance(links, list) or not all(
            isinstance(x, bytes) and len(x) == ID_BYTES for x in links
        ):
            raise CorruptObjectError("block links are malformed")
        if btype not in _TYPES:
            raise CorruptObjectError(f"unknown block type {btype!r}")
        if not (isinstance(sid, str) and isinstance(dev, str) and isinstance(user, str)):
            raise CorruptObjectError("block header strings have the wrong type")
        if not isinstance(parents, list) or len(parents) > MAX_PARENTS:
            raise CorruptObjectError("block parents are malformed")
        if not all(isinstance(p, bytes) and len(p) == ID_BYTES for p in parents):
            raise CorruptObjectError("a parent id is malformed")
        if not isinstance(seq, int) or seq < 0 or not isinstance(ts, int):
            raise CorruptObjectError("block sequence/timestamp malformed")
        if form == PAYLOAD_CHUNKED:
            if (
                not isinstance(payload, list)
                or len(payload) != 2
                or not isinstance(payload[0], int)
                or not isinstance(payload[1], list)
                or not all(isinstance(c, bytes) and len(c) == ID_BYTES for c in payload[1])
            ):
                raise CorruptObjectError("chunked payload reference is malformed")
            data: Any = ChunkedPayload(payload[0], tuple(ObjectId(c) for c in payload[1]))
        elif form == PAYLOAD_INLINE:
            data = payload
        else:
            raise CorruptObjectError(f"unknown payload form {form!r}")
    except CorruptObjectError as exc:
        if oid is not None and exc.object_id is None:
            exc.object_id = oid.hex()
        raise
    block = Block(
        _TYPES[btype],
        sid,
        [ObjectId(p) for p in parents],
        seq,
        ts,
        dev,
        user,
        data,
        [ObjectId(x) for x in links],
    )
    real_id = oid if oid is not None else ObjectId.of(canonical)
    chunk_ids = data.chunk_ids if isinstance(data, ChunkedPayload) else ()
    object.__setattr__(block, "_encoded", EncodedBlock(real_id, canonical, (), chunk_ids))
    return block


def resolve_chunked(block: Block, chunks: Iterable[bytes]) -> Block:
    """Return ``block`` with its chunked payload replaced by the value (ids unchanged)."""
    ref = block.data
    if not isinstance(ref, ChunkedPayload):
        return block
    packed = b"".join(chunks)
    if len(packed) != ref.size:
        raise CorruptObjectError(
            f"block {block.block_id}: payload is {len(packed)} bytes, expected {ref.size}",
            block.block_id,
        )
    value = unpack(packed, f"payload of block {block.block_id}")
    out = Block(
        block.block_type,
        block.session_id,
        block.parents,
        block.sequence,
        block.timestamp_ns,
        block.device_id,
        block.user_id,
        value,
        block.links,
    )
    object.__setattr__(out, "_encoded", block.encoded)
    return out
