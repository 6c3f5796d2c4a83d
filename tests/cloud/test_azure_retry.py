"""RetryingObjectStore / RetryingRefStore over flaky in-memory stores (no network)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any

import pytest

from amplifier_session_storage.core.ids import ObjectId
from amplifier_session_storage.errors import (
    AuthenticationError,
    InvalidInputError,
    NotFoundError,
    TransientRemoteError,
)
from amplifier_session_storage.stores.memory import MemoryObjectStore, MemoryRefStore
from amplifier_session_storage.stores.retry import (
    RetryingObjectStore,
    RetryingRefStore,
    RetryPolicy,
)
from conformance.object_store_suite import make_object


class Clock:
    """A fake clock and sleep: waits are recorded, time advances instantly."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class FlakyObjects(MemoryObjectStore):
    """Fails the next ``fail`` calls of each operation with ``error``."""

    def __init__(self, fail: int, error: Exception | None = None) -> None:
        super().__init__()
        self.fail = fail
        self.error = error or TransientRemoteError("throttled", retry_after=None)
        self.calls: dict[str, int] = {}

    def _maybe_fail(self, op: str) -> None:
        n = self.calls[op] = self.calls.get(op, 0) + 1
        if n <= self.fail:
            raise self.error

    async def get(self, oid: ObjectId) -> bytes | None:
        self._maybe_fail("get")
        return await super().get(oid)

    async def put(self, oid: ObjectId, data: bytes) -> None:
        self._maybe_fail("put")
        await super().put(oid, data)

    async def put_many(self, items: Iterable[tuple[ObjectId, bytes]]) -> None:
        self._maybe_fail("put_many")
        for oid, data in items:
            await super().put(oid, data)

    async def has_many(self, oids: Iterable[ObjectId]) -> set[ObjectId]:
        self._maybe_fail("has_many")
        return await super().has_many(oids)

    async def list(self) -> AsyncIterator[ObjectId]:
        n = self.calls["list"] = self.calls.get("list", 0) + 1
        for i, oid in enumerate(list(self._objects)):
            if n <= self.fail and i == 2:
                raise self.error  # fail half way through
            yield oid


def wrap(inner: Any, clock: Clock, **policy: Any) -> Any:
    kind = RetryingRefStore if isinstance(inner, MemoryRefStore) else RetryingObjectStore
    return kind(
        inner,
        RetryPolicy(**policy) if policy else None,
        sleep=clock.sleep,
        clock=clock,
        rng=lambda: 1.0,  # the jitter's upper bound, so waits are predictable
    )


async def test_transient_errors_are_retried_with_exponential_backoff() -> None:
    clock = Clock()
    inner = FlakyObjects(fail=3)
    store = wrap(inner, clock, base_delay=0.1, max_delay=10, max_attempts=6)
    oid, data = make_object()
    await store.put(oid, data)
    assert inner.calls["put"] == 4
    assert clock.sleeps == pytest.approx([0.1, 0.2, 0.4])
    assert await store.get(oid) == data


async def test_backoff_is_capped_and_jittered() -> None:
    policy = RetryPolicy(base_delay=1, max_delay=5)
    assert policy.backoff(10, lambda: 1.0) == 5
    assert policy.backoff(2, lambda: 0.5) == 2.0
    assert policy.backoff(0, lambda: 0.0) == 0.0
    with pytest.raises(InvalidInputError):
        RetryPolicy(max_attempts=0)


async def test_retry_after_is_honoured() -> None:
    clock = Clock()
    inner = FlakyObjects(fail=2, error=TransientRemoteError("429", retry_after=3.0))
    store = wrap(inner, clock, base_delay=0.1)
    await store.get(make_object()[0])
    assert clock.sleeps == [3.0, 3.0]


async def test_gives_up_after_max_attempts_or_max_elapsed() -> None:
    clock = Clock()
    inner = FlakyObjects(fail=100)
    store = wrap(inner, clock, max_attempts=4, base_delay=0.1)
    with pytest.raises(TransientRemoteError):
        await store.get(make_object()[0])
    assert inner.calls["get"] == 4 and len(clock.sleeps) == 3

    clock = Clock()
    inner = FlakyObjects(fail=100, error=TransientRemoteError("busy", retry_after=20))
    store = wrap(inner, clock, max_attempts=50, max_elapsed=60)
    with pytest.raises(TransientRemoteError):
        await store.get(make_object()[0])
    assert clock.sleeps == [20, 20, 20] and inner.calls["get"] == 4  # a 4th wait would pass 60 s


@pytest.mark.parametrize(
    "error", [NotFoundError("no"), AuthenticationError("refused"), InvalidInputError("bad")]
)
async def test_permanent_errors_pass_through_at_once(error: Exception) -> None:
    clock = Clock()
    inner = FlakyObjects(fail=1, error=error)
    store = wrap(inner, clock)
    with pytest.raises(type(error)):
        await store.get(make_object()[0])
    assert inner.calls["get"] == 1 and clock.sleeps == []


async def test_put_many_retries_the_same_items_from_a_generator() -> None:
    clock = Clock()
    inner = FlakyObjects(fail=1)
    store = wrap(inner, clock)
    objs = [make_object() for _ in range(5)]
    await store.put_many(o for o in objs)
    assert await store.has_many([o for o, _ in objs]) == {o for o, _ in objs}


async def test_list_restarts_without_duplicates() -> None:
    clock = Clock()
    inner = FlakyObjects(fail=2)
    objs = [make_object() for _ in range(6)]
    for oid, data in objs:
        await MemoryObjectStore.put(inner, oid, data)
    store = wrap(inner, clock)
    listed = [o async for o in store.list()]
    assert sorted(listed) == sorted(o for o, _ in objs)
    assert inner.calls["list"] == 3


class FlakyRefs(MemoryRefStore):
    """Applies the swap, then reports a transient error (the answer was lost)."""

    def __init__(self, lose_answers: int) -> None:
        super().__init__()
        self.lose = lose_answers
        self.calls = 0

    async def set_if_equals(
        self, name: str, old: ObjectId | None, new: ObjectId | None, reason: str = ""
    ) -> bool:
        self.calls += 1
        ok = await super().set_if_equals(name, old, new, reason)
        if self.calls <= self.lose:
            raise TransientRemoteError("connection reset after the write")
        return ok


async def test_cas_whose_answer_was_lost_reports_success() -> None:
    clock = Clock()
    inner = FlakyRefs(lose_answers=1)
    refs = wrap(inner, clock)
    a = ObjectId.of(b"a")
    assert await refs.set_if_equals("sessions/s", None, a, "create") is True
    assert await refs.get("sessions/s") == a
    assert len(await refs.reflog("sessions/s")) == 1
    # a plain lost race (no transient error) is still False
    assert await refs.set_if_equals("sessions/s", None, a) is False
    assert await refs.logged_refs() == ["sessions/s"]
    assert [n async for n, _ in refs.list()] == ["sessions/s"]


async def test_cas_lost_to_another_writer_after_a_transient_error_is_false() -> None:
    class Interleaved(MemoryRefStore):
        calls = 0

        async def set_if_equals(
            self, name: str, old: ObjectId | None, new: ObjectId | None, reason: str = ""
        ) -> bool:
            self.calls += 1
            if self.calls == 1:
                # another writer moves the ref; our request never arrives
                await super().set_if_equals(name, old, ObjectId.of(b"theirs"), "other")
                raise TransientRemoteError("timeout")
            return await super().set_if_equals(name, old, new, reason)

    refs = wrap(Interleaved(), Clock())
    assert await refs.set_if_equals("sessions/s", None, ObjectId.of(b"mine")) is False
    assert await refs.get("sessions/s") == ObjectId.of(b"theirs")


async def test_call_retries_any_coroutine_with_the_policy() -> None:
    clock = Clock()
    store = wrap(MemoryObjectStore(), clock, base_delay=0.5)
    attempts = []

    async def upload() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise TransientRemoteError("503")
        return "done"

    assert await store.call(upload, "upload_pack") == "done"
    assert clock.sleeps == [0.5, 1.0]
