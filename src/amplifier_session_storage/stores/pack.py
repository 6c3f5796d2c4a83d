"""Pack files: many frames in one file, found through a sorted index with a fan-out table.

Byte layout (integers little-endian; specified in docs/design-local.md)::

    pack-<name>.pack
      header   8 bytes    b"ASPK", u32 version (1)
      record   repeated   object id (32) | u32 frame length | frame bytes
      trailer  32 bytes   BLAKE3-256 of every byte before it (the pack checksum)

    pack-<name>.idx
      header   24 bytes   b"ASIX", u32 version (1), u64 object count N, u64 pack file size
      fanout   256 x u32  fanout[b] = number of ids whose first byte is <= b
      ids      N x 32     the object ids, sorted ascending
      offsets  N x u64    where each frame starts in the pack (after its 36-byte record head)
      lengths  N x u32    each frame's length
      trailer  64 bytes   the pack checksum | BLAKE3-256 of every idx byte before this field

``<name>`` is the hex pack checksum. The idx is the commit point: it is written (temp file,
fsync, rename) only after the pack is complete and fsync'd, so a pack without an idx is an
interrupted write and is ignored. Deleting a packed object appends its id to
``pack-<name>.del`` (32-byte records; a torn tail is ignored) instead of rewriting the pack;
``repack`` drops those records for good.

Also here: the small durable-file helpers both local stores use (``create_tmp``,
``write_all``, ``datasync``, ``open_dir``). ``stores.blob`` reuses the format constants and
``build_idx``: the same pack and idx bytes are uploaded as blobs.
"""

from __future__ import annotations

import contextlib
import itertools
import mmap
import os
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from blake3 import blake3

from ..core.ids import ID_BYTES, ObjectId

if TYPE_CHECKING:
    from .segpack import SegmentIndex

__all__ = [
    "IdFilter",
    "PackInfo",
    "PackReader",
    "PackWriter",
    "create_tmp",
    "datasync",
    "open_dir",
    "pack_name_of",
    "read_fd",
    "tmp_name",
    "write_all",
]

PACK_MAGIC = b"ASPK"
IDX_MAGIC = b"ASIX"
VERSION = 1
SEG_VERSION = 3  # a segment pack (stores.segpack), ids interned
SEG_VERSIONS = (2, 3)  # segment pack versions read
PACK_HEADER = struct.Struct("<4sI")
RECORD_HEAD = struct.Struct("<32sI")
IDX_HEADER = struct.Struct("<4sIQQ")
FANOUT = struct.Struct("<256I")
OFFSET = struct.Struct("<Q")
LENGTH = struct.Struct("<I")
CHECKSUM = 32
IDS_AT = IDX_HEADER.size + FANOUT.size  # 1048
FLUSH_AT = 4 * 1024 * 1024  # buffer this much of a pack before writing it out

# A random start: a process that reuses a crashed one's pid (containers) must not collide.
_tmp_counter = itertools.count(int.from_bytes(os.urandom(4), "little"))
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC

#: fdatasync where the OS has it (Linux); plain fsync elsewhere (macOS has no fdatasync).
datasync: Callable[[int], None] = getattr(os, "fdatasync", os.fsync)


def write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    """``os.write`` until every byte is written (large writes may be partial)."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def read_fd(fd: int) -> bytes:
    """Every byte of an open regular file (reads again after a short read)."""
    size = os.fstat(fd).st_size
    data = os.read(fd, size) if size else b""
    if len(data) < size:
        parts = [data]
        while chunk := os.read(fd, 1 << 20):
            parts.append(chunk)
        data = b"".join(parts)
    return data


def fsync_dir(fd: int) -> None:
    """Make the directory entries (creates, renames, unlinks) of an open directory durable."""
    os.fsync(fd)


def open_dir(path: Path, *, create: bool = False, fsync: bool = True) -> int:
    """An fd of directory ``path``; with ``create``, missing levels are made durably."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
    try:
        return os.open(path, flags)
    except FileNotFoundError:
        if not create:
            raise
    missing: list[Path] = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        try:
            os.mkdir(d, 0o755)
        except FileExistsError:
            continue
        if fsync:
            pfd = os.open(d.parent, flags)
            try:
                os.fsync(pfd)
            finally:
                os.close(pfd)
    return os.open(path, flags)


def tmp_name(prefix: str) -> str:
    """A temp-file name unique among the live processes (pid + per-process counter)."""
    return f"tmp-{prefix}-{os.getpid()}-{next(_tmp_counter)}"


def create_tmp(dir_fd: int, prefix: str) -> tuple[str, int]:
    """Create a new temp file (``O_EXCL``, mode 0444) in ``dir_fd``: its name and fd."""
    while True:
        name = tmp_name(prefix)
        try:
            return name, os.open(name, _NEW_FILE, 0o444, dir_fd=dir_fd)
        except FileExistsError:
            continue  # a leftover of a crashed process: pick the next name


def pack_name_of(filename: str) -> str | None:
    """``abc…`` for ``pack-abc….idx`` / ``.pack`` / ``.del``; ``None`` for anything else."""
    if not filename.startswith("pack-"):
        return None
    stem, dot, ext = filename[5:].rpartition(".")
    if not dot or ext not in ("idx", "pack", "del") or len(stem) != 64:
        return None
    return stem


@dataclass(frozen=True, slots=True)
class PackInfo:
    """A committed pack: its name, object count and sorted ids (32-byte records)."""

    name: str
    count: int
    ids: bytes


_PROBES = struct.Struct("<8x2Q8x")  # two hash positions: bytes 8..23 of an id


class IdFilter:
    """A Bloom filter over the ids of every pack, so a miss costs no per-pack search.

    Ids are BLAKE3 digests, hence uniform: two 64-bit slices of the id are the two probe
    positions. Sized at 32-64 bits per id when built and reported ``full`` below 10 bits per
    id (false positives then stay under 4%; a false positive only costs the per-pack search).
    """

    __slots__ = ("_bits", "_mask", "count")

    def __init__(self, capacity: int) -> None:
        nbits = 1 << max(16, (capacity * 32).bit_length())  # grows 3x+ before it is full
        self._bits = bytearray(nbits >> 3)
        self._mask = nbits - 1
        self.count = 0

    @property
    def full(self) -> bool:
        return self.count * 10 > self._mask + 1

    def add_block(self, ids: bytes) -> None:
        """Add every id of ``ids`` (concatenated 32-byte ids)."""
        bits, mask = self._bits, self._mask
        for a, b in _PROBES.iter_unpack(ids):
            a &= mask
            b &= mask
            bits[a >> 3] |= 1 << (a & 7)
            bits[b >> 3] |= 1 << (b & 7)
        self.count += len(ids) // ID_BYTES

    def __contains__(self, oid: bytes) -> bool:
        a, b = _PROBES.unpack(oid)
        mask = self._mask
        a &= mask
        b &= mask
        return bool(self._bits[a >> 3] >> (a & 7) & self._bits[b >> 3] >> (b & 7) & 1)


class PackWriter:
    """Streams records into a temp file; :meth:`finish` makes the pack and its idx durable."""

    def __init__(self, dir_fd: int, *, fsync: bool = True) -> None:
        self._dir_fd = dir_fd
        self._fsync = fsync
        self._tmp, self._fd = create_tmp(dir_fd, "pack")
        self._hash = blake3()
        self._parts: list[bytes | memoryview] = [PACK_HEADER.pack(PACK_MAGIC, VERSION)]
        self._pos = PACK_HEADER.size  # bytes of the pack so far
        self._flushed = 0  # of which already written out
        self._entries: list[tuple[bytes, int, int]] = []

    @property
    def count(self) -> int:
        return len(self._entries)

    def add(self, oid: ObjectId, data: bytes | memoryview) -> None:
        n = len(data)
        head = self._pos + RECORD_HEAD.size
        self._parts += (RECORD_HEAD.pack(oid, n), data)
        self._entries.append((oid, head, n))
        self._pos = head + n
        if self._pos - self._flushed >= FLUSH_AT:
            self._flush()

    def _flush(self) -> None:
        buf = b"".join(self._parts)
        self._hash.update(buf)
        write_all(self._fd, buf)
        self._parts = []
        self._flushed = self._pos

    def sync(self) -> None:
        """Write out and fdatasync what was added so far (so that :meth:`finish` has little
        left to sync: ``repack`` calls it before taking the journals' locks)."""
        self._flush()
        if self._fsync:
            datasync(self._fd)

    def finish(self) -> PackInfo:
        """Write trailer and idx; fsync pack, idx and directory (the idx rename commits)."""
        try:
            self._flush()
            checksum = self._hash.digest()
            write_all(self._fd, checksum)
            if self._fsync:
                datasync(self._fd)
        finally:
            os.close(self._fd)
        entries, size = self._entries, self._pos + CHECKSUM
        return commit_pack(
            self._dir_fd,
            self._tmp,
            checksum,
            lambda: build_idx(entries, size, checksum),
            len(entries),
            fsync=self._fsync,
        )

    def abort(self) -> None:
        """Drop the temp file (nothing was committed)."""
        with contextlib.suppress(OSError):
            os.close(self._fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._tmp, dir_fd=self._dir_fd)


def commit_pack(
    dir_fd: int,
    tmp_pack: str,
    checksum: bytes,
    make_idx: Callable[[], bytes],
    n: int,
    *,
    fsync: bool,
) -> PackInfo:
    """Commit a written, fdatasync'd temp pack: rename it to its checksum name, then write
    its idx (``make_idx()``) to a temp file, fdatasync, rename (the commit), fsync the
    directory. The pack is renamed first: a crash before the idx rename leaves a pack
    without an idx, which readers ignore and ``cleanup_incomplete`` removes."""
    name = checksum.hex()
    os.rename(tmp_pack, f"pack-{name}.pack", src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    if fsync:
        fsync_dir(dir_fd)  # the pack's name is durable before its idx commits it
    idx = make_idx()
    write_idx(dir_fd, name, idx, fsync=fsync)
    return PackInfo(name, n, idx[IDS_AT : IDS_AT + n * ID_BYTES])


def write_idx(dir_fd: int, name: str, idx: bytes, *, fsync: bool) -> None:
    """Commit the pack ``name`` (already in place under its name): its idx to a temp file,
    fdatasync, rename to ``pack-<name>.idx`` (the commit point), fsync the directory."""
    tmp, fd = create_tmp(dir_fd, "idx")
    try:
        write_all(fd, idx)
        if fsync:
            datasync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, f"pack-{name}.idx", src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    if fsync:
        fsync_dir(dir_fd)


def build_idx(entries: list[tuple[bytes, int, int]], pack_size: int, checksum: bytes) -> bytes:
    """The idx bytes for ``entries`` of (id, frame offset, frame length)."""
    entries.sort()
    n = len(entries)
    counts = [0] * 256
    for e in entries:
        counts[e[0][0]] += 1
    fanout = list(itertools.accumulate(counts))
    body = b"".join(
        (
            IDX_HEADER.pack(IDX_MAGIC, VERSION, n, pack_size),
            FANOUT.pack(*fanout),
            b"".join(e[0] for e in entries),
            struct.pack(f"<{n}Q", *(e[1] for e in entries)),
            struct.pack(f"<{n}I", *(e[2] for e in entries)),
            checksum,
        )
    )
    return body + blake3(body).digest()


class PackReader:
    """One committed pack, opened lazily: idx mmap'd, frames read with ``pread``.

    ``load`` validates the idx (magic, sizes, checksum) once; a pack whose file is missing is
    reported unusable (an interrupted write), while a pack shorter than its idx says is kept:
    the frames it cut short come back truncated and fail verification when unframed.
    """

    __slots__ = (
        "_fan",
        "_fd",
        "_idx",
        "_len_at",
        "_n",
        "_off_at",
        "_seg",
        "deleted",
        "dir_fd",
        "has_del",
        "name",
        "verified",
    )

    def __init__(self, dir_fd: int, name: str, has_del: bool = False) -> None:
        self.dir_fd = dir_fd
        self.name = name
        self.has_del = has_del
        self.verified = False
        self.deleted: set[bytes] = set()
        self._idx: mmap.mmap | None = None
        self._fd = -1
        self._fan: tuple[int, ...] = ()
        self._n = 0
        self._off_at = 0
        self._len_at = 0
        self._seg: SegmentIndex | None = None

    @property
    def loaded(self) -> bool:
        return self._idx is not None

    @property
    def segmented(self) -> bool:
        """A segment pack (version 2 or 3), once loaded: see ``stores.segpack``."""
        return self._seg is not None

    def load(self) -> bool:
        """Map the idx and open the pack; ``False`` if the pack is unusable (see class doc)."""
        dfd = self.dir_fd
        try:
            fd = os.open(f"pack-{self.name}.idx", os.O_RDONLY | os.O_CLOEXEC, dir_fd=dfd)
        except FileNotFoundError:
            return False
        try:
            size = os.fstat(fd).st_size
            if size < IDS_AT + 2 * CHECKSUM:
                return False
            idx = mmap.mmap(fd, size, prot=mmap.PROT_READ)
        finally:
            os.close(fd)
        magic, version, n, _pack_size = IDX_HEADER.unpack_from(idx, 0)
        seg: SegmentIndex | None = None
        if magic == IDX_MAGIC and version in SEG_VERSIONS:
            from .segpack import SegmentIndex  # segpack builds on this module

            seg = SegmentIndex.open(self.name, idx, size, n, version)
            ok = seg is not None
        else:
            ok = (
                magic == IDX_MAGIC
                and version == VERSION
                and size == IDS_AT + n * (ID_BYTES + 12) + 2 * CHECKSUM
            )
        ok = ok and idx[size - 2 * CHECKSUM : size - CHECKSUM].hex() == self.name
        if ok and not self.verified:
            ok = blake3(memoryview(idx)[: size - CHECKSUM]).digest() == idx[size - CHECKSUM :]
        if not ok:
            idx.close()
            return False
        try:
            self._fd = os.open(f"pack-{self.name}.pack", os.O_RDONLY | os.O_CLOEXEC, dir_fd=dfd)
        except FileNotFoundError:
            idx.close()
            return False
        self.verified = True
        self._idx = idx
        self._seg = seg
        self._n = n
        self._fan = FANOUT.unpack_from(idx, IDX_HEADER.size)
        self._off_at = IDS_AT + n * ID_BYTES
        self._len_at = self._off_at + n * 8
        if self.has_del and not self.deleted:
            self.deleted = self._read_deleted()
        return True

    def _read_deleted(self) -> set[bytes]:
        try:
            fd = os.open(f"pack-{self.name}.del", os.O_RDONLY | os.O_CLOEXEC, dir_fd=self.dir_fd)
        except FileNotFoundError:
            return set()
        try:
            raw = os.read(fd, os.fstat(fd).st_size)
        finally:
            os.close(fd)
        return {raw[i : i + ID_BYTES] for i in range(0, len(raw) - ID_BYTES + 1, ID_BYTES)}

    def max_segment_raw(self) -> int:
        """The largest decompressed segment of a segment pack (0 for a version-1 pack)."""
        seg = self._seg
        if seg is None:
            return 0
        return max((seg.segment_extent(i)[2] for i in range(seg.segments)), default=0)

    def reload_deleted(self) -> None:
        """Re-read the ``.del`` records (another process may have appended some)."""
        self.deleted = self._read_deleted()
        self.has_del = self.has_del or bool(self.deleted)

    def close(self) -> None:
        self._seg = None
        if self._idx is not None:
            self._idx.close()
            self._idx = None
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def find(self, oid: bytes) -> int:
        """Position of ``oid`` in the idx, or -1 (also for an id recorded as deleted)."""
        idx = self._idx
        assert idx is not None
        b = oid[0]
        lo = self._fan[b - 1] if b else 0
        hi = self._fan[b]
        while lo < hi:
            mid = (lo + hi) >> 1
            at = IDS_AT + mid * ID_BYTES
            key = idx[at : at + ID_BYTES]
            if key < oid:
                lo = mid + 1
            elif key == oid:
                if self.deleted and key in self.deleted:
                    return -1
                return mid
            else:
                hi = mid
        return -1

    def read(self, pos: int) -> bytes:
        """The frame at idx position ``pos`` (short if the pack file was truncated; in a
        segment pack: a raw frame, or ``b""`` if its segment is damaged)."""
        idx = self._idx
        assert idx is not None
        if self._seg is not None:
            return self._seg.read(self._fd, pos)
        (off,) = OFFSET.unpack_from(idx, self._off_at + pos * 8)
        (length,) = LENGTH.unpack_from(idx, self._len_at + pos * 4)
        return os.pread(self._fd, length, off)

    def id_block(self) -> bytes:
        """Every id in the idx (deleted ones included) as concatenated 32-byte records."""
        assert self._idx is not None
        return self._idx[IDS_AT : IDS_AT + self._n * ID_BYTES]

    def locate(self, pos: int) -> tuple[int, int]:
        """(offset, length) of the frame at idx position ``pos`` (test hooks); in a segment
        pack, of the compressed segment holding it."""
        idx = self._idx
        assert idx is not None
        if self._seg is not None:
            off, stored, _ = self._seg.segment_extent(self._seg.location(pos)[0])
            return off, stored
        return OFFSET.unpack_from(idx, self._off_at + pos * 8)[0], LENGTH.unpack_from(
            idx, self._len_at + pos * 4
        )[0]

    def ids(self) -> Iterator[tuple[int, bytes]]:
        """(position, id) of every live object, in id order."""
        idx = self._idx
        assert idx is not None
        deleted = self.deleted
        for pos in range(self._n):
            at = IDS_AT + pos * ID_BYTES
            oid = idx[at : at + ID_BYTES]
            if not deleted or oid not in deleted:
                yield pos, oid

    def ids_in_pack_order(self) -> list[tuple[int, bytes]]:
        """(position, id) of every live object in the order they sit in the pack (the order
        they were written; a segment pack: segment by segment), so a full copy reads the
        pack sequentially and a segment is decompressed once."""
        idx = self._idx
        assert idx is not None
        live = list(self.ids())
        seg = self._seg
        if seg is not None:
            rank = seg.write_rank()
            if rank is not None:  # version 3: the order objects were added in
                live.sort(key=lambda e: rank[e[0]])
            else:
                live.sort(key=lambda e: seg.location(e[0])[:2])
        else:
            off_at = self._off_at
            live.sort(key=lambda e: OFFSET.unpack_from(idx, off_at + e[0] * 8)[0])
        return live

    def mark_deleted(self, oid: bytes, *, fsync: bool) -> None:
        """Append ``oid`` to this pack's deletion records (durable when ``fsync``)."""
        fd = os.open(
            f"pack-{self.name}.del",
            os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
            0o644,
            dir_fd=self.dir_fd,
        )
        try:
            size = os.fstat(fd).st_size
            # Re-align after a torn earlier append so this record is read back whole.
            pad = (-size) % ID_BYTES
            write_all(fd, b"\0" * pad + oid)
            if fsync:
                datasync(fd)
        finally:
            os.close(fd)
        if fsync and size == 0:
            fsync_dir(self.dir_fd)
        self.has_del = True
        self.deleted.add(bytes(oid))
