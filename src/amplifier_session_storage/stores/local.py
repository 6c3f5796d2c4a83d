"""Local-disk stores: loose objects plus packs, and refs with lock files and reflogs.

Layout under ``root`` (bytes specified in docs/design-local.md)::

    objects/ab/cdef…            one loose frame (file name: the id's hex minus 2 digits)
    objects/pack/pack-<h>.pack  many frames; .idx commits it; .del records deletions
    objects/pack/journal-<n>.pack  the active journal: small writes appended, sealed when full
    refs/<namespace>/<name>     64 hex digits + newline
    logs/<namespace>/<name>     the reflog, one checksummed line per move

Every write is durable before the call returns (``fsync=False`` skips the syncs, for
throw-away stores). I/O is done inline on the event loop: these are sub-millisecond system
calls, cheaper than a hop to a worker thread. One store object must be used from one thread.
"""

from __future__ import annotations

import contextlib
import os
import resource
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import TypeVar

from ..core.ids import ID_HEX_LEN, ObjectId
from ..errors import StorageError
from .base import ObjectStore
from .guard import SweepLock
from .journal import (
    HEAD,
    MAX_BATCH_BYTES,
    MAX_BATCH_OBJECTS,
    SEAL_BYTES,
    SEAL_RECORDS,
    Journal,
    Journals,
    journal_number,
)
from .local_refs import LocalRefStore
from .pack import (
    RECORD_HEAD,
    IdFilter,
    PackInfo,
    PackReader,
    PackWriter,
    create_tmp,
    datasync,
    open_dir,
    pack_name_of,
    read_fd,
    write_all,
)
from .segpack import (
    ARCHIVE_LEVEL,
    ARCHIVE_SEGMENT_BYTES,
    DEFAULT_LEVEL,
    DEFAULT_SEGMENT_BYTES,
    SegmentPackWriter,
)

__all__ = ["LocalObjectStore", "LocalRefStore"]

_HEXDIGITS = frozenset("0123456789abcdef")
_RDONLY = os.O_RDONLY | os.O_CLOEXEC
_RACY_NS = 50_000_000  # 50 ms: well above the file-system timestamp granularity


_Hit = tuple[PackReader, int] | tuple[Journal, int, int]  # a packed or a journal record
_T = TypeVar("_T")
# What a listing of the pack directory says is there: the committed packs (idx names) and
# the journals (number, inode). Temp files and .del files are left out: they move no object.
_Listing = tuple[frozenset[str], frozenset[tuple[int, int]]]


def _is_hex(text: str) -> bool:
    return _HEXDIGITS.issuperset(text)


class LocalObjectStore(ObjectStore):
    """Frames on local disk: a journal for small writes, packs for batches, loose files.

    ``put`` and a ``put_many`` of at most 16 new objects (1 MiB of records) append to the
    active journal (``stores.journal``: one fdatasync, no new file); a larger batch becomes
    one pack; an object too large for the journal (or any single put with ``journal=False``)
    is written loose.

    Reads look at the journals' in-memory indexes first, then at the loose file, then at
    the packs (the pack that answered last is asked first). Packs and journals are
    discovered from the directory listing on first use; pack indexes are mapped lazily, so
    opening a store costs nothing per pack; at most ``max_open_packs`` are open at once
    (default: an eighth of the file-descriptor limit), the least recently used are closed.
    A miss is only reported once a full probe found nothing between two listings of the
    pack directory that agree (``_lookup``): other processes seal and repack meanwhile.
    """

    def __init__(
        self,
        root: Path | str,
        *,
        fsync: bool = True,
        max_open_packs: int | None = None,
        journal: bool = True,
        journal_seal_bytes: int = SEAL_BYTES,
        journal_seal_records: int = SEAL_RECORDS,
    ) -> None:
        self.root = Path(root)
        self._fsync = fsync
        if max_open_packs is None:  # an open pack holds 2 fds: use at most a quarter of them
            soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
            max_open_packs = 4096 if soft == resource.RLIM_INFINITY else soft // 8
        self._max_open = max(2, min(4096, max_open_packs))
        objects = self.root / "objects"
        self._obj_fd = open_dir(objects, create=True, fsync=fsync)
        self._pack_fd = open_dir(objects / "pack", create=True, fsync=fsync)
        self._fan_fds: dict[str, int] = {}
        self._packs: list[PackReader] | None = None  # newest first; None until first scan
        self._open: OrderedDict[str, PackReader] = OrderedDict()
        self._last: PackReader | None = None
        self._stamp = -1
        self._listing: _Listing | None = None  # the last listing adopted
        self._generation = 0  # bumped whenever a listing differs from the one before
        self._filter: IdFilter | None = None  # built on the first miss
        self._use_journal = journal
        self._journals = Journals(
            self._pack_fd,
            fsync=fsync,
            seal_bytes=journal_seal_bytes,
            seal_records=journal_seal_records,
        )
        self._sweep = SweepLock(self._obj_fd, on_sweep=self._forget_deletions)
        self._sweep.prime()
        self._closed = False

    # -- paths -------------------------------------------------------------------------

    @staticmethod
    def _split(oid: ObjectId) -> tuple[str, str]:
        h = oid.hex()
        return h[:2], h[2:]

    def _fan_fd(self, fan: str) -> int:
        fd = self._fan_fds.get(fan)
        if fd is None:
            try:
                fd = os.open(fan, _RDONLY | os.O_DIRECTORY, dir_fd=self._obj_fd)
            except FileNotFoundError:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(fan, 0o755, dir_fd=self._obj_fd)
                if self._fsync:
                    os.fsync(self._obj_fd)
                fd = os.open(fan, _RDONLY | os.O_DIRECTORY, dir_fd=self._obj_fd)
            self._fan_fds[fan] = fd
        return fd

    # -- packs -------------------------------------------------------------------------

    def _all_packs(self) -> list[PackReader]:
        if self._packs is None:
            self._refresh()
        assert self._packs is not None
        return self._packs

    def _refresh(self) -> bool:
        """Adopt the pack directory's listing: packs and journals other processes created or
        removed. ``True`` (and ``_generation`` bumped) if it differs from the listing adopted
        before, or could not be adopted whole (a journal it names was gone by the time it
        was opened): then the directory changed since that listing.

        The directory's mtime tells whether anything was created, renamed or removed in it
        since the last listing, so an unchanged directory costs one ``fstat``.
        """
        if self._journals.dir_changed:  # this process sealed, set aside or relisted
            self._journals.dir_changed = False
            self._stamp = -1
        now = time.time_ns()
        mtime = os.fstat(self._pack_fd).st_mtime_ns
        if self._packs is not None and mtime == self._stamp:
            return False
        names: set[str] = set()
        dels: set[str] = set()
        journals: dict[int, int] = {}
        for entry in os.scandir(self._pack_fd):
            name = pack_name_of(entry.name)
            if name is not None:
                if entry.name.endswith(".idx"):
                    names.add(name)
                elif entry.name.endswith(".del"):
                    dels.add(name)
            elif entry.name.endswith(".pack"):
                number = journal_number(entry.name)
                if number is not None:
                    journals[number] = entry.inode()
        whole = self._journals.sync_names(journals)
        old = self._packs or []
        known = {p.name for p in old}
        fresh = [PackReader(self._pack_fd, n, n in dels) for n in sorted(names - known)]
        for p in old:
            if p.name not in names:
                self._unload(p)
                self._filter = None  # removed by another process: rebuild when needed
        self._packs = fresh + [p for p in old if p.name in names]
        if self._filter is not None:
            for p in fresh:
                self._filter_add(p.id_block() if self._ready(p) else b"")
        listing = (frozenset(names), frozenset(journals.items()))
        changed = listing != self._listing or not whole
        self._listing = listing
        if changed:
            self._generation += 1
        # The directory's mtime has a coarse granularity: a change in the same tick as the
        # fstat above would leave it as it is, so trust it only if that tick was safely past
        # before the fstat (and the listing was adopted whole).
        self._stamp = mtime if whole and now - mtime > _RACY_NS else -1
        return changed

    def _filter_add(self, ids: bytes) -> None:
        f = self._filter
        if f is not None:
            f.add_block(ids)
            if f.full:
                self._filter = None

    def _id_filter(self) -> IdFilter:
        f = self._filter
        if f is None:
            blocks = [p.id_block() for p in self._all_packs() if self._ready(p)]
            f = self._filter = IdFilter(sum(len(b) for b in blocks) // 32)
            for b in blocks:
                f.add_block(b)
        return f

    def _ready(self, pack: PackReader) -> bool:
        if pack.loaded:
            return True
        if not pack.load():
            return False
        self._open[pack.name] = pack
        if len(self._open) > self._max_open:
            _, victim = self._open.popitem(last=False)
            if victim is self._last:
                self._last = None
            victim.close()
        return True

    def _unload(self, pack: PackReader) -> None:
        self._open.pop(pack.name, None)
        if self._last is pack:
            self._last = None
        pack.close()

    def _find_packed(
        self, oid: ObjectId, expect_miss: bool = False
    ) -> tuple[PackReader, int] | None:
        """The pack holding ``oid``, among the packs listed so far. ``expect_miss``
        (presence checks before a write) builds the id filter if needed; a plain read only
        uses it once it exists, so the first read after opening a store with many packs does
        not pay for indexing every id."""
        last = self._last
        if last is not None:
            pos = last.find(oid)
            if pos >= 0:
                return last, pos
        f = self._id_filter() if expect_miss else self._filter
        if f is None or oid in f:
            return self._probe(oid, self._all_packs(), last)
        return None

    def _probe(
        self, oid: ObjectId, packs: list[PackReader], skip: PackReader | None
    ) -> tuple[PackReader, int] | None:
        for pack in packs:
            if pack is skip or not self._ready(pack):
                continue
            pos = pack.find(oid)
            if pos >= 0:
                self._last = pack
                self._open.move_to_end(pack.name)
                return pack, pos
        return None

    # -- lookups ---------------------------------------------------------------------

    def _find_journal(self, oid: ObjectId) -> tuple[Journal, int, int] | None:
        """The journal record of ``oid`` among the records read so far."""
        if self._packs is None:
            self._refresh()  # the first listing also finds the journals
        return self._journals.find(oid)

    def _probe_all(
        self, oid: ObjectId, loose: Callable[[ObjectId], _T | None], expect_miss: bool
    ) -> _Hit | _T | None:
        """One look in every place the current listing names: the journals (as read so
        far), the loose file (``loose`` returns what the caller wants of it, or ``None``)
        and the packs."""
        jhit = self._journals.find(oid)
        if jhit is not None:
            return jhit
        found = loose(oid)
        if found is not None:
            return found
        return self._find_packed(oid, expect_miss)

    def _lookup(
        self, oid: ObjectId, loose: Callable[[ObjectId], _T | None], expect_miss: bool = False
    ) -> _Hit | _T | None:
        """Where ``oid`` is, or ``None`` once it is certainly absent (the slow path, after
        the quick looks missed).

        Other processes move objects meanwhile: a seal turns a journal into a pack, a repack
        copies journals, packs and loose files into a new pack; each commits the new place
        before it removes the old one. A listing of the pack directory followed by a look in
        every place it names can still miss an object that moved after the listing (into a
        pack the listing does not name) or whose place vanished before it was opened. So:
        list, look everywhere, list again; a miss counts only if the two listings agree
        (same packs, same journal files): then nothing the object could have moved into was
        committed in between, and nothing listed was removed (docs/design-local.md,
        "Reading"). Otherwise look again with the new listing.
        """
        self._refresh()
        while True:
            generation = self._generation
            self._journals.rescan()  # records appended meanwhile; journals sealed meanwhile
            hit = self._probe_all(oid, loose, expect_miss)
            if hit is not None:
                return hit
            self._refresh()
            if self._generation == generation:
                return None

    def _read_loose(self, oid: ObjectId) -> bytes | None:
        fan, rest = self._split(oid)
        try:
            fd = os.open(f"{fan}/{rest}", _RDONLY, dir_fd=self._obj_fd)
        except FileNotFoundError:
            return None
        try:
            return read_fd(fd)
        finally:
            os.close(fd)

    def _loose_exists(self, oid: ObjectId) -> bool | None:
        fan, rest = self._split(oid)
        try:
            os.stat(f"{fan}/{rest}", dir_fd=self._obj_fd)
        except FileNotFoundError:
            return None
        return True

    # -- contract ----------------------------------------------------------------------

    async def get(self, oid: ObjectId) -> bytes | None:
        oid = ObjectId(oid)
        hit = self._find_quick(oid)
        if hit is None:
            data = self._read_loose(oid)
            if data is not None:
                return data
            found = self._lookup(oid, self._read_loose)
            if not isinstance(found, tuple):
                return found  # the loose file's frame, or None: absent
            hit = found
        if isinstance(hit[0], Journal):
            j, off, n = hit
            return j.read(off, n)
        pack, pos = hit
        return pack.read(pos)

    def _find_quick(self, oid: ObjectId) -> _Hit | None:
        """Where a read looks before the loose file: the journals' indexes and the pack
        that answered last (reading a session walks blocks that sit together)."""
        jhit = self._find_journal(oid)
        if jhit is not None:
            return jhit
        last = self._last
        if last is not None:
            pos = last.find(oid)
            if pos >= 0:
                return last, pos
        return None

    def _present(self, hit: _Hit | bool | None) -> bool:
        if hit is None:
            return False
        if isinstance(hit, tuple) and isinstance(hit[0], Journal):
            # Another process may have appended the record and not synced it yet: a write
            # that is skipped because the object is "there" must not rest on undurable bytes.
            hit[0].make_durable(hit[1], self._fsync)
        return True

    def _has(self, oid: ObjectId) -> bool:
        hit: _Hit | bool | None = self._find_journal(oid)
        if hit is None:
            hit = self._loose_exists(oid)
            if hit is None:
                hit = self._lookup(oid, self._loose_exists, expect_miss=True)
        return self._present(hit)

    def _has_now(self, oid: ObjectId) -> bool:
        """Presence among the places already listed and read (no listing, no rescan)."""
        return self._present(self._probe_all(oid, self._loose_exists, expect_miss=True))

    async def has(self, oid: ObjectId) -> bool:
        return self._has(ObjectId(oid))

    async def has_many(self, oids: Iterable[ObjectId]) -> set[ObjectId]:
        """As ``has`` for each, with one listing per round: a round looks for every id not
        found yet, and ends the search once the listings before and after it agree."""
        todo = {ObjectId(o) for o in oids}
        found: set[ObjectId] = set()
        self._refresh()
        while todo:
            generation = self._generation
            self._journals.rescan()
            hits = {o for o in todo if self._has_now(o)}
            found |= hits
            todo -= hits
            self._refresh()
            if self._generation == generation:
                break
        return found

    def _has_small(self, oid: ObjectId) -> bool:
        """The presence check before a journal write: journals, the loose file, and packs
        only once the id filter exists. Building the filter indexes every packed id
        (~0.75 us each: most of a second for a million), which the first small write after
        opening a large store would pay for a duplicate record it rarely avoids (a block's
        id is new; repack merges duplicates)."""
        jhit = self._find_journal(oid)
        if jhit is not None:
            jhit[0].make_durable(jhit[1], self._fsync)
            return True
        fan, rest = self._split(oid)
        try:
            os.stat(f"{fan}/{rest}", dir_fd=self._obj_fd)
            return True
        except FileNotFoundError:
            pass
        return self._filter is not None and self._find_packed(oid) is not None

    async def put(self, oid: ObjectId, data: bytes) -> None:
        oid = ObjectId(oid)
        if self._use_journal and len(data) + HEAD <= MAX_BATCH_BYTES:
            if not self._has_small(oid):
                self._journals.append([(oid, data)])
        elif not self._has(oid):
            self._put_loose(oid, data)

    def _put_loose(self, oid: ObjectId, data: bytes | memoryview) -> None:
        fan, rest = self._split(oid)
        dfd = self._fan_fd(fan)
        tmp, fd = create_tmp(dfd, "obj")
        try:
            write_all(fd, data)
            if self._fsync:
                datasync(fd)
        except BaseException:
            os.close(fd)
            os.unlink(tmp, dir_fd=dfd)
            raise
        os.close(fd)
        os.rename(tmp, rest, src_dir_fd=dfd, dst_dir_fd=dfd)
        if self._fsync:
            os.fsync(dfd)

    async def put_many(self, items: Iterable[tuple[ObjectId, bytes]]) -> None:
        batch: dict[ObjectId, bytes] = {}
        for oid, data in items:
            batch.setdefault(ObjectId(oid), data)
        size = sum(len(data) + HEAD for data in batch.values())
        if self._use_journal and len(batch) <= MAX_BATCH_OBJECTS and size <= MAX_BATCH_BYTES:
            new = [(oid, data) for oid, data in batch.items() if not self._has_small(oid)]
            if new:
                self._journals.append(new)
            return
        self._refresh()
        self._journals.rescan()
        # One look, no second listing: an object missed here (it moved meanwhile) is only
        # written again, a duplicate that repack merges.
        todo = {oid: data for oid, data in batch.items() if not self._has_now(oid)}
        if len(todo) == 1:
            [(oid, data)] = todo.items()
            self._put_loose(oid, data)
        elif todo:
            self._write_pack(todo.items())

    def _write_pack(self, items: Iterable[tuple[ObjectId, bytes | memoryview]]) -> PackInfo | None:
        writer = PackWriter(self._pack_fd, fsync=self._fsync)
        try:
            for oid, data in items:
                writer.add(oid, data)
            if not writer.count:
                writer.abort()
                return None
            info = writer.finish()
        except BaseException:
            writer.abort()
            raise
        self._adopt(info)
        return info

    def _adopt(self, info: PackInfo) -> None:
        """Know a pack this store just committed (without waiting for a listing)."""
        self._refresh()
        packs = self._all_packs()
        same = [p for p in packs if p.name == info.name]
        if not same:
            packs.insert(0, PackReader(self._pack_fd, info.name))
            self._filter_add(info.ids)
        elif same[0].has_del:
            # The same bytes were committed again: every object in them is live now.
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"pack-{info.name}.del", dir_fd=self._pack_fd)
            if self._fsync:
                os.fsync(self._pack_fd)
            same[0].deleted = set()
            same[0].has_del = False

    async def delete(self, oid: ObjectId) -> bool:
        """Unlink the loose copy; append a tombstone to each journal holding the object;
        record packed copies in their pack's ``.del`` file."""
        oid = ObjectId(oid)
        fan, rest = self._split(oid)
        found = False
        try:
            os.unlink(f"{fan}/{rest}", dir_fd=self._obj_fd)
            found = True
        except FileNotFoundError:
            pass
        if found and self._fsync:
            os.fsync(self._fan_fd(fan))
        self._refresh()
        if self._journals.tombstone(oid):
            found = True
        self._refresh()  # a journal sealed meanwhile (by us or another process) is a pack now
        for pack in self._all_packs():
            if self._ready(pack) and pack.find(oid) >= 0:
                pack.mark_deleted(oid, fsync=self._fsync)
                found = True
        return found

    def _loose(self) -> Iterable[tuple[str, str, ObjectId]]:
        for entry in os.scandir(self._obj_fd):
            fan = entry.name
            if len(fan) != 2 or not _is_hex(fan) or not entry.is_dir():
                continue
            for f in os.scandir(self._fan_fd(fan)):
                if len(f.name) == ID_HEX_LEN - 2 and _is_hex(f.name):
                    yield fan, f.name, ObjectId.from_hex(fan + f.name)

    async def repack(
        self,
        keep: set[ObjectId] | None = None,
        *,
        segmented: bool = True,
        level: int | None = None,
        segment_bytes: int | None = None,
        threads: int | None = None,
    ) -> int:
        """Merge every pack, journal and loose object into one pack; drop ids not in ``keep``.

        The new pack is a segment pack (``stores.segpack``: canonical bytes compressed
        together, ``segment_bytes`` per zstd frame at ``level``, ``threads`` compressing;
        default: up to 4, the cores there are), or with ``segmented=False`` a version-1
        pack of the frames as they are. ``level`` and ``segment_bytes`` left out keep the
        store's profile: the cold-storage one (``segpack.ARCHIVE_*``) if a segment pack
        there was written with it (segments larger than the default), else the default.
        It is committed (fsync'd, idx renamed in) before any old pack, journal or loose
        file is removed, so a crash at any point loses nothing.
        Returns the objects kept. Objects written by other processes while this runs are left
        alone; records appended to a journal meanwhile are copied too (whatever ``keep``
        says), under the journal's lock, just before the journal is retired.
        """
        self._refresh()
        self._journals.rescan()
        packs = list(self._all_packs())
        loose = list(self._loose())
        journals = self._journals.all()
        if keep is None and not loose and len(packs) <= 1 and not journals:
            if not packs or not self._ready(packs[0]):
                return 0
            if not packs[0].deleted and packs[0].segmented == segmented:
                return sum(1 for _ in packs[0].ids())
        if level is None or segment_bytes is None:
            cold = any(
                self._ready(p) and p.max_segment_raw() > DEFAULT_SEGMENT_BYTES * 3 // 2
                for p in packs
            )  # objects are at most ~64 KiB (payloads are chunked): only the profile says so
            if level is None:
                level = ARCHIVE_LEVEL if cold else DEFAULT_LEVEL
            if segment_bytes is None:
                segment_bytes = ARCHIVE_SEGMENT_BYTES if cold else DEFAULT_SEGMENT_BYTES
        packs.sort(key=self._pack_age)  # oldest first: the order objects were written in
        copied: list[PackReader] = []
        seen: set[bytes] = set()
        writer: PackWriter | SegmentPackWriter
        if segmented:
            if threads is None:
                threads = min(4, os.cpu_count() or 1)
            writer = SegmentPackWriter(
                self._pack_fd,
                fsync=self._fsync,
                level=level,
                segment_bytes=segment_bytes,
                threads=threads,
            )
        else:
            writer = PackWriter(self._pack_fd, fsync=self._fsync)
        locked: list[tuple[Journal, int]] = []
        try:
            for fan, rest, oid in loose:
                if (keep is None or oid in keep) and oid not in seen:
                    try:
                        fd = os.open(f"{fan}/{rest}", _RDONLY, dir_fd=self._obj_fd)
                    except FileNotFoundError:
                        continue
                    try:
                        data = read_fd(fd)
                    finally:
                        os.close(fd)
                    seen.add(oid)
                    writer.add(oid, data)
            for pack in packs:
                if not self._ready(pack):
                    continue  # unusable (e.g. a damaged idx): left in place for fsck
                copied.append(pack)
                for pos, raw in pack.ids_in_pack_order():
                    if (keep is None or raw in keep) and raw not in seen:
                        seen.add(raw)
                        writer.add(ObjectId(raw), pack.read(pos))
            for j in journals:
                for raw, off, n in list(j.live()):
                    if (keep is None or raw in keep) and raw not in seen:
                        seen.add(raw)
                        writer.add(ObjectId(raw), j.read(off, n))
            writer.sync()  # the bulk is durable before appenders have to wait for us
            locked = self._journals.lock_for_retire(journals)
            for j, before in locked:
                for raw, off, n in list(j.live(before)):  # appended meanwhile: keep
                    if raw not in seen:
                        seen.add(raw)
                        writer.add(ObjectId(raw), j.read(off, n))
            info: PackInfo | None = None
            if writer.count:
                info = writer.finish()
            else:
                writer.abort()
        except BaseException:
            writer.abort()
            self._journals.unlock_all(locked)
            raise
        self._journals.retire(locked)  # their records are in the committed pack now
        if info is not None:
            self._adopt(info)
        gone = {p.name for p in copied} - ({info.name} if info else set())
        for pack in copied:
            if pack.name not in gone:
                continue  # the merge produced this very pack again (same bytes, same name)
            self._unload(pack)
            for ext in ("idx", "pack", "del"):  # idx first: a pack without idx is ignored
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(f"pack-{pack.name}.{ext}", dir_fd=self._pack_fd)
        self._packs = [p for p in self._all_packs() if p.name not in gone]
        touched = set()
        for fan, rest, _ in loose:
            try:
                os.unlink(rest, dir_fd=self._fan_fd(fan))
                touched.add(fan)
            except FileNotFoundError:
                pass
        if self._fsync:
            os.fsync(self._pack_fd)
            for fan in touched:
                os.fsync(self._fan_fd(fan))
        self._filter = None
        self._stamp = -1
        self._refresh()
        return 0 if info is None else info.count

    def _pack_age(self, pack: PackReader) -> int:
        try:
            return os.stat(f"pack-{pack.name}.pack", dir_fd=self._pack_fd).st_mtime_ns
        except FileNotFoundError:
            return 0

    async def cleanup_incomplete(self, min_age: float = 3600.0) -> int:
        """Remove leftovers of interrupted writes older than ``min_age`` seconds.

        Temp files, packs without an idx (never committed), an idx without its pack and
        ``.del`` files without an idx. ``min_age`` protects writes still in progress in
        other processes. Also journals whose seal committed but was not finished (whatever
        their age: every record is in the pack). Returns the files removed.
        """
        limit = time.time() - min_age
        removed = 0
        for name in self._journals.leftovers():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name, dir_fd=self._pack_fd)
                removed += 1
        names = {e.name for e in os.scandir(self._pack_fd)}
        dirs = [(self._pack_fd, names)]
        for entry in os.scandir(self._obj_fd):
            if len(entry.name) == 2 and _is_hex(entry.name) and entry.is_dir():
                fd = self._fan_fd(entry.name)
                dirs.append((fd, {e.name for e in os.scandir(fd)}))
        for dfd, files in dirs:
            for fname in files:
                pack = pack_name_of(fname)
                if pack is None:
                    stale = fname.startswith("tmp-")
                elif fname.endswith(".idx"):
                    stale = f"pack-{pack}.pack" not in names  # its pack is gone
                else:
                    stale = f"pack-{pack}.idx" not in names  # never committed

                if not stale:
                    continue
                try:
                    if os.stat(fname, dir_fd=dfd).st_mtime < limit:
                        os.unlink(fname, dir_fd=dfd)
                        removed += 1
                except FileNotFoundError:
                    pass
        if removed and self._fsync:
            os.fsync(self._pack_fd)
        return removed

    async def list(self) -> AsyncIterator[ObjectId]:
        """Every object, each once: as ``_lookup``, a round lists the loose files, the
        journals and the packs; a round is repeated (yielding only ids not yielded yet) until
        the pack directory's listings before and after it agree, so an object that a seal or
        repack moved meanwhile is listed from its new place."""
        seen: set[bytes] = set()
        self._refresh()
        while True:
            generation = self._generation
            for _, _, oid in list(self._loose()):
                if oid not in seen:
                    seen.add(oid)
                    yield oid
            for raw in list(self._journals.ids()):
                if raw not in seen:
                    seen.add(raw)
                    yield ObjectId(raw)
            for pack in list(self._all_packs()):
                if not self._ready(pack):
                    continue
                # a segment pack lists in pack order: a list-then-get walk (fsck) then
                # decompresses each segment once instead of once per object
                live = pack.ids_in_pack_order() if pack.segmented else list(pack.ids())
                for _, raw in live:
                    if raw not in seen:
                        seen.add(raw)
                        yield ObjectId(raw)
            self._refresh()
            if self._generation == generation:
                return

    def write_guard(self) -> AbstractAsyncContextManager[None]:
        return self._sweep.shared()

    def _forget_deletions(self) -> None:
        """A gc sweep ran in some process: re-read what it may have deleted (journal
        tombstones, packs' ``.del`` records) so "already stored" is true again."""
        self._refresh()
        self._journals.rescan()
        for pack in self._all_packs():
            if pack.loaded:
                pack.reload_deleted()

    def sweep_guard(self, timeout: float | None = 600.0) -> AbstractAsyncContextManager[None]:
        return self._sweep.exclusive(timeout)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._sweep.close()
        self._journals.close()
        for pack in self._packs or ():
            pack.close()
        self._packs, self._last = [], None
        self._open.clear()
        for fd in (*self._fan_fds.values(), self._pack_fd, self._obj_fd):
            os.close(fd)
        self._fan_fds.clear()

    # -- test hooks (plant damage without going through the contract) -------------------

    def _raw_locate(self, oid: ObjectId) -> tuple[Path, int, int, Journal | None]:
        """Where ``get`` reads ``oid`` from (the same order: damage planted there is seen)."""
        oid = ObjectId(oid)
        pack_dir = self.root / "objects" / "pack"
        fan, rest = self._split(oid)
        loose = self.root / "objects" / fan / rest
        hit = self._find_quick(oid)
        if hit is None:
            found = self._loose_exists(oid) or self._lookup(oid, self._loose_exists)
            if found is None:
                raise StorageError(f"object {oid.hex()} is not stored")
            if not isinstance(found, tuple):
                return loose, 0, loose.stat().st_size, None
            hit = found
        if isinstance(hit[0], Journal):
            j, off, n = hit
            return pack_dir / j.name, off, n, j
        pack, pos = hit
        off, length = pack.locate(pos)
        return pack_dir / f"pack-{pack.name}.pack", off, length, None

    def raw_path(self, oid: ObjectId) -> tuple[Path, int, int]:
        """(file, offset, length) of the stored frame of ``oid`` (loose, journal or pack)."""
        path, off, length, _ = self._raw_locate(oid)
        return path, off, length

    def raw_corrupt(self, oid: ObjectId, offset: int) -> None:
        """Flip every bit of the byte at ``offset`` inside the stored frame of ``oid``."""
        path, start, _ = self.raw_path(oid)
        os.chmod(path, 0o644)
        with open(path, "r+b") as f:
            f.seek(start + offset)
            byte = f.read(1)
            f.seek(start + offset)
            f.write(bytes([byte[0] ^ 0xFF]))

    def raw_truncate(self, oid: ObjectId, length: int) -> None:
        """Cut the stored frame of ``oid`` to ``length`` bytes (and a pack after it; in a
        journal, the record is cut and its length field says so: later records stay)."""
        path, start, n, journal = self._raw_locate(oid)
        os.chmod(path, 0o644)
        if journal is None:
            os.truncate(path, start + length)
            return
        data = path.read_bytes()
        head = RECORD_HEAD.pack(ObjectId(oid), length)
        data = data[: start - HEAD] + head + data[start : start + length] + data[start + n :]
        with open(path, "r+b") as f:
            f.write(data)
            f.truncate()
        journal.reset()
