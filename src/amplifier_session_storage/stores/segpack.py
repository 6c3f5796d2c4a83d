"""Segment packs (pack format version 2): canonical bytes compressed together, per segment.

A version-1 pack (``stores.pack``) keeps every object's frame, each compressed on its own
(zstd -3 of ~880 bytes: little context to compress with). A segment pack, written by
``LocalObjectStore.repack``, keeps the objects' **canonical** bytes concatenated into
segments of about ``segment_bytes`` (1 MiB), each segment ONE zstd frame: an object is read by
decompressing its segment only (~1 ms for 1 MiB), never the rest of the pack. Byte layout
(integers little-endian; specified in docs/design-local.md)::

    pack-<name>.pack
      header    8 bytes    b"ASPK", u32 version (2)
      segments  repeated   one zstd frame each (content size and XXH64 checksum included)
      trailer   32 bytes   BLAKE3-256 of every byte before it (the pack checksum)

    pack-<name>.idx
      header    24 bytes   b"ASIX", u32 version (2), u64 object count N, u64 pack file size
      fanout    256 x u32  fanout[b] = number of ids whose first byte is <= b
      ids       N x 32     the object ids, sorted ascending
      locations N x 12     u32 segment, u32 offset in the decompressed segment, u32 length
                           (bit 31 of length set: the bytes are a stored frame kept verbatim)
      segments  S x 16     u64 file offset, u32 compressed length, u32 decompressed length
      count     8          u64 S
      trailer   64 bytes   the pack checksum | BLAKE3-256 of every idx byte before this field

The header, fan-out and ids are those of version 1, so lookups, listing, ``.del`` records,
the id filter and the commit protocol are shared with ``stores.pack.PackReader``, which
dispatches reads here for a version-2 idx. ``read`` returns a raw frame
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
from concurrent.futures import Future, ThreadPoolExecutor

import zstandard
from blake3 import blake3

from ..core.codec import MAX_OBJECT_SIZE, frame, unframe_unverified
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
    create_tmp,
    datasync,
    fsync_dir,
    write_all,
)

__all__ = [
    "DEFAULT_LEVEL",
    "DEFAULT_SEGMENT_BYTES",
    "SEG_VERSION",
    "SegmentIndex",
    "SegmentPackWriter",
]

LOCATION = struct.Struct("<III")  # segment, offset in the decompressed segment, length|flag
SEGMENT = struct.Struct("<QII")  # file offset, compressed length, decompressed length
COUNT = struct.Struct("<Q")
RAW_FRAME = 0x8000_0000  # length flag: a stored frame kept verbatim (it did not unframe)
LENGTH_MASK = RAW_FRAME - 1
DEFAULT_SEGMENT_BYTES = 1 << 20
DEFAULT_LEVEL = 12
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


def _group_key(canonical: bytes) -> bytes:
    """Objects are grouped by their canonical prefix ``[kind, ...`` (msgpack array header and
    the kind string): blocks compress with blocks, chunks with chunks."""
    return canonical[:3]


class _Group:
    __slots__ = ("parts", "pending", "size")

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.pending: list[tuple[bytes, int, int]] = []  # id, offset, length|flag
        self.size = 0


class SegmentPackWriter:
    """Streams objects into a temp segment pack; :meth:`finish` commits pack and idx.

    ``add`` takes a stored frame (as every store API does) and keeps its canonical bytes.
    Objects are grouped by kind into up to :data:`MAX_GROUPS` segment streams, each
    flushed as one zstd frame when it reaches ``segment_bytes``; within a group the order of
    ``add`` is kept (session order compresses best). With ``threads`` > 1 segments are
    compressed in a thread pool (zstd releases the GIL); the file is the same either way.
    Memory: the open groups (up to ``MAX_GROUPS x segment_bytes``) plus segments in flight.
    """

    def __init__(
        self,
        dir_fd: int,
        *,
        fsync: bool = True,
        level: int = DEFAULT_LEVEL,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        threads: int = 1,
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
        self._entries: list[tuple[bytes, int, int, int]] = []  # id, segment, offset, length
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

    def add(self, oid: ObjectId | bytes, data: bytes | memoryview) -> None:
        try:
            body = unframe_unverified(data)
            flag = 0
            key = _group_key(body)
        except CorruptObjectError:
            body, flag, key = bytes(data), RAW_FRAME, b""  # damaged: keep it as it is
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
        g.pending.append((bytes(oid), g.size, n | flag))
        g.parts.append(body)
        g.size += n
        self._count += 1
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
        self._entries += [(oid, seg, off, n) for oid, off, n in done.pending]

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
        name = checksum.hex()
        dfd = self._dir_fd
        os.rename(self._tmp, f"pack-{name}.pack", src_dir_fd=dfd, dst_dir_fd=dfd)
        idx = build_seg_idx(self._entries, self._segments, self._pos + CHECKSUM, checksum)
        n = len(self._entries)
        tmp, fd = create_tmp(dfd, "idx")
        try:
            write_all(fd, idx)
            if self._fsync:
                datasync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, f"pack-{name}.idx", src_dir_fd=dfd, dst_dir_fd=dfd)
        if self._fsync:
            fsync_dir(dfd)
        return PackInfo(name, n, idx[IDS_AT : IDS_AT + n * ID_BYTES])

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
    entries: list[tuple[bytes, int, int, int]],
    segments: list[tuple[int, int, int]],
    pack_size: int,
    checksum: bytes,
) -> bytes:
    """The version-2 idx bytes for ``entries`` of (id, segment, offset, length|flag)."""
    entries.sort()
    n = len(entries)
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
            b"".join(SEGMENT.pack(*s) for s in segments),
            COUNT.pack(len(segments)),
            checksum,
        )
    )
    return body + blake3(body).digest()


class SegmentIndex:
    """The location and segment tables of a mapped version-2 idx, and segment reads.

    Construct with :meth:`open`, which checks the table sizes against the file size (the
    idx checksum itself is checked by ``PackReader``).
    """

    __slots__ = ("_cache", "_idx", "_loc_at", "_nseg", "_seg_at", "name")

    def __init__(self, name: str, idx: mmap.mmap, n: int, nseg: int) -> None:
        self.name = name
        self._idx = idx
        self._loc_at = IDS_AT + n * ID_BYTES
        self._seg_at = self._loc_at + n * LOCATION.size
        self._nseg = nseg
        self._cache: OrderedDict[int, bytes | None] = OrderedDict()

    @classmethod
    def open(cls, name: str, idx: mmap.mmap, size: int, n: int) -> SegmentIndex | None:
        """The tables of ``idx`` (``size`` bytes, ``n`` objects), or ``None`` if malformed."""
        fixed = IDS_AT + n * (ID_BYTES + LOCATION.size) + _TAIL
        if size < fixed:
            return None
        (nseg,) = COUNT.unpack_from(idx, size - _TAIL)
        if size != fixed + nseg * SEGMENT.size:
            return None
        return cls(name, idx, n, nseg)

    @property
    def segments(self) -> int:
        return self._nseg

    def clear(self) -> None:
        self._cache.clear()

    def location(self, pos: int) -> tuple[int, int, int, bool]:
        """(segment, offset, length, verbatim frame) of the object at idx position ``pos``."""
        seg, off, length = LOCATION.unpack_from(self._idx, self._loc_at + pos * LOCATION.size)
        return seg, off, length & LENGTH_MASK, bool(length & RAW_FRAME)

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
        seg, off, length, verbatim = self.location(pos)
        data = self.segment(fd, seg)
        if data is None or off + length > len(data):
            return b""
        body = data[off : off + length]
        if verbatim:
            return body
        if length > MAX_OBJECT_SIZE:
            return b""
        return frame(body, compress=False)
