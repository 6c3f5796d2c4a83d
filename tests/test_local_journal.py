"""The journal pack of the local object store (stores/journal.py): small durable writes.

Also runnable as a child process (``python test_local_journal.py child ROOT WORKER N``) for
the multi-process test: it appends, reads back, deletes a little and prints what it stored.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest
from blake3 import blake3

from amplifier_session_storage.core.codec import frame, unframe
from amplifier_session_storage.core.ids import ObjectId
from amplifier_session_storage.errors import IntegrityError
from amplifier_session_storage.stores import journal as journal_mod
from amplifier_session_storage.stores.journal import Journals
from amplifier_session_storage.stores.local import LocalObjectStore
from amplifier_session_storage.stores.pack import RECORD_HEAD, PackReader

HEADER = b"ASPK\x01\x00\x00\x00"
T = TypeVar("T")


def obj(tag: str, size: int = 300) -> tuple[ObjectId, bytes]:
    canonical = (tag.encode() * (size // len(tag) + 1))[:size]
    return ObjectId.of(canonical), frame(canonical)


def rnd(size: int) -> tuple[ObjectId, bytes]:
    """An incompressible object: its frame is as large as its content."""
    canonical = os.urandom(size)
    return ObjectId.of(canonical), frame(canonical)


def record(o: tuple[ObjectId, bytes]) -> bytes:
    return RECORD_HEAD.pack(o[0], len(o[1])) + o[1]


def pack_dir(root: Path) -> Path:
    return root / "objects" / "pack"


def files(root: Path) -> list[str]:
    return sorted(os.listdir(pack_dir(root)))


async def ids(store: LocalObjectStore) -> set[ObjectId]:
    return {o async for o in store.list()}


class Crash(Exception):
    """Stands for a process killed at that point."""


# -- records, reopen, torn tails ----------------------------------------------------------


async def test_records_are_appended_and_read_after_reopen(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    objs = [obj(f"o{i}", 100 + i) for i in range(5)]
    await store.put(*objs[0])
    await store.put_many(objs[1:4])
    await store.put(*objs[4])
    await store.put(*objs[4])  # present: nothing appended
    await store.put_many(objs[:2])
    journal = pack_dir(tmp_path) / "journal-1.pack"
    assert journal.read_bytes() == HEADER + b"".join(record(o) for o in objs)
    await store.close()
    store = LocalObjectStore(tmp_path)
    for oid, data in objs:
        assert await store.get(oid) == data
        unframe(oid, data)
    assert await ids(store) == {o for o, _ in objs}
    assert await store.has_many([o for o, _ in objs] + [obj("x")[0]]) == {o for o, _ in objs}
    await store.close()


@pytest.mark.parametrize("cut", [10, 36, 36 + 100], ids=["in-head", "head-only", "in-frame"])
async def test_torn_tail_is_ignored_then_cut_by_the_next_writer(tmp_path: Path, cut: int) -> None:
    store = LocalObjectStore(tmp_path)
    kept = [obj(f"k{i}") for i in range(3)]
    await store.put_many(kept)
    await store.close()
    journal = pack_dir(tmp_path) / "journal-1.pack"
    good = journal.read_bytes()
    torn = rnd(300)
    with open(journal, "ab") as f:  # a writer killed in the middle of its append
        f.write(record(torn)[:cut])
    store = LocalObjectStore(tmp_path)
    assert await store.get(torn[0]) is None and not await store.has(torn[0])
    assert await ids(store) == {o for o, _ in kept}
    new = obj("new")
    await store.put(*new)
    assert journal.read_bytes() == good + record(new)  # only the torn bytes were replaced
    assert await store.get(new[0]) == new[1]
    await store.put(*torn)  # the torn object can be written again
    assert await store.get(torn[0]) == torn[1]
    await store.close()


async def test_journal_created_without_header_is_repaired(tmp_path: Path) -> None:
    pack_dir(tmp_path).mkdir(parents=True)
    (pack_dir(tmp_path) / "journal-1.pack").write_bytes(b"ASP")  # killed while creating it
    store = LocalObjectStore(tmp_path)
    o = obj("first")
    assert await store.get(o[0]) is None
    await store.put(*o)
    assert (pack_dir(tmp_path) / "journal-1.pack").read_bytes() == HEADER + record(o)
    await store.close()


async def test_other_instances_see_appends_and_seals(tmp_path: Path) -> None:
    writer = LocalObjectStore(tmp_path, journal_seal_records=4)
    reader = LocalObjectStore(tmp_path)
    assert await reader.get(obj("none")[0]) is None
    objs = [obj(f"o{i}") for i in range(10)]
    for o in objs:
        await writer.put(*o)
        assert await reader.get(o[0]) == o[1]  # found by rescanning the journal
    assert await ids(reader) == {o for o, _ in objs}
    for o in objs:  # sealed since the reader read some of them: still readable
        assert await reader.get(o[0]) == o[1]
    await writer.close()
    await reader.close()


# -- tombstones ---------------------------------------------------------------------------


async def test_delete_appends_a_tombstone_and_put_revives(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    a, b = obj("a"), obj("b")
    await store.put_many([a, b])
    assert await store.delete(a[0]) is True
    assert await store.delete(a[0]) is False
    journal = pack_dir(tmp_path) / "journal-1.pack"
    assert journal.read_bytes() == HEADER + record(a) + record(b) + RECORD_HEAD.pack(a[0], 0)
    assert await store.get(a[0]) is None and await ids(store) == {b[0]}
    await store.close()
    store = LocalObjectStore(tmp_path)
    assert await store.get(a[0]) is None and not await store.has(a[0])
    await store.put(*a)
    assert await store.get(a[0]) == a[1]
    await store.close()
    store = LocalObjectStore(tmp_path)
    assert await ids(store) == {a[0], b[0]}
    await store.close()


async def test_dedup_against_another_writers_record_syncs_it_first(
    tmp_path: Path, monkeypatch: Any
) -> None:
    writer = LocalObjectStore(tmp_path)
    objs = [obj(f"o{i}") for i in range(3)]
    for o in objs:
        await writer.put(*o)
    syncs: list[int] = []
    real = os.fdatasync

    def counting(fd: int) -> None:
        syncs.append(fd)
        real(fd)

    monkeypatch.setattr(journal_mod, "datasync", counting)
    other = LocalObjectStore(tmp_path)
    await other.put(*objs[0])  # skipped: but first made durable (its writer may have died)
    assert len(syncs) == 1
    await other.put(*objs[1])  # covered by that sync
    await other.put_many(objs[1:])
    assert len(syncs) == 1
    assert await other.has(objs[2][0]) and len(syncs) == 1
    await writer.put(*obj("later"))  # appended after other's sync
    syncs.clear()
    assert await other.has(obj("later")[0])
    assert len(syncs) == 1
    await other.close()
    await writer.close()


async def test_small_write_does_not_index_every_pack(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    batch = [obj(f"p{i}") for i in range(20)]
    await store.put_many(batch)  # a pack
    await store.close()
    store = LocalObjectStore(tmp_path)
    await store.put(*batch[0])  # packed already; the filter is not built for a small write
    assert store._filter is None
    assert await ids(store) == {o for o, _ in batch}  # a duplicate record, listed once
    assert await store.delete(batch[0][0]) is True  # removes both copies
    assert await store.get(batch[0][0]) is None
    assert await store.repack() == 19
    await store.close()


# -- sealing ------------------------------------------------------------------------------


async def test_seal_by_record_count_makes_valid_packs(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path, journal_seal_records=10)
    objs = [obj(f"o{i}") for i in range(25)]
    for o in objs[:5]:
        await store.put(*o)
    assert await store.delete(objs[2][0])  # a tombstone: record 6
    for o in objs[5:]:
        await store.put(*o)
    names = files(tmp_path)
    packs = [n[5:-4] for n in names if n.endswith(".idx")]
    assert len(packs) == 2 and names[0] == "journal-3.pack"
    assert not (pack_dir(tmp_path) / "journal-1.pack").exists()
    dfd = os.open(pack_dir(tmp_path), os.O_RDONLY)
    counts = []
    for name in packs:
        raw = (pack_dir(tmp_path) / f"pack-{name}.pack").read_bytes()
        assert raw[:8] == HEADER and blake3(raw[:-32]).hexdigest() == name == raw[-32:].hex()
        reader = PackReader(dfd, name)
        assert reader.load()
        counts.append(sum(1 for _ in reader.ids()))
        reader.close()
    os.close(dfd)
    assert sorted(counts) == [8, 10]  # 9 puts + 1 tombstone: 8 live objects in the first idx
    await store.close()
    store = LocalObjectStore(tmp_path)
    live = [o for i, o in enumerate(objs) if i != 2]
    for oid, data in live:
        assert await store.get(oid) == data
    assert await store.get(objs[2][0]) is None
    assert await ids(store) == {o for o, _ in live}
    await store.close()


async def test_seal_by_size(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path, journal_seal_bytes=10_000)
    objs = [rnd(3000) for _ in range(8)]
    for o in objs:
        await store.put(*o)
    assert sum(n.endswith(".idx") for n in files(tmp_path)) == 2
    for oid, data in objs:
        assert await store.get(oid) == data
    await store.close()


async def test_seal_interrupted_before_its_idx(tmp_path: Path, monkeypatch: Any) -> None:
    store = LocalObjectStore(tmp_path, journal_seal_records=4)
    objs = [obj(f"o{i}") for i in range(4)]
    for o in objs[:3]:
        await store.put(*o)

    def crash(*args: object, **kwargs: object) -> None:
        raise Crash

    monkeypatch.setattr(journal_mod, "build_idx", crash)  # after trailer and link, before idx
    with pytest.raises(Crash):
        await store.put(*objs[3])
    monkeypatch.undo()
    # the journal now ends in a 32-byte trailer, linked as a pack without idx
    names = files(tmp_path)
    assert names[0] == "journal-1.pack" and len(names) == 2 and names[1].endswith(".pack")
    store = LocalObjectStore(tmp_path, journal_seal_records=4)
    for oid, data in objs:
        assert await store.get(oid) == data
    more = obj("more")
    await store.put(*more)  # cuts the trailer (and drops the stale link), then seals
    names = files(tmp_path)
    assert names[0] == "journal-2.pack" and sum(n.endswith(".idx") for n in names) == 1
    for oid, data in (*objs, more):
        assert await store.get(oid) == data
    await store.close()


async def test_seal_interrupted_after_its_idx(tmp_path: Path, monkeypatch: Any) -> None:
    store = LocalObjectStore(tmp_path, journal_seal_records=4)
    objs = [obj(f"o{i}") for i in range(4)]

    def crash(self: Journals, j: object) -> None:
        raise Crash

    monkeypatch.setattr(Journals, "_finish_seal", crash)  # committed, journal not retired
    for o in objs[:3]:
        await store.put(*o)
    with pytest.raises(Crash):
        await store.put(*objs[3])
    monkeypatch.undo()
    names = files(tmp_path)
    assert "journal-1.pack" in names and sum(n.endswith(".idx") for n in names) == 1
    # a reader skips the sealed journal: its records are in the pack (a deletion shows it)
    store = LocalObjectStore(tmp_path)
    size = (pack_dir(tmp_path) / "journal-1.pack").stat().st_size
    assert await store.delete(objs[0][0])
    assert (pack_dir(tmp_path) / "journal-1.pack").stat().st_size == size  # no tombstone
    assert any(n.endswith(".del") for n in files(tmp_path))
    assert await store.get(objs[0][0]) is None
    for oid, data in objs[1:]:
        assert await store.get(oid) == data
    # the next writer finishes the seal: journal-2 takes the append, journal-1 goes
    more = obj("more")
    await store.put(*more)
    assert "journal-1.pack" not in files(tmp_path) and "journal-2.pack" in files(tmp_path)
    assert await ids(store) == {o for o, _ in objs[1:]} | {more[0]}
    await store.close()


async def test_cleanup_removes_sealed_leftovers(tmp_path: Path, monkeypatch: Any) -> None:
    store = LocalObjectStore(tmp_path, journal_seal_records=3)
    objs = [obj(f"o{i}") for i in range(3)]
    original = Journals._finish_seal

    def half(self: Journals, j: Any) -> None:  # the successor is made, the unlink is lost
        monkeypatch.setattr(os, "unlink", lambda *a, **k: None)
        try:
            original(self, j)
        finally:
            monkeypatch.undo()

    monkeypatch.setattr(Journals, "_finish_seal", half)
    for o in objs:
        await store.put(*o)
    monkeypatch.undo()
    await store.close()
    assert {"journal-1.pack", "journal-2.pack"} <= set(files(tmp_path))
    store = LocalObjectStore(tmp_path)
    assert await store.cleanup_incomplete(min_age=3600) == 1  # whatever its age
    assert "journal-1.pack" not in files(tmp_path)
    for oid, data in objs:
        assert await store.get(oid) == data
    assert await store.cleanup_incomplete(min_age=0) == 0  # the active journal stays
    await store.close()


# -- damage -------------------------------------------------------------------------------


async def test_damaged_record_is_detected_and_the_rest_reads(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    objs = [obj(f"o{i}", 500) for i in range(5)]
    for o in objs:
        await store.put(*o)
    path, off, n = store.raw_path(objs[2][0])
    assert path.name == "journal-1.pack" and n == len(objs[2][1])
    store.raw_corrupt(objs[2][0], 20)
    await store.close()
    store = LocalObjectStore(tmp_path)
    with pytest.raises(IntegrityError):
        unframe(objs[2][0], await store.get(objs[2][0]) or b"")
    for i in (0, 1, 3, 4):
        assert await store.get(objs[i][0]) == objs[i][1]
    # a damaged id: that record answers to another id, the others are unaffected
    raw = bytearray(path.read_bytes())
    raw[off - 36 + 5] ^= 0xFF
    path.write_bytes(bytes(raw))
    store2 = LocalObjectStore(tmp_path)
    assert await store2.get(objs[2][0]) is None
    for i in (0, 1, 3, 4):
        assert await store2.get(objs[i][0]) == objs[i][1]
    await store2.close()
    await store.close()


async def test_damaged_length_field_sets_the_journal_aside(
    tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setattr(journal_mod, "TORN_MAX", 2000)  # "longer than any batch"
    store = LocalObjectStore(tmp_path)
    objs = [rnd(600) for _ in range(8)]
    for o in objs:
        await store.put(*o)
    path, off, _ = store.raw_path(objs[2][0])
    await store.close()
    raw = bytearray(path.read_bytes())
    raw[off - 4 : off] = (10**9).to_bytes(4, "little")  # record 2 now claims 1 GB
    path.write_bytes(bytes(raw))
    store = LocalObjectStore(tmp_path)
    for o in objs[:2]:
        assert await store.get(o[0]) == o[1]
    new = obj("new")
    await store.put(*new)  # not a torn append: nothing is cut, the file is kept aside
    names = files(tmp_path)
    assert "journal-1.damaged" in names and "journal-2.pack" in names
    assert (pack_dir(tmp_path) / "journal-1.damaged").read_bytes() == bytes(raw)
    for o in (*objs[:2], new):
        assert await store.get(o[0]) == o[1]  # the readable records were copied to a pack
    await store.close()


# -- repack -------------------------------------------------------------------------------


async def test_repack_retires_the_journal(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    objs = [obj(f"o{i}") for i in range(6)]
    for o in objs:
        await store.put(*o)
    await store.delete(objs[0][0])
    other = LocalObjectStore(tmp_path)
    assert await other.get(objs[1][0]) == objs[1][1]  # holds the journal open
    assert await store.repack({o for o, _ in objs[:5]}) == 4
    assert [n for n in files(tmp_path) if n.startswith("journal")] == []
    assert await ids(store) == {o for o, _ in objs[1:5]}
    late = obj("late")
    await other.put(*late)  # its journal was retired: a new one is made
    assert "journal-1.pack" in files(tmp_path)
    assert await store.get(late[0]) == late[1]
    await other.close()
    await store.close()


# -- the repository's writes ------------------------------------------------------------


async def test_appends_take_the_journal_and_batches_make_packs(tmp_path: Path) -> None:
    from amplifier_session_storage.core.objects import BlockType
    from amplifier_session_storage.repository.local import open_local

    repo = await open_local(tmp_path, user_id="u")
    await repo.create_session("s")
    await repo.append("s", BlockType.MESSAGE, {"role": "user", "content": "hi", "turn": 0})
    big = {"role": "assistant", "content": os.urandom(60_000).hex(), "turn": 0}
    block = await repo.append("s", BlockType.MESSAGE, big)  # a block and its ~15 chunks
    assert len(block.encoded.chunks) > 4
    loose = [p for p in (tmp_path / "objects").iterdir() if p.is_dir() and p.name != "pack"]
    assert all(not list(d.iterdir()) for d in loose)  # nothing loose
    assert files(tmp_path) == ["journal-1.pack"]
    await repo.append_many("s", [(BlockType.MESSAGE, {"n": i}, None) for i in range(1000)])
    assert sum(n.endswith(".idx") for n in files(tmp_path)) == 1
    await repo.close()
    repo = await open_local(tmp_path, user_id="u")
    state = await repo.materialize("s")
    assert len(state.messages) == 1002 and state.messages[1]["content"] == big["content"]
    await repo.close()


# -- open cost ----------------------------------------------------------------------------


async def test_opening_a_full_journal_is_cheap(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path, fsync=False)
    objs = [rnd(380) for _ in range(19_000)]  # 8.06 MB: just under both limits
    for i in range(0, len(objs), 16):
        await store.put_many(objs[i : i + 16])
    await store.close()
    assert files(tmp_path) == ["journal-1.pack"]
    t = time.perf_counter()
    store = LocalObjectStore(tmp_path)
    assert store._packs is None and not store._journals.all()  # opening reads nothing
    assert await store.get(objs[12_345][0]) == objs[12_345][1]  # lists, scans the journal
    elapsed = time.perf_counter() - t
    print(f"open + first read of a {len(objs)}-record journal: {elapsed * 1e3:.1f} ms")
    [journal] = store._journals.all()
    assert journal.count == len(objs) and journal.tail == 0
    for oid, data in objs[::1000]:
        assert await store.get(oid) == data
    await store.close()


# -- readers racing a seal or a repack ----------------------------------------------------
# Two store handles in one process stand for two processes: a hook runs the writer's seal or
# repack inside the reader's lookup, after the reader listed the pack directory and before it
# looked in what it listed. The local store never suspends, so each interleaving is exact.


def run_now(coro: Coroutine[Any, Any, T]) -> T:
    """Run a local-store coroutine to completion right here (it does its I/O inline)."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    coro.close()
    raise AssertionError("the local store suspended")


def between_listing_and_probe(reader: LocalObjectStore, action: Callable[[], object]) -> None:
    """Run ``action`` once, when ``reader`` next reads its journals: a lookup that missed
    does so just after listing the pack directory, before looking in the packs and journals
    it listed."""
    rescan = reader._journals.rescan
    fired: list[bool] = []

    def hooked() -> bool:
        if not fired:
            fired.append(True)
            action()
        return rescan()

    reader._journals.rescan = hooked  # type: ignore[method-assign]


def canonical(data: bytes | None, oid: ObjectId) -> bytes:
    assert data is not None, f"{oid.hex()} not found"
    return unframe(oid, data)


@pytest.mark.parametrize("how", ["get", "has", "has_many"])
async def test_a_seal_between_a_readers_listing_and_its_probe(tmp_path: Path, how: str) -> None:
    writer = LocalObjectStore(tmp_path, journal_seal_records=3)
    reader = LocalObjectStore(tmp_path)
    a, b, c = obj("a"), obj("b"), obj("c")
    await writer.put(*a)
    assert await reader.get(a[0]) == a[1]  # the reader lists journal-1 and reads it
    await writer.put(*b)  # acknowledged; the reader has not read this record yet

    def seal() -> None:
        run_now(writer.put(*c))  # the third record: journal-1 becomes a pack and is unlinked
        assert "journal-1.pack" not in files(tmp_path)

    between_listing_and_probe(reader, seal)
    if how == "get":
        assert await reader.get(b[0]) == b[1]  # from the pack the seal committed
    elif how == "has":
        assert await reader.has(b[0])
    else:
        assert await reader.has_many([a[0], b[0]]) == {a[0], b[0]}
    await writer.close()
    await reader.close()


@pytest.mark.parametrize("how", ["get", "has"])
async def test_a_repack_between_a_readers_listing_and_its_probe(tmp_path: Path, how: str) -> None:
    writer = LocalObjectStore(tmp_path)
    reader = LocalObjectStore(tmp_path)
    assert await reader.get(obj("none")[0]) is None  # the reader lists the empty directory
    batch = [obj(f"p{i}") for i in range(20)]
    await writer.put_many(batch)  # a pack the reader has not listed yet
    before = [n for n in files(tmp_path) if n.endswith(".idx")]

    def repack() -> None:  # the objects move to a new segment pack; the old pack is removed
        assert run_now(writer.repack()) == len(batch)
        assert not set(before) & set(files(tmp_path))

    between_listing_and_probe(reader, repack)
    oid, data = batch[7]
    if how == "get":
        assert canonical(await reader.get(oid), oid) == unframe(oid, data)
    else:
        assert await reader.has(oid)
    await writer.close()
    await reader.close()


async def test_listing_keeps_up_with_a_repack_that_moves_objects_meanwhile(
    tmp_path: Path,
) -> None:
    writer = LocalObjectStore(tmp_path)
    reader = LocalObjectStore(tmp_path)
    batches = [[obj(f"b{b} {i}") for i in range(20)] for b in range(2)]
    for batch in batches:
        await writer.put_many(batch)  # two packs
    big, small = rnd(2 << 20), obj("journal")
    await writer.put(*big)  # too large for the journal: a loose file
    await writer.put(*small)
    stored = {o for batch in batches for o, _ in batch} | {big[0], small[0]}
    assert await reader.has_many([]) == set()  # the reader lists both packs, opens neither
    listed: list[ObjectId] = []
    async for oid in reader.list():
        if len(listed) == 3:  # mid-way: everything moves into one segment pack
            assert await writer.repack() == len(stored)
        listed.append(oid)
    assert len(listed) == len(set(listed)) and set(listed) == stored
    await writer.close()
    await reader.close()


# -- several processes --------------------------------------------------------------------


async def child(root: Path, worker: int, count: int) -> None:
    store = LocalObjectStore(root, journal_seal_records=60)
    while not (root / "go").exists():
        await asyncio.sleep(0.001)
    for i in range(count):
        mine = obj(f"w{worker} i{i} ", 200 + i % 300)
        shared = obj(f"shared {i // 5 % 20} ", 150)
        if i % 5 == 0:
            await store.put_many([mine, shared])
        else:
            await store.put(*mine)
        for oid, data in (mine, shared) if i % 5 == 0 else (mine,):
            got = await store.get(oid)
            assert got is not None, f"{oid.hex()} unreadable right after put"
            # Byte equality would be wrong: a shared object may already sit in a segment
            # pack (worker 0 repacks), whose get returns a raw frame of the same canonical
            # bytes (docs/design-local.md, "Segment pack"), not the zstd frame put here.
            assert unframe(oid, got) == unframe(oid, data), f"{oid.hex()} reads otherwise"
            sys.stdout.write(f"O {oid.hex()}\n")
        if i % 17 == 0:  # a repack running meanwhile may have copied it: not asserted
            dead = obj(f"w{worker} doomed {i}")
            await store.put(*dead)
            await store.delete(dead[0])
            sys.stdout.write(f"D {dead[0].hex()}\n")
        if worker == 0 and i % 50 == 49:
            await store.repack()
        sys.stdout.flush()
    await store.close()


@pytest.mark.slow
async def test_processes_append_to_one_journal(tmp_path: Path) -> None:
    workers, count = 4, 150
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "child", str(tmp_path), str(w), str(count)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(workers)
    ]
    (tmp_path / "go").touch()
    acked: set[str] = set()
    doomed: set[str] = set()
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        acked |= {line.split()[1] for line in out.splitlines() if line.startswith("O ")}
        doomed |= {line.split()[1] for line in out.splitlines() if line.startswith("D ")}
    assert len(acked) == workers * count + 20
    store = LocalObjectStore(tmp_path)
    for hex_ in acked:
        oid = ObjectId.from_hex(hex_)
        unframe(oid, await store.get(oid) or b"")
    listed = {o.hex() async for o in store.list()}
    assert acked <= listed <= acked | doomed
    names = files(tmp_path)
    assert not [n for n in names if n.startswith("tmp-") or n.endswith(".damaged")]
    assert await store.repack() == len(listed)
    assert {o.hex() async for o in store.list()} == listed
    await store.close()


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "child":
    asyncio.run(child(Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])))
