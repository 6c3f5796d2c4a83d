"""Segment packs (pack format versions 2 and 3): canonical bytes compressed together.

A version-1 pack (``stores.pack``) keeps every object's frame, each compressed on its own
(zstd -3 of ~880 bytes: little context to compress with). A segment pack, written by
``LocalObjectStore.repack``, keeps the objects' **canonical** bytes concatenated into
segments of about ``segment_bytes`` (1 MiB), each segment ONE zstd frame: an object is read by
decompressing its segment only (~1 ms for 1 MiB), never the rest of the pack. Byte layout
(integers little-endian; specified in docs/design-local.md)::

    pack-<name>.pack
      header    8 bytes    b"ASPK", u32 version (3; 2 is still read)
      segments  repeated   one zstd frame each (content size and XXH64 checksum included)
      trailer   32 bytes   BLAKE3-256 of every byte before it (the pack checksum)

    pack-<name>.idx
      header    24 bytes   b"ASIX", u32 version (3 or 2), u64 object count N, u64 pack size
      fanout    256 x u32  fanout[b] = number of ids whose first byte is <= b
      ids       N x 32     the object ids, sorted ascending
      locations N x 12     u32 segment, u32 offset in the decompressed segment, u32 length
                           (bit 31 of length: the bytes are a stored frame kept verbatim;
                           bit 30: the bytes are interned, below)
      order     N x 4      version 3 only: u32 idx position of the k-th object added
      segments  S x 16     u64 file offset, u32 compressed length, u32 decompressed length
      count     8          u64 S
      trailer   64 bytes   the pack checksum | BLAKE3-256 of every idx byte before this field

**Interned ids (version 3).** An object's canonical msgpack names other objects by their
32-byte ids (``bin 8`` of 32 bytes: ``c4 20 <id>``): parents, links. Those ids are random,
so no compressor can shrink them, and they would be stored twice -- in the idx and in the
objects that name them. The writer replaces each such id that belongs to an object added
*earlier* to the same pack by the msgpack ext value ``d6 01 <u32 big-endian k>``
(fixext 4, type 1): "the k-th object added", whose id the ``order`` table finds. A body is
stored interned only if decoding it back (msgpack, ext values replaced by the ids,
re-encoded by ``core.codec.pack``) gives exactly the canonical bytes; otherwise it is
stored as it is. Readers expand interned bodies the same way, and every reader still
verifies the object's id against its canonical bytes, so a damaged table cannot pass off
wrong bytes.

The header, fan-out and ids are those of version 1, so lookups, listing, ``.del`` records,
the id filter and the commit protocol are shared with ``stores.pack.PackReader``, which
dispatches reads here for a segment idx. ``read`` returns a raw frame
(``core.codec.frame(canonical, compress=False)``): every reader verifies it with ``unframe``
as before. A frame that does not unframe when repacked (damage) is kept verbatim (flag bit),
so the damage stays detectable instead of being dropped or laundered. A segment that fails
its bounds, its zstd checksum or its declared sizes makes every object in it read as ``b""``
(an invalid frame: ``unframe`` raises ``CorruptObjectError``); other segments are unaffected.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import struct
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import msgpack
import zstandard
from blake3 import blake3

from ..core.codec import MAX_OBJECT_SIZE, frame, pack, unframe_unverified
from ..core.ids import ID_BYTES, ObjectId
from ..errors import CorruptObjectError, InvalidInputError
from .pack import (
    CHECKSUM,
    FANOUT,
    IDS_AT,
    IDX_HEADER,
    IDX_MAGIC,
    PACK_HEADER,
    PACK_MAGIC,
    SEG_VERSION,
    PackInfo,
    commit_pack,
    create_tmp,
    datasync,
    write_all,
)

__all__ = [
    "ARCHIVE_LEVEL",
    "ARCHIVE_SEGMENT_BYTES",
    "DEFAULT_LEVEL",
    "DEFAULT_SEGMENT_BYTES",
    "SEG_VERSION",
    "SegmentIndex",
    "SegmentPackWriter",
]

LOCATION = struct.Struct("<III")  # segment, offset in the decompressed segment, length|flag
SEGMENT = struct.Struct("<QII")  # file offset, compressed length, decompressed length
COUNT = struct.Struct("<Q")
ORDER = struct.Struct("<I")  # version 3: idx position of the k-th object added
RAW_FRAME = 0x8000_0000  # length flag: a stored frame kept verbatim (it did not unframe)
INTERNED = 0x4000_0000  # length flag: ids of earlier objects replaced by references
LENGTH_MASK = INTERNED - 1
REF_EXT = 1  # msgpack ext type of a reference: u32 big-endian write rank
_REF = struct.Struct(">BBI")  # fixext 4 (0xd6), type, rank
_ID_BIN = b"\xc4\x20"  # msgpack bin 8 header of a 32-byte value
DEFAULT_SEGMENT_BYTES = 1 << 20
DEFAULT_LEVEL = 12
#: ``sessctl archive`` (cold storage): slower to write, ~10% smaller, a read decompresses
#: up to 4 MiB (a few ms) instead of 1 MiB.
ARCHIVE_LEVEL = 19
ARCHIVE_SEGMENT_BYTES = 4 << 20
#: No segment decompresses to more than this (an object up to the object size limit, or a
#: verbatim frame of one, is a segment of its own); anything declaring more is corrupt.
MAX_SEGMENT_RAW = MAX_OBJECT_SIZE + (1 << 20)
#: zstd's worst-case expansion of MAX_SEGMENT_RAW, rounded up generously.
MAX_SEGMENT_STORED = MAX_SEGMENT_RAW + (MAX_SEGMENT_RAW >> 7) + (1 << 16)
CACHE_SEGMENTS = 8  # decompressed segments kept per pack (a session's blocks sit together)
MAX_GROUPS = 8  # segment streams open at once (objects grouped by kind)
_TAIL = COUNT.size + 2 * CHECKSUM  # 72

_local = threading.local()


def _decompressor() -> zstandard.ZstdDecompressor:
    d = getattr(_local, "seg_dctx", None)
    if d is None:
        d = _local.seg_dctx = zstandard.ZstdDecompressor()
    return d


def expand(body: bytes, id_of: Callable[[int], bytes]) -> bytes:
    """The canonical bytes of an interned body: references replaced by ``id_of(rank)``.
    Raises ``CorruptObjectError`` if the body does not decode or a rank is unknown."""

    def hook(code: int, data: bytes) -> Any:
        if code == REF_EXT and len(data) == 4:
            return id_of(int.from_bytes(data, "big"))
        return msgpack.ExtType(code, data)

    try:
        value = msgpack.unpackb(
            body, raw=False, strict_map_key=False, use_list=True, timestamp=0, ext_hook=hook
        )
        return pack(value)
    except CorruptObjectError:
        raise
    except Exception as exc:  # msgpack raises many types
        raise CorruptObjectError(f"interned object does not expand ({exc})") from exc


def _group_key(canonical: bytes) -> bytes:
    """Objects are grouped by their canonical prefix ``[kind, ...`` (msgpack array header and
    the kind string): blocks compress with blocks, chunks with chunks."""
    return canonical[:3]


class _Group:
    __slots__ = ("parts", "pending", "size")

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.pending: list[tuple[bytes, int, int, int]] = []  # id, offset, length|flag, rank
        self.size = 0


class SegmentPackWriter:
    """Streams objects into a temp segment pack; :meth:`finish` commits pack and idx.

    ``add`` takes a stored frame (as every store API does) and keeps its canonical bytes.
    Objects are grouped by kind into up to :data:`MAX_GROUPS` segment streams, each
    flushed as one zstd frame when it reaches ``segment_bytes``; within a group the order of
    ``add`` is kept (session order compresses best). With ``threads`` > 1 segments are
    compressed in a thread pool (zstd releases the GIL); the file is the same either way.
    Ids of objects added earlier are interned (module doc); ``intern=False`` turns that
    off. Memory: the open groups (up to ``MAX_GROUPS x segment_bytes``), segments in
    flight, and the ids added (~100 bytes each).
    """

    def __init__(
        self,
        dir_fd: int,
        *,
        fsync: bool = True,
        level: int = DEFAULT_LEVEL,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        threads: int = 1,
        intern: bool = True,
    ) -> None:
        if not 1 <= segment_bytes <= MAX_OBJECT_SIZE:
            raise InvalidInputError(f"segment_bytes must be 1..{MAX_OBJECT_SIZE}")
        if not -7 <= level <= 22:
            raise InvalidInputError("zstd level must be -7..22")
        self._dir_fd = dir_fd
        self._fsync = fsync
        self._level = level
        self._segment_bytes = segment_bytes
        self._tmp, self._fd = create_tmp(dir_fd, "pack")
        header = PACK_HEADER.pack(PACK_MAGIC, SEG_VERSION)
        self._hash = blake3(header)
        try:
            write_all(self._fd, header)
        except BaseException:
            self.abort()
            raise
        self._pos = len(header)
        self._groups: dict[bytes, _Group] = {}
        self._entries: list[tuple[bytes, int, int, int, int]] = []  # id, seg, off, len, rank
        self._intern = intern
        self._ranks: dict[bytes, int] = {}  # id -> rank (order of add), for interning
        self._by_rank: list[bytes] = []
        self._segments: list[tuple[int, int, int]] = []  # file offset, stored, raw
        self._count = 0
        self._pool = ThreadPoolExecutor(threads) if threads > 1 else None
        self._inflight: list[tuple[Future[bytes], _Group, int]] = []
        self._max_inflight = 2 * threads

    @property
    def count(self) -> int:
        return self._count

    def _compress(self, data: bytes) -> bytes:
        c = getattr(_local, "seg_cctx", None)
        if c is None or getattr(_local, "seg_level", None) != self._level:
            c = _local.seg_cctx = zstandard.ZstdCompressor(
                level=self._level, write_checksum=True, write_content_size=True
            )
            _local.seg_level = self._level
        out: bytes = c.compress(data)
        return out

    def _interned(self, body: bytes) -> bytes | None:
        """``body`` with the ids of earlier objects replaced by references, or ``None``
        (none found, or the result would not expand back to ``body`` exactly)."""
        find, ranks = body.find, self._ranks
        parts: list[bytes] = []
        last = 0
        p = find(_ID_BIN)
        while p >= 0:
            rank = ranks.get(body[p + 2 : p + 34])
            if rank is None:
                p = find(_ID_BIN, p + 1)
                continue
            parts += (body[last:p], _REF.pack(0xD6, REF_EXT, rank))
            last = p + 34
            p = find(_ID_BIN, last)
        if not parts:
            return None
        parts.append(body[last:])
        out = b"".join(parts)
        try:
            if expand(out, self._by_rank.__getitem__) != body:
                return None
        except CorruptObjectError:
            return None
        return out

    def add(self, oid: ObjectId | bytes, data: bytes | memoryview) -> None:
        try:
            body = unframe_unverified(data)
            flag = 0
            key = _group_key(body)
        except CorruptObjectError:
            body, flag, key = bytes(data), RAW_FRAME, b""  # damaged: keep it as it is
        raw_id = bytes(oid)
        if not flag and self._intern:
            interned = self._interned(body)
            if interned is not None:
                body, flag = interned, INTERNED
        n = len(body)
        if n > MAX_SEGMENT_RAW:
            raise InvalidInputError(f"object {bytes(oid).hex()}: {n} bytes is too large")
        g = self._groups.get(key)
        if g is None:
            if len(self._groups) >= MAX_GROUPS:
                key = b"*"
                g = self._groups.get(key)
            if g is None:
                g = self._groups[key] = _Group()
        if g.size and g.size + n > self._segment_bytes:
            self._close(g)
        rank = self._count
        g.pending.append((raw_id, g.size, n | flag, rank))
        g.parts.append(body)
        g.size += n
        self._count += 1
        if self._intern:
            self._ranks.setdefault(raw_id, rank)
            self._by_rank.append(raw_id)
        if g.size >= self._segment_bytes:
            self._close(g)

    def _close(self, g: _Group) -> None:
        """Hand the group's segment to the compressor; the group starts a new one."""
        done = _Group()
        done.pending, done.size = g.pending, g.size
        data = b"".join(g.parts)
        g.parts, g.pending, g.size = [], [], 0
        if self._pool is None:
            self._write_segment(self._compress(data), done)
            return
        self._inflight.append((self._pool.submit(self._compress, data), done, len(data)))
        if len(self._inflight) > self._max_inflight:
            self._drain(self._max_inflight)

    def _drain(self, keep: int = 0) -> None:
        while len(self._inflight) > keep:
            fut, done, _ = self._inflight.pop(0)
            self._write_segment(fut.result(), done)

    def _write_segment(self, z: bytes, done: _Group) -> None:
        seg = len(self._segments)
        self._segments.append((self._pos, len(z), done.size))
        self._hash.update(z)
        write_all(self._fd, z)
        self._pos += len(z)
        self._entries += [(oid, seg, off, n, rank) for oid, off, n, rank in done.pending]

    def _flush_all(self) -> None:
        for g in list(self._groups.values()):
            if g.pending:
                self._close(g)
        self._drain()

    def sync(self) -> None:
        """Write out and fdatasync everything added so far (closing the open segments)."""
        self._flush_all()
        if self._fsync:
            datasync(self._fd)

    def finish(self) -> PackInfo:
        """Write trailer and idx; fsync pack, idx and directory (the idx rename commits)."""
        try:
            self._flush_all()
            checksum = self._hash.digest()
            write_all(self._fd, checksum)
            if self._fsync:
                datasync(self._fd)
        finally:
            self._shutdown()
            os.close(self._fd)
            self._fd = -1
        entries, segments, size = self._entries, self._segments, self._pos + CHECKSUM
        return commit_pack(
            self._dir_fd,
            self._tmp,
            checksum,
            # looked up at call time: tests replace it to crash between the two renames
            lambda: build_seg_idx(entries, segments, size, checksum),
            len(entries),
            fsync=self._fsync,
        )

    def _shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self._inflight = []

    def abort(self) -> None:
        """Drop the temp file (nothing was committed)."""
        self._shutdown()
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = -1
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._tmp, dir_fd=self._dir_fd)


def build_seg_idx(
    entries: list[tuple[bytes, int, int, int, int]],
    segments: list[tuple[int, int, int]],
    pack_size: int,
    checksum: bytes,
) -> bytes:
    """The version-3 idx bytes for ``entries`` of (id, segment, offset, length|flag, rank),
    ranks ``0..N-1`` (the order of ``add``)."""
    entries.sort()
    n = len(entries)
    order = [0] * n
    for pos, e in enumerate(entries):
        order[e[4]] = pos
    counts = [0] * 256
    for e in entries:
        counts[e[0][0]] += 1
    fanout: list[int] = []
    total = 0
    for c in counts:
        total += c
        fanout.append(total)
    body = b"".join(
        (
            IDX_HEADER.pack(IDX_MAGIC, SEG_VERSION, n, pack_size),
            FANOUT.pack(*fanout),
            b"".join(e[0] for e in entries),
            b"".join(LOCATION.pack(e[1], e[2], e[3]) for e in entries),
            struct.pack(f"<{n}I", *order),
            b"".join(SEGMENT.pack(*s) for s in segments),
            COUNT.pack(len(segments)),
            checksum,
        )
    )
    return body + blake3(body).digest()


class SegmentIndex:
    """The location, order and segment tables of a mapped segment idx, and segment reads.

    Construct with :meth:`open`, which checks the table sizes against the file size (the
    idx checksum itself is checked by ``PackReader``).
    """

    __slots__ = ("_cache", "_idx", "_loc_at", "_n", "_nseg", "_ord_at", "_seg_at", "name")

    def __init__(self, name: str, idx: mmap.mmap, n: int, nseg: int, version: int) -> None:
        self.name = name
        self._idx = idx
        self._n = n
        self._loc_at = IDS_AT + n * ID_BYTES
        self._ord_at = self._loc_at + n * LOCATION.size
        self._seg_at = self._ord_at + (n * ORDER.size if version >= 3 else 0)
        if version < 3:
            self._ord_at = -1
        self._nseg = nseg
        self._cache: OrderedDict[int, bytes | None] = OrderedDict()

    @classmethod
    def open(
        cls, name: str, idx: mmap.mmap, size: int, n: int, version: int = SEG_VERSION
    ) -> SegmentIndex | None:
        """The tables of ``idx`` (``size`` bytes, ``n`` objects, format ``version``), or
        ``None`` if malformed."""
        per = ID_BYTES + LOCATION.size + (ORDER.size if version >= 3 else 0)
        fixed = IDS_AT + n * per + _TAIL
        if size < fixed:
            return None
        (nseg,) = COUNT.unpack_from(idx, size - _TAIL)
        if size != fixed + nseg * SEGMENT.size:
            return None
        return cls(name, idx, n, nseg, version)

    @property
    def segments(self) -> int:
        return self._nseg

    def clear(self) -> None:
        self._cache.clear()

    def location(self, pos: int) -> tuple[int, int, int, bool]:
        """(segment, offset, length, verbatim frame) of the object at idx position ``pos``."""
        seg, off, length = LOCATION.unpack_from(self._idx, self._loc_at + pos * LOCATION.size)
        return seg, off, length & LENGTH_MASK, bool(length & RAW_FRAME)

    def id_of_rank(self, rank: int) -> bytes:
        """The id of the ``rank``-th object added (version 3); ``CorruptObjectError`` if
        the order table has no such entry."""
        if self._ord_at < 0 or not 0 <= rank < self._n:
            raise CorruptObjectError(f"pack {self.name}: reference to unknown object #{rank}")
        (pos,) = ORDER.unpack_from(self._idx, self._ord_at + rank * ORDER.size)
        if pos >= self._n:
            raise CorruptObjectError(f"pack {self.name}: order table entry out of range")
        at = IDS_AT + pos * ID_BYTES
        return self._idx[at : at + ID_BYTES]

    def write_rank(self) -> list[int] | None:
        """For each idx position, the rank its object was added at (version 3), else None."""
        if self._ord_at < 0:
            return None
        rank = [0] * self._n
        for r, (pos,) in enumerate(ORDER.iter_unpack(self._idx[self._ord_at : self._seg_at])):
            if pos < self._n:
                rank[pos] = r
        return rank

    def segment_extent(self, seg: int) -> tuple[int, int, int]:
        """(file offset, compressed length, decompressed length) of segment ``seg``."""
        off, stored, raw = SEGMENT.unpack_from(self._idx, self._seg_at + seg * SEGMENT.size)
        return off, stored, raw

    def segment(self, fd: int, seg: int) -> bytes | None:
        """The decompressed segment ``seg``, or ``None`` if it is damaged (bounds, sizes,
        zstd checksum). Kept in a small LRU cache."""
        cache = self._cache
        if seg in cache:
            cache.move_to_end(seg)
            return cache[seg]
        data = self._load(fd, seg)
        cache[seg] = data
        if len(cache) > CACHE_SEGMENTS:
            cache.popitem(last=False)
        return data

    def _load(self, fd: int, seg: int) -> bytes | None:
        if seg >= self._nseg:
            return None
        off, stored, raw = self.segment_extent(seg)
        if stored > MAX_SEGMENT_STORED or raw > MAX_SEGMENT_RAW or off < PACK_HEADER.size:
            return None
        z = os.pread(fd, stored, off)
        if len(z) != stored:
            return None  # the pack file was cut short
        try:
            # Never trust the frame's own size field: it must match the checked table.
            if zstandard.frame_content_size(z) != raw:
                return None
            out = _decompressor().decompress(z, max_output_size=raw)
        except zstandard.ZstdError:
            return None
        return out if len(out) == raw else None

    def read(self, fd: int, pos: int) -> bytes:
        """The frame of the object at idx position ``pos``: a raw frame of its canonical
        bytes, its verbatim stored frame, or ``b""`` when its segment is damaged."""
        seg, off, length = LOCATION.unpack_from(self._idx, self._loc_at + pos * LOCATION.size)
        flags, length = length & ~LENGTH_MASK, length & LENGTH_MASK
        data = self.segment(fd, seg)
        if data is None or off + length > len(data):
            return b""
        body = data[off : off + length]
        if flags & RAW_FRAME:
            return body
        if flags & INTERNED:
            try:
                body = expand(body, self.id_of_rank)
            except CorruptObjectError:
                return b""  # reads as an invalid frame: the object is reported corrupt
        if len(body) > MAX_OBJECT_SIZE:
            return b""
        return frame(body, compress=False)
