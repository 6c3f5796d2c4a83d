"""The RefStore conformance suite (zarr ``StoreTests`` style).

A backend's test module subclasses :class:`RefStoreSuite` with a ``Test…`` name and provides
``async make_store(tmp_path) -> RefStore`` (a fresh, empty store), and, for a backend whose
refs outlive the store object, ``persistent = True`` with ``async reopen(store, tmp_path)``.

Example::

    class TestCosmosRefStore(RefStoreSuite):
        persistent = True
        async def make_store(self, tmp_path):
            return CosmosRefStore(container=f"t-{tmp_path.name}", ...)
        async def reopen(self, store, tmp_path):
            await store.close()
            return CosmosRefStore(container=f"t-{tmp_path.name}", ...)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from amplifier_session_storage.core.ids import ObjectId
from amplifier_session_storage.errors import InvalidInputError
from amplifier_session_storage.stores.base import RefStore

__all__ = ["BAD_REF_NAMES", "RefStoreSuite", "oid"]


def oid(n: int) -> ObjectId:
    """A deterministic object id."""
    return ObjectId.of(b"ref-suite-%d" % n)


BAD_REF_NAMES = [
    "",
    "..",
    ".",
    "/x",
    "x/",
    "a//b",
    "a/../b",
    "sessions/..",
    "a\x00b",
    "a\nb",
    "a\\b",
    "x" * 600,
    "sessions/" + "y" * 300,
]


class RefStoreSuite:
    """Every RefStore must pass these. Subclass it; see the module docstring."""

    persistent = False

    async def make_store(self, tmp_path: Path) -> RefStore:
        raise NotImplementedError

    async def reopen(self, store: RefStore, tmp_path: Path) -> RefStore:
        raise NotImplementedError

    @pytest.fixture
    async def refs(self, tmp_path: Path) -> AsyncIterator[RefStore]:
        s = await self.make_store(tmp_path)
        try:
            yield s
        finally:
            await s.close()

    async def test_get_missing(self, refs: RefStore) -> None:
        assert await refs.get("sessions/nope") is None
        assert await refs.reflog("sessions/nope") == []

    async def test_create(self, refs: RefStore) -> None:
        assert await refs.set_if_equals("sessions/a", None, oid(1), "create")
        assert await refs.get("sessions/a") == oid(1)
        got = await refs.get("sessions/a")
        assert isinstance(got, ObjectId)
        # creating again must fail: the ref exists
        assert not await refs.set_if_equals("sessions/a", None, oid(2), "again")
        assert await refs.get("sessions/a") == oid(1)

    async def test_cas_success_and_failure(self, refs: RefStore) -> None:
        assert await refs.set_if_equals("sessions/a", None, oid(1))
        assert await refs.set_if_equals("sessions/a", oid(1), oid(2), "advance")
        assert await refs.get("sessions/a") == oid(2)
        log_before = await refs.reflog("sessions/a")
        assert not await refs.set_if_equals("sessions/a", oid(1), oid(3), "stale")
        assert await refs.get("sessions/a") == oid(2)
        assert await refs.reflog("sessions/a") == log_before
        # same value again is a (logged) move
        assert await refs.set_if_equals("sessions/a", oid(2), oid(2), "noop")
        assert await refs.get("sessions/a") == oid(2)

    async def test_delete(self, refs: RefStore) -> None:
        assert await refs.set_if_equals("sessions/a", None, oid(1))
        assert not await refs.set_if_equals("sessions/a", oid(9), None, "wrong old")
        assert await refs.get("sessions/a") == oid(1)
        assert await refs.set_if_equals("sessions/a", oid(1), None, "delete")
        assert await refs.get("sessions/a") is None
        assert [n async for n, _ in refs.list()] == []
        assert not await refs.set_if_equals("sessions/a", oid(1), None, "twice")
        # re-create after delete
        assert await refs.set_if_equals("sessions/a", None, oid(3), "recreate")
        assert await refs.get("sessions/a") == oid(3)

    async def test_list_with_prefix(self, refs: RefStore) -> None:
        names = {
            "sessions/b": oid(2),
            "sessions/a": oid(1),
            "sessions/a-2": oid(5),
            "remotes/origin/sessions/a": oid(3),
            "remotes/other/sessions/z": oid(4),
        }
        for name, value in names.items():
            assert await refs.set_if_equals(name, None, value)
        everything = [item async for item in refs.list()]
        assert everything == sorted(names.items())
        assert [n async for n, _ in refs.list("sessions/")] == [
            "sessions/a",
            "sessions/a-2",
            "sessions/b",
        ]
        assert [n async for n, _ in refs.list("sessions/a")] == ["sessions/a", "sessions/a-2"]
        assert [n async for n, _ in refs.list("sess")] == [
            "sessions/a",
            "sessions/a-2",
            "sessions/b",
        ]
        assert [n async for n, _ in refs.list("remotes/origin/")] == ["remotes/origin/sessions/a"]
        assert [n async for n, _ in refs.list("remotes/")] == [
            "remotes/origin/sessions/a",
            "remotes/other/sessions/z",
        ]
        assert [n async for n, _ in refs.list("nothing/")] == []
        assert [n async for n, _ in refs.list("../")] == []

    async def test_reflog_records_every_move(self, refs: RefStore) -> None:
        t0 = time.time_ns()
        reasons = ["create", "with spaces and ünïcödé", "multi\nline\r\n", "back\\slash", ""]
        values = [oid(1), oid(2), oid(3), oid(4), None]
        prev = None
        for value, reason in zip(values, reasons, strict=True):
            assert await refs.set_if_equals("sessions/a", prev, value, reason)
            prev = value
        assert not await refs.set_if_equals("sessions/a", oid(7), oid(8), "failed: not logged")
        log = await refs.reflog("sessions/a")
        assert [(e.old, e.new, e.reason) for e in log] == [
            (None, oid(1), reasons[0]),
            (oid(1), oid(2), reasons[1]),
            (oid(2), oid(3), reasons[2]),
            (oid(3), oid(4), reasons[3]),
            (oid(4), None, reasons[4]),
        ]
        times = [e.time_ns for e in log]
        assert times == sorted(times) and times[0] >= t0 - 10**9
        assert await refs.reflog("sessions/other") == []

    async def test_logged_refs_include_deleted_refs(self, refs: RefStore) -> None:
        assert await refs.logged_refs() == []
        assert await refs.set_if_equals("sessions/b", None, oid(2))
        assert await refs.set_if_equals("sessions/a", None, oid(1))
        assert await refs.set_if_equals("remotes/origin/sessions/a", None, oid(3))
        assert await refs.set_if_equals("sessions/a", oid(1), None, "delete")
        assert not await refs.set_if_equals("sessions/c", oid(1), oid(2), "fails: no log")
        assert await refs.logged_refs() == [
            "remotes/origin/sessions/a",
            "sessions/a",
            "sessions/b",
        ]

    async def test_reflogs_are_per_ref(self, refs: RefStore) -> None:
        assert await refs.set_if_equals("sessions/a", None, oid(1), "a")
        assert await refs.set_if_equals("sessions/b", None, oid(2), "b")
        assert [e.reason for e in await refs.reflog("sessions/a")] == ["a"]
        assert [e.reason for e in await refs.reflog("sessions/b")] == ["b"]

    @pytest.mark.parametrize("name", BAD_REF_NAMES, ids=repr)
    async def test_invalid_names_refused(self, refs: RefStore, name: str) -> None:
        with pytest.raises(InvalidInputError):
            await refs.get(name)
        with pytest.raises(InvalidInputError):
            await refs.set_if_equals(name, None, oid(1))
        with pytest.raises(InvalidInputError):
            await refs.reflog(name)

    async def test_invalid_values_refused(self, refs: RefStore) -> None:
        with pytest.raises(InvalidInputError):
            await refs.set_if_equals("sessions/a", None, b"short")  # type: ignore[arg-type]
        assert await refs.get("sessions/a") is None

    async def test_concurrent_cas_one_winner(self, refs: RefStore) -> None:
        assert await refs.set_if_equals("sessions/a", None, oid(0))
        results = await asyncio.gather(
            *(refs.set_if_equals("sessions/a", oid(0), oid(i), f"w{i}") for i in range(1, 9))
        )
        assert sum(results) == 1
        winner = results.index(True) + 1
        assert await refs.get("sessions/a") == oid(winner)
        assert len(await refs.reflog("sessions/a")) == 2

    async def test_refs_survive_reopen(self, tmp_path: Path) -> None:
        if not self.persistent:
            first = await self.make_store(tmp_path)
            assert await first.set_if_equals("sessions/a", None, oid(1), "one")
            second = await self.make_store(tmp_path)
            assert await second.get("sessions/a") is None
            await first.close()
            await second.close()
            return
        refs = await self.make_store(tmp_path)
        assert await refs.set_if_equals("sessions/a", None, oid(1), "one")
        assert await refs.set_if_equals("sessions/a", oid(1), oid(2), "two")
        assert await refs.set_if_equals("sessions/b", None, oid(3), "three")
        refs = await self.reopen(refs, tmp_path)
        try:
            assert [item async for item in refs.list()] == [
                ("sessions/a", oid(2)),
                ("sessions/b", oid(3)),
            ]
            assert [e.reason for e in await refs.reflog("sessions/a")] == ["one", "two"]
            assert await refs.set_if_equals("sessions/a", oid(2), oid(4), "four")
        finally:
            await refs.close()
