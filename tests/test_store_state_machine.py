"""Stateful property tests: the local stores against plain dicts (hypothesis)."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from amplifier_session_storage.core.codec import frame, unframe
from amplifier_session_storage.core.ids import ObjectId
from amplifier_session_storage.stores.local import LocalObjectStore, LocalRefStore

POOL = 24  # a small pool of objects, so puts, deletes and re-puts of one id collide often


def _object(i: int) -> tuple[ObjectId, bytes]:
    canonical = b"object %d " % i * (1 + i * 7)
    return ObjectId.of(canonical), frame(canonical)


OBJECTS = [_object(i) for i in range(POOL)]
indexes = st.integers(0, POOL - 1)

SETTINGS = settings(max_examples=80, stateful_step_count=40, deadline=None)


class _AsyncMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.root = Path(tempfile.mkdtemp(prefix="store-sm-"))

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def close_store(self) -> None:
        raise NotImplementedError

    def teardown(self) -> None:
        self.close_store()
        self.loop.close()
        shutil.rmtree(self.root, ignore_errors=True)


class ObjectStoreMachine(_AsyncMachine):
    """LocalObjectStore (loose objects, packs, deletion records, repack) vs a dict."""

    def __init__(self) -> None:
        super().__init__()
        self.store = LocalObjectStore(self.root, fsync=False)
        self.model: dict[ObjectId, bytes] = {}

    def close_store(self) -> None:
        self.run(self.store.close())

    @rule(i=indexes)
    def put(self, i: int) -> None:
        oid, data = OBJECTS[i]
        self.run(self.store.put(oid, data))
        self.model[oid] = data

    @rule(items=st.lists(indexes, max_size=8))
    def put_many(self, items: list[int]) -> None:
        batch = [OBJECTS[i] for i in items]
        self.run(self.store.put_many(batch))
        self.model.update(batch)

    @rule(i=indexes)
    def delete(self, i: int) -> None:
        oid, _ = OBJECTS[i]
        assert self.run(self.store.delete(oid)) == (oid in self.model)
        self.model.pop(oid, None)

    @rule(keep=st.none() | st.sets(indexes))
    def repack(self, keep: set[int] | None) -> None:
        keep_ids = None if keep is None else {OBJECTS[i][0] for i in keep}
        count = self.run(self.store.repack(keep_ids))
        if keep_ids is not None:
            self.model = {k: v for k, v in self.model.items() if k in keep_ids}
        assert count == len(self.model)

    @rule()
    def reopen(self) -> None:
        self.run(self.store.close())
        self.store = LocalObjectStore(self.root, fsync=False)

    @rule(i=indexes)
    def get(self, i: int) -> None:
        oid, _data = OBJECTS[i]
        got = self.run(self.store.get(oid))
        want = self.model.get(oid)
        assert (got is None) == (want is None)
        if got is not None and want is not None:
            # a segment pack (repack) returns a raw frame of the same canonical bytes
            assert unframe(oid, got) == unframe(oid, want)
        assert self.run(self.store.has(oid)) == (oid in self.model)

    @invariant()
    def listing_matches(self) -> None:
        async def listed() -> list[ObjectId]:
            return [o async for o in self.store.list()]

        ids = self.run(listed())
        assert len(ids) == len(set(ids))
        assert set(ids) == set(self.model)
        all_ids = [o for o, _ in OBJECTS]
        assert self.run(self.store.has_many(all_ids)) == set(self.model)


REF_NAMES = ["sessions/a", "sessions/b", "remotes/origin/sessions/a"]
names = st.sampled_from(REF_NAMES)
values = st.none() | st.sampled_from([o for o, _ in OBJECTS[:5]])


class RefStoreMachine(_AsyncMachine):
    """LocalRefStore compare-and-swap and reflog vs a dict."""

    def __init__(self) -> None:
        super().__init__()
        self.refs = LocalRefStore(self.root, fsync=False)
        self.model: dict[str, ObjectId] = {}
        self.logs: dict[str, list[tuple[ObjectId | None, ObjectId | None, str]]] = {}
        self.moves = 0

    def close_store(self) -> None:
        self.run(self.refs.close())

    @rule(name=names, new=values, reason=st.text(max_size=12))
    def cas_from_current(self, name: str, new: ObjectId | None, reason: str) -> None:
        old = self.model.get(name)
        assert self.run(self.refs.set_if_equals(name, old, new, reason))
        self._apply(name, old, new, reason)

    @rule(name=names, old=values, new=values)
    def cas_from_guess(self, name: str, old: ObjectId | None, new: ObjectId | None) -> None:
        reason = f"guess {self.moves}"
        ok = self.run(self.refs.set_if_equals(name, old, new, reason))
        assert ok == (self.model.get(name) == old)
        if ok:
            self._apply(name, old, new, reason)

    def _apply(self, name: str, old: ObjectId | None, new: ObjectId | None, reason: str) -> None:
        self.moves += 1
        if new is None:
            self.model.pop(name, None)
        else:
            self.model[name] = new
        self.logs.setdefault(name, []).append((old, new, reason))

    @precondition(lambda self: self.moves > 0)
    @rule()
    def reopen(self) -> None:
        self.run(self.refs.close())
        self.refs = LocalRefStore(self.root, fsync=False)

    @invariant()
    def refs_match(self) -> None:
        async def listed() -> list[tuple[str, ObjectId]]:
            return [item async for item in self.refs.list()]

        assert self.run(listed()) == sorted(self.model.items())
        for name in REF_NAMES:
            assert self.run(self.refs.get(name)) == self.model.get(name)
            log = self.run(self.refs.reflog(name))
            assert [(e.old, e.new, e.reason) for e in log] == self.logs.get(name, [])


TestObjectStoreMachine = ObjectStoreMachine.TestCase
TestObjectStoreMachine.settings = SETTINGS
TestRefStoreMachine = RefStoreMachine.TestCase
TestRefStoreMachine.settings = settings(max_examples=50, stateful_step_count=30, deadline=None)
