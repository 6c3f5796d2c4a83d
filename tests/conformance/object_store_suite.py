"""The ObjectStore conformance suite (zarr ``StoreTests`` style).

A backend's test module subclasses :class:`ObjectStoreSuite` with a ``Test…`` name and
provides:

* ``async make_store(tmp_path) -> ObjectStore`` -- a fresh, empty store (``tmp_path`` is a
  per-test directory; a cloud backend may use its name to pick a unique container);
* ``corrupt(store, oid, offset)`` -- flip the byte at ``offset`` of the stored frame,
  bypassing the contract;
* ``truncate(store, oid, length)`` -- cut the stored frame to ``length`` bytes;
* optionally ``async reopen(store, tmp_path) -> ObjectStore`` and ``persistent = True`` for
  a backend whose data outlives the store object.

Example::

    class TestBlobObjectStore(ObjectStoreSuite):
        async def make_store(self, tmp_path):
            return BlobObjectStore(container=f"t-{tmp_path.name}", ...)
        def corrupt(self, store, oid, offset): ...
        def truncate(self, store, oid, length): ...
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from amplifier_session_storage.core.codec import frame, unframe
from amplifier_session_storage.core.ids import ObjectId
from amplifier_session_storage.errors import CorruptObjectError, IntegrityError, InvalidInputError
from amplifier_session_storage.stores.base import ObjectStore

__all__ = ["ObjectStoreSuite", "make_object"]


def make_object(size: int = 500, seed: bytes | None = None) -> tuple[ObjectId, bytes]:
    """A random (or seeded) canonical payload: its id and its stored frame."""
    canonical = os.urandom(size) if seed is None else (seed * (size // len(seed) + 1))[:size]
    return ObjectId.of(canonical), frame(canonical)


class ObjectStoreSuite:
    """Every ObjectStore must pass these. Subclass it; see the module docstring."""

    persistent = False

    async def make_store(self, tmp_path: Path) -> ObjectStore:
        raise NotImplementedError

    async def reopen(self, store: ObjectStore, tmp_path: Path) -> ObjectStore:
        raise NotImplementedError

    def corrupt(self, store: ObjectStore, oid: ObjectId, offset: int) -> None:
        raise NotImplementedError

    def truncate(self, store: ObjectStore, oid: ObjectId, length: int) -> None:
        raise NotImplementedError

    @pytest.fixture
    async def store(self, tmp_path: Path) -> AsyncIterator[ObjectStore]:
        s = await self.make_store(tmp_path)
        try:
            yield s
        finally:
            await s.close()

    # -- basic contract ----------------------------------------------------------------

    async def test_get_missing_returns_none(self, store: ObjectStore) -> None:
        oid, _ = make_object()
        assert await store.get(oid) is None
        assert not await store.has(oid)

    async def test_put_get_roundtrip(self, store: ObjectStore) -> None:
        for size in (0, 1, 95, 96, 500, 70_000):
            oid, data = make_object(size)
            await store.put(oid, data)
            got = await store.get(oid)
            assert got == data
            assert unframe(oid, got) is not None
            assert await store.has(oid)

    async def test_compressible_roundtrip(self, store: ObjectStore) -> None:
        oid, data = make_object(10_000, seed=b"session json ...")
        assert len(data) < 10_000  # zstd frame
        await store.put(oid, data)
        assert unframe(oid, await store.get(oid) or b"") == (b"session json ..." * 700)[:10_000]

    async def test_put_is_idempotent(self, store: ObjectStore) -> None:
        oid, data = make_object()
        await store.put(oid, data)
        await store.put(oid, data)
        await store.put_many([(oid, data)])
        assert await store.get(oid) == data
        assert [o async for o in store.list()] == [oid]

    async def test_put_many(self, store: ObjectStore) -> None:
        first = [make_object(300 + i) for i in range(5)]
        await store.put_many(first)
        batch = [make_object(300 + 7 * i) for i in range(200)]
        # duplicates inside the batch and objects already stored are fine
        await store.put_many([*batch, *batch[:10], *first])
        for oid, data in (*first, *batch):
            assert await store.get(oid) == data
        assert len({o async for o in store.list()}) == 205

    async def test_put_many_empty_and_single(self, store: ObjectStore) -> None:
        await store.put_many([])
        assert [o async for o in store.list()] == []
        oid, data = make_object()
        await store.put_many(iter([(oid, data)]))
        assert await store.get(oid) == data

    async def test_has_and_has_many(self, store: ObjectStore) -> None:
        present = [make_object() for _ in range(20)]
        absent = [make_object() for _ in range(20)]
        await store.put_many(present[:10])
        for oid, data in present[10:]:
            await store.put(oid, data)
        ids = [o for o, _ in present + absent]
        assert await store.has_many(ids) == {o for o, _ in present}
        assert await store.has_many([]) == set()
        for oid, _ in absent:
            assert not await store.has(oid)

    async def test_delete(self, store: ObjectStore) -> None:
        loose = make_object()
        packed = [make_object() for _ in range(5)]
        await store.put(*loose)
        await store.put_many(packed)
        for oid, _ in (loose, packed[2]):
            assert await store.delete(oid) is True
            assert await store.get(oid) is None
            assert not await store.has(oid)
            assert await store.delete(oid) is False
        listed = {o async for o in store.list()}
        assert listed == {o for o, _ in packed} - {packed[2][0]}
        for oid, data in packed[:2] + packed[3:]:
            assert await store.get(oid) == data
        # a deleted object can be stored again, singly or in a batch
        await store.put(*loose)
        await store.put_many([packed[2], make_object()])
        assert await store.get(loose[0]) == loose[1]
        assert await store.get(packed[2][0]) == packed[2][1]

    async def test_delete_missing(self, store: ObjectStore) -> None:
        oid, _ = make_object()
        assert await store.delete(oid) is False

    async def test_list(self, store: ObjectStore) -> None:
        assert [o async for o in store.list()] == []
        objs = [make_object() for _ in range(30)]
        await store.put_many(objs[:15])
        for o in objs[15:]:
            await store.put(*o)
        listed = [o async for o in store.list()]
        assert len(listed) == len(set(listed)) == 30
        assert set(listed) == {o for o, _ in objs}
        assert all(isinstance(o, ObjectId) for o in listed)

    async def test_close_is_idempotent_and_context_manager(self, tmp_path: Path) -> None:
        store = await self.make_store(tmp_path)
        async with store as s:
            assert s is store
            await s.put(*make_object())
        await store.close()

    async def test_invalid_ids_refused(self, store: ObjectStore) -> None:
        for bad in (b"short", "a" * 64, b"x" * 33):
            with pytest.raises(InvalidInputError):
                await store.get(bad)  # type: ignore[arg-type]
            with pytest.raises(InvalidInputError):
                await store.put(bad, b"data")  # type: ignore[arg-type]

    async def test_many_objects(self, store: ObjectStore) -> None:
        objs = [make_object(100 + i % 900) for i in range(3000)]
        for i in range(0, 2000, 500):
            await store.put_many(objs[i : i + 500])
        for o in objs[2000:2100]:
            await store.put(*o)
        await store.put_many(objs[2100:])
        assert await store.has_many([o for o, _ in objs]) == {o for o, _ in objs}
        for oid, data in objs[::37]:
            assert await store.get(oid) == data
        assert len({o async for o in store.list()}) == 3000

    async def test_large_objects(self, store: ObjectStore) -> None:
        big = make_object(4 * 1024 * 1024)
        big2 = make_object(4 * 1024 * 1024)
        small = make_object()
        await store.put(*big)
        await store.put_many([big2, small])
        for oid, data in (big, big2, small):
            got = await store.get(oid)
            assert got == data
            assert len(unframe(oid, got)) == (4 * 1024 * 1024 if oid != small[0] else 500)

    async def test_concurrent_puts(self, store: ObjectStore) -> None:
        objs = [make_object() for _ in range(50)]
        await asyncio.gather(*(store.put(*o) for o in objs), store.put_many(objs[:20]))
        assert await store.has_many([o for o, _ in objs]) == {o for o, _ in objs}

    # -- corruption is detected by the reader, the rest stays readable -------------------

    async def _plant_and_check(self, store: ObjectStore, packed: bool, damage: str) -> None:
        others = [make_object() for _ in range(4)]
        victim = make_object(2000)
        filler = make_object()
        await store.put(*others[0])
        await store.put_many(others[1:])
        if packed:
            await store.put_many([filler, victim])  # the victim is the pack's last record
        else:
            await store.put(*victim)
            await store.put(*filler)
        if damage == "flip-body":
            self.corrupt(store, victim[0], 1000)
        elif damage == "flip-header":
            self.corrupt(store, victim[0], 0)
        else:
            self.truncate(store, victim[0], 1500)
        got = await store.get(victim[0])
        assert got is not None and got != victim[1]
        with pytest.raises(IntegrityError):
            unframe(victim[0], got)
        for oid, data in (*others, filler):
            got = await store.get(oid)
            assert got == data
            unframe(oid, got)
        assert {o async for o in store.list()} >= {o for o, _ in others}

    @pytest.mark.parametrize("packed", [False, True], ids=["loose", "packed"])
    @pytest.mark.parametrize("damage", ["flip-body", "flip-header", "truncate"])
    async def test_corruption_detected(self, store: ObjectStore, packed: bool, damage: str) -> None:
        await self._plant_and_check(store, packed, damage)

    async def test_header_damage_is_corrupt_object_error(self, store: ObjectStore) -> None:
        oid, data = make_object()
        await store.put(oid, data)
        self.corrupt(store, oid, 0)
        with pytest.raises(CorruptObjectError):
            unframe(oid, await store.get(oid) or b"")

    # -- persistence -------------------------------------------------------------------

    async def test_data_survives_reopen(self, tmp_path: Path) -> None:
        if not self.persistent:
            # a store that keeps nothing across instances must say so, not pretend
            first = await self.make_store(tmp_path)
            obj = make_object()
            await first.put(*obj)
            second = await self.make_store(tmp_path)
            assert await second.get(obj[0]) is None
            await first.close()
            await second.close()
            return
        store = await self.make_store(tmp_path)
        loose, packed = make_object(), [make_object() for _ in range(10)]
        await store.put(*loose)
        await store.put_many(packed)
        await store.delete(packed[0][0])
        store = await self.reopen(store, tmp_path)
        try:
            assert await store.get(loose[0]) == loose[1]
            assert await store.get(packed[0][0]) is None
            for oid, data in packed[1:]:
                assert await store.get(oid) == data
            assert len({o async for o in store.list()}) == 10
        finally:
            await store.close()
