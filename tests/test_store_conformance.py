"""The conformance suites run against every store in this package.

Backends living elsewhere (Blob, Cosmos) subclass the same suites in their own test modules.
"""

from __future__ import annotations

import os
import time
import zlib
from pathlib import Path
from typing import Any

import pytest

from amplifier_session_storage.core.codec import unframe
from amplifier_session_storage.core.ids import ObjectId
from amplifier_session_storage.errors import ConflictError, IntegrityError, InvalidInputError
from amplifier_session_storage.stores.base import ObjectStore, RefStore
from amplifier_session_storage.stores.local import LocalObjectStore, LocalRefStore
from amplifier_session_storage.stores.local_refs import format_entry, link_target
from amplifier_session_storage.stores.memory import MemoryObjectStore, MemoryRefStore
from amplifier_session_storage.stores.pack import PackWriter
from conformance.object_store_suite import ObjectStoreSuite, make_object
from conformance.ref_store_suite import RefStoreSuite, oid

# -- memory ------------------------------------------------------------------------------


class TestMemoryObjectStore(ObjectStoreSuite):
    async def make_store(self, tmp_path: Path) -> ObjectStore:
        return MemoryObjectStore()

    def _raw(self, store: ObjectStore) -> MemoryObjectStore:
        assert isinstance(store, MemoryObjectStore)
        return store

    def corrupt(self, store: ObjectStore, oid: ObjectId, offset: int) -> None:
        mem = self._raw(store)
        data = bytearray(mem._objects[oid])
        data[offset] ^= 0xFF
        mem.raw_set(oid, bytes(data))

    def truncate(self, store: ObjectStore, oid: ObjectId, length: int) -> None:
        mem = self._raw(store)
        mem.raw_set(oid, mem._objects[oid][:length])


class TestMemoryRefStore(RefStoreSuite):
    async def make_store(self, tmp_path: Path) -> RefStore:
        return MemoryRefStore()


# -- local disk --------------------------------------------------------------------------


class TestLocalObjectStore(ObjectStoreSuite):
    """The default configuration: small writes go to the journal."""

    persistent = True
    options: dict[str, Any] = {}

    async def make_store(self, tmp_path: Path) -> ObjectStore:
        return LocalObjectStore(tmp_path / "repo", **self.options)

    async def reopen(self, store: ObjectStore, tmp_path: Path) -> ObjectStore:
        await store.close()
        return LocalObjectStore(tmp_path / "repo", **self.options)

    def corrupt(self, store: ObjectStore, oid: ObjectId, offset: int) -> None:
        assert isinstance(store, LocalObjectStore)
        store.raw_corrupt(oid, offset)

    def truncate(self, store: ObjectStore, oid: ObjectId, length: int) -> None:
        assert isinstance(store, LocalObjectStore)
        store.raw_truncate(oid, length)


class TestLocalObjectStoreNoJournal(TestLocalObjectStore):
    """Without the journal: single puts are loose files, every batch a pack."""

    options = {"journal": False}


class TestLocalObjectStoreSealing(TestLocalObjectStore):
    """A journal sealed into a pack every few records: the contract holds across seals."""

    options = {"journal_seal_records": 7, "journal_seal_bytes": 64 * 1024}


class TestLocalRefStore(RefStoreSuite):
    persistent = True

    async def make_store(self, tmp_path: Path) -> RefStore:
        return LocalRefStore(tmp_path / "repo")

    async def reopen(self, store: RefStore, tmp_path: Path) -> RefStore:
        await store.close()
        return LocalRefStore(tmp_path / "repo")


# -- local disk: behaviour beyond the contract --------------------------------------------


def _files(root: Path) -> list[str]:
    return sorted(os.listdir(root / "objects" / "pack"))


class TestLocalObjectStoreExtras:
    async def test_layout(self, tmp_path: Path) -> None:
        store = LocalObjectStore(tmp_path)
        single = make_object()
        big = make_object(2 * 1024 * 1024)  # too large for the journal: loose
        few = [make_object() for _ in range(3)]
        many = [make_object() for _ in range(17)]
        await store.put(*single)
        await store.put(*big)
        await store.put_many(few)
        assert _files(tmp_path) == ["journal-1.pack"]
        journal = (tmp_path / "objects" / "pack" / "journal-1.pack").read_bytes()
        expected = b"ASPK\x01\x00\x00\x00" + b"".join(
            oid + len(data).to_bytes(4, "little") + data for oid, data in [single, *few]
        )
        assert journal == expected
        h = big[0].hex()
        assert (tmp_path / "objects" / h[:2] / h[2:]).read_bytes() == big[1]
        await store.put_many(many)  # more than 16 new objects: a pack
        names = _files(tmp_path)
        assert len(names) == 3 and names[0] == "journal-1.pack"
        assert names[1].endswith(".idx") and names[2].endswith(".pack")
        pack = (tmp_path / "objects" / "pack" / names[2]).read_bytes()
        assert pack[:4] == b"ASPK" and all(data in pack for _, data in many)
        await store.close()

    async def test_single_new_object_in_put_many_goes_loose(self, tmp_path: Path) -> None:
        store = LocalObjectStore(tmp_path, journal=False)
        existing = make_object()
        await store.put(*existing)
        await store.put_many([existing, make_object()])
        assert _files(tmp_path) == []
        await store.close()

    async def test_torn_pack_is_ignored_and_cleaned(self, tmp_path: Path) -> None:
        store = LocalObjectStore(tmp_path, journal=False)
        kept = [make_object() for _ in range(3)]
        await store.put_many(kept)
        pack_dir = tmp_path / "objects" / "pack"
        # an interrupted put_many: a complete pack without idx, a torn temp pack
        writer = PackWriter(os.open(pack_dir, os.O_RDONLY), fsync=False)
        lost = [make_object() for _ in range(3)]
        for o in lost:
            writer.add(*o)
        (pack_dir / ("pack-" + "ab" * 32 + ".pack")).write_bytes(b"ASPK\x01\x00\x00\x00torn")
        (tmp_path / "objects" / "ff").mkdir(exist_ok=True)
        (tmp_path / "objects" / "ff" / "tmp-obj-1-1").write_bytes(b"half an obj")
        fresh = LocalObjectStore(tmp_path, journal=False)
        for o in lost:
            assert await fresh.get(o[0]) is None
        for o in kept:
            assert await fresh.get(o[0]) == o[1]
        assert len({o async for o in fresh.list()}) == 3
        assert await fresh.cleanup_incomplete(min_age=3600) == 0
        assert await fresh.cleanup_incomplete(min_age=0) == 3
        assert len(_files(tmp_path)) == 2
        for o in lost:  # the batch can be written again
            await fresh.put(*o)
        assert len({o async for o in fresh.list()}) == 6
        writer.abort()
        await fresh.close()
        await store.close()

    async def test_damaged_idx_makes_only_its_pack_unreadable(self, tmp_path: Path) -> None:
        store = LocalObjectStore(tmp_path, journal=False)
        a = [make_object() for _ in range(3)]
        b = [make_object() for _ in range(3)]
        await store.put_many(a)
        idx_a = next((tmp_path / "objects" / "pack").glob("*.idx"))
        await store.put_many(b)
        await store.close()
        raw = bytearray(idx_a.read_bytes())
        raw[2000 % len(raw)] ^= 1
        os.chmod(idx_a, 0o644)
        idx_a.write_bytes(bytes(raw))
        store = LocalObjectStore(tmp_path, journal=False)
        for o in b:
            assert await store.get(o[0]) == o[1]
        for o in a:
            assert await store.get(o[0]) is None
        await store.close()

    async def test_repack(self, tmp_path: Path) -> None:
        store = LocalObjectStore(tmp_path)
        objs = [make_object() for _ in range(40)]
        for i in range(0, 30, 10):
            await store.put_many(objs[i : i + 10])
        for o in objs[30:]:
            await store.put(*o)
        await store.delete(objs[0][0])
        await store.delete(objs[35][0])
        assert await store.repack() == 38
        assert len(_files(tmp_path)) == 2
        fan_dirs = [p for p in (tmp_path / "objects").iterdir() if p.is_dir() and p.name != "pack"]
        assert not any(list(d.iterdir()) for d in fan_dirs)  # no loose objects left
        for oid_, data in objs[1:35] + objs[36:]:
            assert await store.get(oid_) == data
        keep = {o for o, _ in objs[:20]}
        assert await store.repack(keep) == 19
        assert {o async for o in store.list()} == keep - {objs[0][0]}
        assert await store.get(objs[25][0]) is None
        assert await store.repack() == 19  # nothing to do
        assert await store.repack(set()) == 0
        assert _files(tmp_path) == []
        await store.close()

    async def test_objects_written_by_another_instance_are_seen(self, tmp_path: Path) -> None:
        reader = LocalObjectStore(tmp_path)
        writer = LocalObjectStore(tmp_path)
        assert await reader.get(make_object()[0]) is None  # packs scanned (none yet)
        batch = [make_object() for _ in range(5)]
        await writer.put_many(batch)
        for o in batch:
            assert await reader.get(o[0]) == o[1]
        await writer.repack()
        for o in batch:
            assert await reader.get(o[0]) == o[1]
        await reader.close()
        await writer.close()

    async def test_open_with_1000_packs(self, tmp_path: Path) -> None:
        pack_dir = tmp_path / "objects" / "pack"
        pack_dir.mkdir(parents=True)
        dfd = os.open(pack_dir, os.O_RDONLY)
        probe = []
        for p in range(1000):
            w = PackWriter(dfd, fsync=False)
            for i in range(1000):
                w.add(ObjectId.of(b"%d-%d" % (p, i)), b"x")
            w.finish()
            probe.append(ObjectId.of(b"%d-%d" % (p, 7)))
        os.close(dfd)
        t = time.perf_counter()
        store = LocalObjectStore(tmp_path)
        assert await store.has_many([]) == set()  # lists the 1,000 packs, maps no index
        opened = time.perf_counter() - t
        assert await store.get(probe[500]) == b"x"  # maps indexes until it finds the object
        first_get = time.perf_counter() - t - opened
        print(f"1,000 packs: open {opened * 1e3:.1f} ms, first get {first_get * 1e3:.1f} ms")
        t = time.perf_counter()
        for o in probe[:50]:
            assert await store.has(o)  # the first presence check indexes every pack once
        assert not await store.has(make_object()[0])
        elapsed = time.perf_counter() - t
        print(f"1,000 packs: first 51 presence checks {elapsed * 1e3:.0f} ms")
        for _ in range(100):
            assert not await store.has(make_object()[0])
        await store.close()

    async def test_many_packs_more_than_open_limit(self, tmp_path: Path) -> None:
        store = LocalObjectStore(tmp_path, fsync=False, max_open_packs=4, journal=False)
        batches = [[make_object(50) for _ in range(3)] for _ in range(12)]
        for b in batches:
            await store.put_many(b)
        for b in reversed(batches):
            for o in b:
                assert await store.get(o[0]) == o[1]
        assert len({o async for o in store.list()}) == 36
        assert await store.repack() == 36
        await store.close()


class TestLocalRefStoreExtras:
    async def test_layout(self, tmp_path: Path) -> None:
        refs = LocalRefStore(tmp_path)
        assert await refs.set_if_equals("sessions/a", None, oid(1), "hello world")
        target = os.readlink(tmp_path / "refs" / "sessions" / "a")
        assert target == link_target(oid(1)) and len(target) <= 59  # an inline symlink
        value, pid = target.split("@")
        assert len(value) == 43 and int(pid) == os.getpid()
        # a ref file of the earlier format (hex + newline) is read, and updated
        (tmp_path / "refs" / "sessions" / "b").write_bytes(oid(2).hex().encode() + b"\n")
        assert await refs.get("sessions/b") == oid(2)
        assert [n async for n, _ in refs.list()] == ["sessions/a", "sessions/b"]
        assert await refs.set_if_equals("sessions/b", oid(2), oid(3))
        assert await refs.get("sessions/b") == oid(3)
        line = (tmp_path / "logs" / "sessions" / "a").read_bytes()
        body, crc = line.rstrip(b"\n").rsplit(b" ", 1)
        old, new, t, reason = body.split(b" ", 3)
        assert old == b"0" * 64 and new == oid(1).hex().encode() and int(t) > 0
        assert reason == b"hello world" and int(crc, 16) == zlib.crc32(body)
        assert not list((tmp_path / "refs" / "sessions").glob("*.lock"))
        await refs.close()

    async def test_lock_suffix_and_namespace_conflicts(self, tmp_path: Path) -> None:
        refs = LocalRefStore(tmp_path)
        for bad in ("sessions/a.lock", "x.lock/b"):
            with pytest.raises(InvalidInputError):
                await refs.set_if_equals(bad, None, oid(1))
        assert await refs.set_if_equals("sessions/a", None, oid(1))
        with pytest.raises(ConflictError):
            await refs.set_if_equals("sessions/a/b", None, oid(2))
        with pytest.raises(ConflictError):
            await refs.set_if_equals("sessions", None, oid(2))
        assert await refs.get("sessions") is None
        assert await refs.get("sessions/a/b") is None
        assert [n async for n, _ in refs.list()] == ["sessions/a"]
        assert not list((tmp_path / "refs").rglob("*.lock"))
        await refs.close()

    async def test_held_lock_times_out(self, tmp_path: Path) -> None:
        refs = LocalRefStore(tmp_path, lock_timeout=0.2)
        assert await refs.set_if_equals("sessions/a", None, oid(1))
        lock = tmp_path / "refs" / "sessions" / "a.lock"
        lock.write_bytes(b"%d\n" % os.getppid())  # a live process holds it
        with pytest.raises(ConflictError):
            await refs.set_if_equals("sessions/a", oid(1), oid(2))
        assert await refs.get("sessions/a") == oid(1)
        lock.unlink()
        assert await refs.set_if_equals("sessions/a", oid(1), oid(2))
        await refs.close()

    @pytest.mark.parametrize("content", [b"999999999\n", b"", oid(5).hex().encode() + b"\n"])
    async def test_stale_lock_is_broken(self, tmp_path: Path, content: bytes) -> None:
        refs = LocalRefStore(tmp_path, lock_timeout=5, stale_lock_after=30)
        assert await refs.set_if_equals("sessions/a", None, oid(1))
        lock = tmp_path / "refs" / "sessions" / "a.lock"
        lock.write_bytes(content)  # pid 999999999 does not exist
        old = time.time() - 60
        os.utime(lock, (old, old))
        assert await refs.set_if_equals("sessions/a", oid(1), oid(2))
        assert not lock.exists()
        await refs.close()

    async def test_ancient_lock_is_broken_even_if_its_pid_lives(self, tmp_path: Path) -> None:
        refs = LocalRefStore(tmp_path, lock_timeout=5, stale_lock_after=30)
        assert await refs.set_if_equals("sessions/a", None, oid(1))
        lock = tmp_path / "refs" / "sessions" / "a.lock"
        lock.write_bytes(b"%d\n" % os.getppid())  # a live pid (reused by another process)
        os.utime(lock, (time.time() - 400, time.time() - 400))
        assert await refs.set_if_equals("sessions/a", oid(1), oid(2))
        await refs.close()

    @pytest.mark.parametrize("pid", [999_999_999, None], ids=["dead-pid", "no-pid"])
    async def test_stale_symlink_lock_is_broken(self, tmp_path: Path, pid: int | None) -> None:
        refs = LocalRefStore(tmp_path, lock_timeout=5, stale_lock_after=30)
        assert await refs.set_if_equals("sessions/a", None, oid(1))
        lock = tmp_path / "refs" / "sessions" / "a.lock"
        os.symlink(link_target(oid(7), pid) if pid else "junk", lock)  # a writer died
        old = time.time() - 60
        os.utime(lock, (old, old), follow_symlinks=False)
        assert await refs.set_if_equals("sessions/a", oid(1), oid(2))
        assert not os.path.lexists(lock)
        assert await refs.get("sessions/a") == oid(2)
        await refs.close()

    async def test_lock_of_a_dead_writer_is_broken_soon(self, tmp_path: Path) -> None:
        """A writer SIGKILLed mid-update: the next one waits ``dead_lock_after`` (2 s),
        not ``stale_lock_after``; a lock naming no pid still waits the long way."""
        refs = LocalRefStore(tmp_path, lock_timeout=0.2, stale_lock_after=30)
        assert await refs.set_if_equals("sessions/a", None, oid(1))
        lock = tmp_path / "refs" / "sessions" / "a.lock"
        os.symlink(link_target(oid(7), 999_999_999), lock)
        soon = time.time() + 60  # taken "just now" however slow this machine is
        os.utime(lock, (soon, soon), follow_symlinks=False)
        with pytest.raises(ConflictError):  # just taken: it may still be in use
            await refs.set_if_equals("sessions/a", oid(1), oid(2))
        old = time.time() - 3
        os.utime(lock, (old, old), follow_symlinks=False)
        assert await refs.set_if_equals("sessions/a", oid(1), oid(2))
        os.symlink("junk", lock)
        os.utime(lock, (old, old), follow_symlinks=False)
        with pytest.raises(ConflictError):
            await refs.set_if_equals("sessions/a", oid(2), oid(3))
        assert await refs.get("sessions/a") == oid(2)
        await refs.close()

    async def test_symlink_lock_of_live_process_is_respected(self, tmp_path: Path) -> None:
        refs = LocalRefStore(tmp_path, lock_timeout=0.2, stale_lock_after=30)
        assert await refs.set_if_equals("sessions/a", None, oid(1))
        lock = tmp_path / "refs" / "sessions" / "a.lock"
        os.symlink(link_target(oid(7), os.getppid()), lock)
        old = time.time() - 60  # stale by age, but its owner lives
        os.utime(lock, (old, old), follow_symlinks=False)
        with pytest.raises(ConflictError):
            await refs.set_if_equals("sessions/a", oid(1), oid(2))
        older = time.time() - 400  # ten times "stale": broken whatever its pid
        os.utime(lock, (older, older), follow_symlinks=False)
        refs = LocalRefStore(tmp_path, lock_timeout=5, stale_lock_after=30)
        assert await refs.set_if_equals("sessions/a", oid(1), oid(2))
        await refs.close()

    async def test_refs_are_never_followed(self, tmp_path: Path) -> None:
        refs = LocalRefStore(tmp_path)
        assert await refs.set_if_equals("sessions/a", None, oid(1))
        target = tmp_path / "refs" / "sessions" / os.readlink(tmp_path / "refs/sessions/a")
        target.mkdir()  # something the symlink would resolve to
        assert await refs.get("sessions/a") == oid(1)
        assert [item async for item in refs.list()] == [("sessions/a", oid(1))]
        with pytest.raises(ConflictError):  # a ref where the namespace would be: not written
            await refs.set_if_equals("sessions/a/x", None, oid(2))  # through the link
        assert list(target.iterdir()) == []
        await refs.close()

    async def test_recent_lock_of_dead_process_is_respected(self, tmp_path: Path) -> None:
        refs = LocalRefStore(tmp_path, lock_timeout=0.2, stale_lock_after=30)
        assert await refs.set_if_equals("sessions/a", None, oid(1))
        (tmp_path / "refs" / "sessions" / "a.lock").write_bytes(b"999999999\n")
        with pytest.raises(ConflictError):
            await refs.set_if_equals("sessions/a", oid(1), oid(2))
        await refs.close()

    async def test_torn_reflog_line_is_ignored(self, tmp_path: Path) -> None:
        refs = LocalRefStore(tmp_path)
        assert await refs.set_if_equals("sessions/a", None, oid(1), "one")
        log = tmp_path / "logs" / "sessions" / "a"
        good = log.read_bytes()
        torn = format_entry(oid(1), oid(2), 5, "torn")[:-20]
        log.write_bytes(good + torn)
        assert [e.reason for e in await refs.reflog("sessions/a")] == ["one"]
        assert await refs.set_if_equals("sessions/a", oid(1), oid(3), "three")
        assert [e.reason for e in await refs.reflog("sessions/a")] == ["one", "three"]
        # a flipped bit in a middle line: that line is skipped, the rest still reads
        raw = bytearray(log.read_bytes())
        raw[10] ^= 1
        log.write_bytes(bytes(raw))
        assert [e.reason for e in await refs.reflog("sessions/a")] == ["three"]
        await refs.close()

    async def test_empty_ref_file_is_restored_from_reflog(self, tmp_path: Path) -> None:
        refs = LocalRefStore(tmp_path)
        assert await refs.set_if_equals("sessions/a", None, oid(1))
        assert await refs.set_if_equals("sessions/a", oid(1), oid(2))
        ref = tmp_path / "refs" / "sessions" / "a"
        ref.unlink()
        ref.write_bytes(b"\0" * 65)  # a ref file (earlier format) a crash left empty
        assert await refs.get("sessions/a") == oid(2)
        assert [item async for item in refs.list()] == [("sessions/a", oid(2))]
        assert await refs.set_if_equals("sessions/a", oid(2), oid(3))
        assert os.readlink(ref) == link_target(oid(3))
        ref.unlink()
        os.symlink("garbled@1", ref)  # a damaged symlink: restored from the reflog too
        assert await refs.get("sessions/a") == oid(3)
        assert await refs.set_if_equals("sessions/a", oid(3), oid(4))
        assert await refs.get("sessions/a") == oid(4)
        (tmp_path / "refs" / "sessions" / "b").write_bytes(b"garbage")
        with pytest.raises(IntegrityError):
            await refs.get("sessions/b")
        os.symlink(link_target(oid(1))[:40] + "@1", tmp_path / "refs" / "sessions" / "c")
        with pytest.raises(IntegrityError):
            await refs.get("sessions/c")
        await refs.close()

    async def test_unapplied_logged_move_is_repaired(self, tmp_path: Path) -> None:
        refs = LocalRefStore(tmp_path)
        assert await refs.set_if_equals("sessions/a", None, oid(1), "one")
        log = tmp_path / "logs" / "sessions" / "a"
        # a crash after the log append, before the rename
        with open(log, "ab") as f:
            f.write(format_entry(oid(1), oid(2), time.time_ns(), "never applied"))
        assert await refs.get("sessions/a") == oid(1)
        assert await refs.set_if_equals("sessions/a", oid(1), oid(3), "three")
        entries = await refs.reflog("sessions/a")
        assert [(e.old, e.new) for e in entries] == [
            (None, oid(1)),
            (oid(1), oid(2)),
            (oid(2), oid(1)),
            (oid(1), oid(3)),
        ]
        assert entries[2].reason.startswith("reflog repair")
        await refs.close()

    async def test_objects_and_refs_share_a_root(self, tmp_path: Path) -> None:
        objects = LocalObjectStore(tmp_path)
        refs = LocalRefStore(tmp_path)
        o = make_object()
        await objects.put(*o)
        assert await refs.set_if_equals("sessions/a", None, o[0])
        head = await refs.get("sessions/a")
        assert head is not None
        unframe(head, await objects.get(head) or b"")
        await objects.close()
        await refs.close()
