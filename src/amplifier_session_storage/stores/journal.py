"""Journal packs: small durable writes appended to one open pack file, sealed when full.

A single ``put`` (or a ``put_many`` of a few objects: one append with its chunks) would cost a
new file per object as a loose write. Instead the records go to the end of the active journal
``objects/pack/journal-<n>.pack``, whose bytes are exactly a pack's without the trailer::

    header   8 bytes    b"ASPK", u32 version (1)
    record   repeated   object id (32) | u32 frame length L | frame (L bytes)
                        L = 0 is a tombstone: the id is deleted (from this journal)

An append takes ``flock(LOCK_EX)`` on the journal file (so several processes can append),
checks the file is still the one named ``journal-<n>.pack``, reads what other processes
appended since it last looked, cuts off a torn tail (a record a crashed writer left
incomplete; only bytes past the last complete record), writes its records with one
``pwrite`` and fdatasyncs them before releasing the lock: **one sync, no new file**. No
index is stored: every process indexes a journal in memory by scanning it (at first use; a
lookup miss reads only what was appended since).

When a journal reaches ``seal_bytes`` or ``seal_records`` it is sealed under its lock: the
pack trailer (BLAKE3 of every byte before it) is appended and fdatasynced, the file is
hard-linked as ``pack-<P>.pack``, its idx (the live records only) is written and renamed in
as ``pack-<P>.idx`` (the commit point, as for any pack), ``journal-<n+1>.pack`` is created and
``journal-<n>.pack`` unlinked. A crash at any point leaves every record readable: before the
idx rename the journal is still a journal (the 32 trailer bytes read as a torn tail, and the
next writer removes them and the stale ``pack-<P>.pack`` link); after it, the journal's tail
names a committed idx, so readers skip the journal and the next writer finishes the seal.

Byte layout and protocol are specified in docs/design-local.md ("Journal").
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from collections.abc import Iterable, Iterator, Sequence

from blake3 import blake3

from ..core.ids import ObjectId
from .pack import (
    CHECKSUM,
    PACK_HEADER,
    PACK_MAGIC,
    RECORD_HEAD,
    VERSION,
    PackWriter,
    build_idx,
    create_tmp,
    datasync,
    fsync_dir,
    write_all,
    write_idx,
)

__all__ = [
    "MAX_BATCH_BYTES",
    "MAX_BATCH_OBJECTS",
    "SEAL_BYTES",
    "SEAL_RECORDS",
    "Journal",
    "Journals",
    "journal_number",
]

MAX_BATCH_OBJECTS = 16  # a put_many of at most this many new objects goes to the journal
MAX_BATCH_BYTES = 1 << 20  # ... if its records (36-byte heads included) fit in this
SEAL_BYTES = 8 << 20  # a journal this large is sealed into a pack
SEAL_RECORDS = 20_000  # ... or one with this many records (tombstones included)
# A crash tears at most the batch being written (records are written under the lock and
# synced before it is released). A "torn" tail longer than any batch is not a crash: it is
# damage (e.g. a flipped length field), and its bytes are kept aside rather than cut off.
TORN_MAX = MAX_BATCH_BYTES

HEADER = PACK_HEADER.pack(PACK_MAGIC, VERSION)
HEAD = RECORD_HEAD.size  # 36
_SUFFIXES = (".pack", ".damaged")

OPEN, SEALED, BAD, GONE = "open", "sealed", "bad", "gone"


def journal_number(filename: str) -> int | None:
    """``n`` for ``journal-<n>.pack`` (and ``.damaged``); ``None`` for any other name."""
    if not filename.startswith("journal-"):
        return None
    for suffix in _SUFFIXES:
        if filename.endswith(suffix):
            digits = filename[8 : -len(suffix)]
            if digits.isdigit() and digits.isascii() and len(digits) < 19:
                return int(digits)
    return None


def _pwrite_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, offset)
        view = view[n:]
        offset += n


class Journal:
    """One ``journal-<n>.pack``: an open fd, and the in-memory index of its records.

    ``end`` is the end of the last complete record read so far, ``tail`` the bytes after it
    at the last scan (a record being written, or torn), ``synced`` how far this process
    knows the file to be durable (its own fdatasync covered everything before it).
    """

    __slots__ = (
        "count",
        "dir_fd",
        "end",
        "fd",
        "index",
        "ino",
        "name",
        "number",
        "sealed_as",
        "state",
        "synced",
        "tail",
    )

    def __init__(self, dir_fd: int, number: int) -> None:
        self.dir_fd = dir_fd
        self.number = number
        self.name = f"journal-{number}.pack"
        try:
            self.fd = os.open(self.name, os.O_RDWR | os.O_CLOEXEC, dir_fd=dir_fd)
        except PermissionError:
            self.fd = os.open(self.name, os.O_RDONLY | os.O_CLOEXEC, dir_fd=dir_fd)
        self.ino = os.fstat(self.fd).st_ino
        self.index: dict[bytes, tuple[int, int]] = {}
        self.end = 0
        self.tail = 0
        self.count = 0
        self.synced = 0
        self.state = OPEN
        self.sealed_as = ""

    # -- reading -----------------------------------------------------------------------

    def scan(self) -> None:
        """Index the complete records appended since the last scan (all of them at first)."""
        if self.state is not OPEN:
            return
        size = os.fstat(self.fd).st_size
        if size < self.end:  # rewritten below what we read (a test hook, a manual fix)
            self.index.clear()
            self.end = self.count = self.synced = 0
        if self.end == 0:
            if size < PACK_HEADER.size:
                self.tail = size  # created, header not written yet (a crash in between)
                return
            if os.pread(self.fd, PACK_HEADER.size, 0) != HEADER:
                self.state = BAD
                return
            self.end = PACK_HEADER.size
        if size == self.end:
            self.tail = 0
            return
        data = os.pread(self.fd, size - self.end, self.end)
        index, base, pos, count = self.index, self.end, 0, 0
        stop = len(data) - HEAD
        unpack = RECORD_HEAD.unpack_from
        while pos <= stop:
            oid, n = unpack(data, pos)
            nxt = pos + HEAD + n
            if nxt > len(data):
                break
            if n:
                index[oid] = (base + pos + HEAD, n)
            else:
                index.pop(oid, None)
            pos = nxt
            count += 1
        self.end = base + pos
        self.count += count
        self.tail = len(data) - pos
        if self.tail == CHECKSUM:
            trailer = data[pos:].hex()
            with contextlib.suppress(FileNotFoundError):
                os.stat(f"pack-{trailer}.idx", dir_fd=self.dir_fd)
                self.state = SEALED  # its records are in that committed pack now
                self.sealed_as = trailer

    def grew(self) -> bool:
        """Whether there is more than the complete records read so far (another writer
        appended; or a tail, read again: a torn tail may have been replaced meanwhile)."""
        return self.state is OPEN and os.fstat(self.fd).st_size != self.end

    def reset(self) -> None:
        """Forget the index (the file was rewritten behind our back: test hooks)."""
        self.index.clear()
        self.end = self.count = self.synced = self.tail = 0

    def find(self, oid: bytes) -> tuple[int, int] | None:
        """(frame offset, frame length) of ``oid``, or ``None``."""
        return self.index.get(oid)

    def read(self, off: int, n: int) -> bytes:
        return os.pread(self.fd, n, off)

    def live(self, since: int = 0) -> Iterator[tuple[bytes, int, int]]:
        """(id, offset, length) of the live records starting at or after ``since``."""
        for oid, (off, n) in sorted(self.index.items(), key=lambda kv: kv[1][0]):
            if off >= since:
                yield oid, off, n

    def make_durable(self, off: int, fsync: bool) -> None:
        """Before trusting a record another process wrote (deduplicating against it): make
        sure it is on disk, in case its writer died between its write and its fdatasync."""
        if fsync and off >= self.synced:
            datasync(self.fd)
            self.synced = self.end

    # -- writing (the lock must be held) -----------------------------------------------

    def lock(self) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def unlock(self) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_UN)

    def linked(self) -> bool:
        """Whether ``journal-<n>.pack`` still names this file (not sealed or retired)."""
        try:
            st = os.stat(self.name, dir_fd=self.dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        return st.st_ino == self.ino

    def append(self, records: bytes, entries: list[tuple[bytes, int]], fsync: bool) -> None:
        """Write ``records`` (complete, with heads) at ``end``; ``entries``: (id, frame
        length) in order, 0 for a tombstone. Lock held, tail already cut."""
        _pwrite_all(self.fd, records, self.end)
        if fsync:
            datasync(self.fd)
        pos = self.end
        for oid, n in entries:
            if n:
                self.index[oid] = (pos + HEAD, n)
            else:
                self.index.pop(oid, None)
            pos += HEAD + n
        self.end = pos
        self.count += len(entries)
        self.synced = pos

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        self.state = GONE


def _records(
    items: Iterable[tuple[bytes, bytes | memoryview]],
) -> tuple[bytes, list[tuple[bytes, int]]]:
    parts: list[bytes | memoryview] = []
    entries: list[tuple[bytes, int]] = []
    for oid, data in items:
        parts += (RECORD_HEAD.pack(oid, len(data)), data)
        entries.append((bytes(oid), len(data)))
    return b"".join(parts), entries


class Journals:
    """Every journal of one pack directory, as seen by one store object.

    Lookups (``find``) use the journals' in-memory indexes and never lock. Writes
    (``append``, ``tombstone``) lock one journal at a time. The owning store tells it which
    journal files exist (``sync_names``, from its directory listing); when a write finds its
    journal sealed or retired, the directory is listed again here.
    """

    def __init__(
        self,
        dir_fd: int,
        *,
        fsync: bool = True,
        seal_bytes: int = SEAL_BYTES,
        seal_records: int = SEAL_RECORDS,
    ) -> None:
        self.dir_fd = dir_fd
        self.fsync = fsync
        self.seal_bytes = seal_bytes
        self.seal_records = seal_records
        self._by_number: dict[int, Journal] = {}
        self._order: list[Journal] = []  # newest first
        # This object changed the directory (a seal or a set-aside committed a pack) or
        # listed it itself (relist): the owning store's listing is out of date.
        self.dir_changed = False

    # -- which journals exist ----------------------------------------------------------

    def sync_names(self, found: dict[int, int]) -> bool:
        """Adopt the directory listing: ``found`` maps journal number -> inode. ``False`` if
        a journal it names was gone by the time it was opened: the listing is out of date."""
        whole = True
        for number, j in list(self._by_number.items()):
            if found.get(number) != j.ino:
                self._drop(j)
        for number in found.keys() - self._by_number.keys():
            try:
                self._by_number[number] = Journal(self.dir_fd, number)
            except FileNotFoundError:
                whole = False
        self._order = sorted(self._by_number.values(), key=lambda j: -j.number)
        return whole

    def _listing(self) -> tuple[dict[int, int], int]:
        """(journal number -> inode of every journal file, highest number ever used)."""
        found: dict[int, int] = {}
        top = 0
        for entry in os.scandir(self.dir_fd):
            n = journal_number(entry.name)
            if n is not None:
                top = max(top, n)
                if entry.name.endswith(".pack"):
                    found[n] = entry.inode()
        return found, top

    def relist(self) -> int:
        found, top = self._listing()
        self.sync_names(found)
        self.dir_changed = True  # the store lists again too: packs may have changed as well
        return top

    def _drop(self, j: Journal) -> None:
        self._by_number.pop(j.number, None)
        if j in self._order:
            self._order.remove(j)
        j.close()

    def all(self) -> list[Journal]:
        """The open journals, newest first, each scanned up to what is on disk now."""
        for j in list(self._order):
            j.scan()
        return [j for j in self._order if j.state is OPEN]

    def close(self) -> None:
        for j in list(self._order):
            j.close()
        self._by_number.clear()
        self._order = []

    # -- lookups -----------------------------------------------------------------------

    def find(self, oid: bytes) -> tuple[Journal, int, int] | None:
        for j in self._order:
            if j.end == 0:
                j.scan()
            hit = j.index.get(oid)
            if hit is not None and j.state is OPEN:
                return j, hit[0], hit[1]
        return None

    def rescan(self) -> bool:
        """Read what other processes appended; ``True`` if any journal changed."""
        changed = False
        for j in self._order:
            if j.end == 0 or j.grew():
                j.scan()
                changed = True
        return changed

    def ids(self) -> Iterator[bytes]:
        for j in self.all():
            yield from list(j.index)

    # -- writing -----------------------------------------------------------------------

    def _create(self, number: int) -> None:
        """Create ``journal-<number>.pack`` (header fdatasynced, directory fsynced)."""
        try:
            fd = os.open(
                f"journal-{number}.pack",
                os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
                0o644,
                dir_fd=self.dir_fd,
            )
        except FileExistsError:
            return  # another process made it
        try:
            write_all(fd, HEADER)
            if self.fsync:
                datasync(fd)
        finally:
            os.close(fd)
        if self.fsync:
            fsync_dir(self.dir_fd)

    def _active(self) -> Journal:
        """The newest journal (created when there is none)."""
        while True:
            if self._order:
                return self._order[0]
            top = self.relist()
            if not self._order:
                self._create(top + 1)
                self.relist()

    def _prepare(self, j: Journal) -> bool:
        """With ``j`` locked: read it to the end and make it ready for an append. ``False``
        if ``j`` cannot take appends any more (sealed, retired, damaged): pick again."""
        if not j.linked():
            self._drop(j)
            self.relist()
            return False
        j.scan()
        if j.state is SEALED:
            self._finish_seal(j)
            return False
        if j.state is BAD or j.tail > TORN_MAX:
            self._set_aside(j)
            return False
        if j.end == 0:  # created, header never written: write it now
            os.ftruncate(j.fd, 0)
            _pwrite_all(j.fd, HEADER, 0)
            j.end, j.tail = PACK_HEADER.size, 0
        elif j.tail:
            if j.tail == CHECKSUM:  # an unfinished seal may have linked the file as a pack
                trailer = os.pread(j.fd, CHECKSUM, j.end).hex()
                name = f"pack-{trailer}.pack"
                with contextlib.suppress(FileNotFoundError):
                    if os.stat(name, dir_fd=self.dir_fd).st_ino == j.ino:
                        os.unlink(name, dir_fd=self.dir_fd)
            os.ftruncate(j.fd, j.end)  # only bytes past the last complete record
            j.tail = 0
        return True

    def append(self, items: Sequence[tuple[bytes, bytes | memoryview]]) -> None:
        """Append the records of ``items`` (those not in the journal yet) durably."""
        while True:
            j = self._active()
            j.lock()
            try:
                if not self._prepare(j):
                    continue
                todo = [(oid, data) for oid, data in items if oid not in j.index]
                if todo:  # its fdatasync covers the file's other records too
                    records, entries = _records(todo)
                    j.append(records, entries, self.fsync)
                else:  # all there: written by another process, maybe not yet durable
                    j.make_durable(max(j.index[oid][0] for oid, _ in items), self.fsync)
                if j.end >= self.seal_bytes or j.count >= self.seal_records:
                    self._seal(j)
                return
            finally:
                if j.fd >= 0:
                    j.unlock()

    def tombstone(self, oid: bytes) -> bool:
        """Delete ``oid`` from every open journal holding it; ``True`` if one did."""
        found = False
        for j in list(self._order):
            if j.end == 0 or j.grew():
                j.scan()
            if j.state is not OPEN or oid not in j.index:
                continue
            j.lock()
            try:
                if not self._prepare(j) or oid not in j.index:
                    continue  # sealed meanwhile: the pack's deletion record covers it
                records, entries = _records([(oid, b"")])
                j.append(records, entries, self.fsync)
                found = True
                if j.end >= self.seal_bytes or j.count >= self.seal_records:
                    self._seal(j)
            finally:
                if j.fd >= 0:
                    j.unlock()
        return found

    # -- sealing -----------------------------------------------------------------------

    def _seal(self, j: Journal) -> None:
        """Turn ``j`` (locked, fully read, no tail) into a committed pack; start the next."""
        dfd, fsync = self.dir_fd, self.fsync
        body = os.pread(j.fd, j.end, 0)
        checksum = blake3(body).digest()
        del body
        name = checksum.hex()
        _pwrite_all(j.fd, checksum, j.end)
        if fsync:
            datasync(j.fd)
        pack = f"pack-{name}.pack"
        try:
            os.link(j.name, pack, src_dir_fd=dfd, dst_dir_fd=dfd, follow_symlinks=False)
        except FileExistsError:
            pass  # the same bytes are already a pack (an earlier, interrupted seal)
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EMLINK):
                raise
            self._copy_as(j, pack, j.end + CHECKSUM)
        if fsync:
            fsync_dir(dfd)  # the pack's name is durable before its idx commits it
        entries = [(oid, off, n) for oid, (off, n) in j.index.items()]
        write_idx(dfd, name, build_idx(entries, j.end + CHECKSUM, checksum), fsync=fsync)
        j.state, j.sealed_as, j.tail = SEALED, name, CHECKSUM
        self.dir_changed = True
        self._finish_seal(j)

    def _copy_as(self, j: Journal, target: str, size: int) -> None:
        """Copy ``j``'s first ``size`` bytes to ``target`` (where hard links are refused)."""
        tmp, fd = create_tmp(self.dir_fd, "pack")
        try:
            off = 0
            while off < size:
                chunk = os.pread(j.fd, min(4 << 20, size - off), off)
                write_all(fd, chunk)
                off += len(chunk)
            if self.fsync:
                datasync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, target, src_dir_fd=self.dir_fd, dst_dir_fd=self.dir_fd)

    def _finish_seal(self, j: Journal) -> None:
        """``j`` (locked) is a committed pack: start its successor, unlink the journal."""
        dfd = self.dir_fd
        pack = f"pack-{j.sealed_as}.pack"
        try:
            os.stat(pack, dir_fd=dfd)
        except FileNotFoundError:  # removed meanwhile (cleanup): this file is the only copy
            os.link(j.name, pack, src_dir_fd=dfd, dst_dir_fd=dfd, follow_symlinks=False)
        found, top = self._listing()
        if not any(n > j.number for n in found):
            self._create(top + 1)  # the successor: numbers only grow
        with contextlib.suppress(FileNotFoundError):
            os.unlink(j.name, dir_fd=dfd)
        if self.fsync:
            fsync_dir(dfd)
        self.dir_changed = True
        self._drop(j)
        self.relist()

    def _set_aside(self, j: Journal) -> None:
        """``j`` (locked) is damaged: copy its readable records into a pack, rename the file
        to ``journal-<n>.damaged`` (kept for inspection, never read) and move on."""
        if j.state is OPEN and j.index:
            writer = PackWriter(self.dir_fd, fsync=self.fsync)
            try:
                for oid, off, n in j.live():
                    writer.add(ObjectId(oid), j.read(off, n))
                writer.finish()
            except BaseException:
                writer.abort()
                raise
            self.dir_changed = True
        dfd = self.dir_fd
        os.rename(j.name, f"journal-{j.number}.damaged", src_dir_fd=dfd, dst_dir_fd=dfd)
        if self.fsync:
            fsync_dir(dfd)
        self._drop(j)
        self.relist()

    # -- repack and cleanup ------------------------------------------------------------

    def lock_for_retire(self, journals: list[Journal]) -> list[tuple[Journal, int]]:
        """Lock ``journals`` (oldest first) and read them to the end; returns each still
        current journal with the offset it had been read to before (records past it were
        appended meanwhile). The caller must call :meth:`retire` (or :meth:`unlock_all`)."""
        out: list[tuple[Journal, int]] = []
        for j in sorted(journals, key=lambda j: j.number):
            j.lock()
            before = j.end
            if j.linked():
                j.scan()
                if j.state is OPEN:
                    out.append((j, before))
                    continue
            j.unlock()
        return out

    def retire(self, locked: list[tuple[Journal, int]]) -> None:
        """Unlink the locked journals (their records were committed elsewhere), unlock."""
        try:
            for j, _ in locked:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(j.name, dir_fd=self.dir_fd)
            if self.fsync and locked:
                fsync_dir(self.dir_fd)
        finally:
            self.unlock_all(locked)
        for j, _ in locked:
            self._drop(j)

    @staticmethod
    def unlock_all(locked: list[tuple[Journal, int]]) -> None:
        for j, _ in locked:
            if j.fd >= 0:
                j.unlock()

    def leftovers(self) -> list[str]:
        """Journal files whose records are all in a committed pack (an interrupted seal):
        removable. Read from the directory, not from this object's state."""
        names = []
        found, _ = self._listing()
        for number in found:
            try:
                j = Journal(self.dir_fd, number)
            except FileNotFoundError:
                continue
            try:
                j.scan()
                if j.state is SEALED:
                    with contextlib.suppress(FileNotFoundError):
                        os.stat(f"pack-{j.sealed_as}.pack", dir_fd=self.dir_fd)
                        names.append(j.name)
            finally:
                j.close()
        return names
