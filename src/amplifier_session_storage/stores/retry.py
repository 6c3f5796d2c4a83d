"""Retries as wrappers: any ObjectStore or RefStore gets them without knowing about them.

Only :class:`~amplifier_session_storage.errors.TransientRemoteError` is retried (throttling,
timeouts, dropped connections: see ``azure_errors``); every other error passes through at
once. The wait before retry ``n`` (0-based) is "full jitter" exponential backoff,
``uniform(0, min(max_delay, base_delay * 2**n))``, but never shorter than the server's
``retry_after``. Retrying stops after ``max_attempts`` calls or when the next wait would
pass ``max_elapsed`` seconds since the first call; the last error is raised.

Two operations are not naturally idempotent, and are made safe here:

* ``set_if_equals``: when an attempt failed transiently the swap may have been applied
  without us hearing the answer. If a later attempt then reports "not equal" and the ref
  already holds ``new``, the earlier attempt did it: ``True`` is returned.
* ``list``: a listing that fails half way is restarted, and ids already yielded are skipped.

A retried ``delete`` whose first attempt did remove the object reports ``False``.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from ..core.ids import ObjectId
from ..errors import InvalidInputError, TransientRemoteError
from .base import ObjectStore, ReflogEntry, RefStore

__all__ = ["RetryPolicy", "RetryingObjectStore", "RetryingRefStore"]

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to retry: attempts, backoff base and cap, and a total time budget (seconds)."""

    max_attempts: int = 6
    base_delay: float = 0.2
    max_delay: float = 15.0
    max_elapsed: float = 60.0

    def __post_init__(self) -> None:
        if (
            self.max_attempts < 1
            or self.base_delay < 0
            or self.max_delay < 0
            or self.max_elapsed < 0
        ):
            raise InvalidInputError("retry policy values must be positive (max_attempts >= 1)")

    def backoff(self, retry: int, rng: Callable[[], float] = random.random) -> float:
        """The full-jitter wait before retry number ``retry`` (0-based)."""
        return rng() * min(self.max_delay, self.base_delay * (2.0**retry))


class _Retrier:
    def __init__(
        self,
        policy: RetryPolicy | None,
        sleep: Callable[[float], Awaitable[object]],
        clock: Callable[[], float],
        rng: Callable[[], float],
    ) -> None:
        self.policy = policy or RetryPolicy()
        self._sleep = sleep
        self._clock = clock
        self._rng = rng

    async def wait_or_raise(
        self, exc: TransientRemoteError, retry: int, start: float, what: str
    ) -> None:
        """Sleep before retry ``retry`` (0-based), or re-raise ``exc`` when out of budget."""
        p = self.policy
        if retry + 1 >= p.max_attempts:
            raise exc
        delay = p.backoff(retry, self._rng)
        if exc.retry_after is not None:
            delay = max(delay, exc.retry_after)
        if self._clock() - start + delay > p.max_elapsed:
            raise exc
        log.debug("%s: transient failure (%s); retry %d in %.3f s", what, exc, retry + 1, delay)
        await self._sleep(delay)

    async def call(self, fn: Callable[[], Awaitable[T]], what: str) -> T:
        start = self._clock()
        retry = 0
        while True:
            try:
                return await fn()
            except TransientRemoteError as exc:
                await self.wait_or_raise(exc, retry, start, what)
                retry += 1


class RetryingObjectStore(ObjectStore):
    """``inner`` with transient failures retried (see the module docstring)."""

    def __init__(
        self,
        inner: ObjectStore,
        policy: RetryPolicy | None = None,
        *,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self._inner = inner
        self._r = _Retrier(policy, sleep, clock, rng)

    @property
    def inner(self) -> ObjectStore:
        return self._inner

    async def call(self, fn: Callable[[], Awaitable[T]], what: str = "call") -> T:
        """Run ``fn()`` under this wrapper's policy (for methods beyond the contract, such as
        ``BlobObjectStore.upload_pack``): ``await store.call(lambda: blobs.upload_pack(f))``."""
        return await self._r.call(fn, what)

    def __repr__(self) -> str:
        return f"RetryingObjectStore({self._inner!r})"

    async def get(self, oid: ObjectId) -> bytes | None:
        return await self._r.call(lambda: self._inner.get(oid), "get")

    async def put(self, oid: ObjectId, data: bytes) -> None:
        await self._r.call(lambda: self._inner.put(oid, data), "put")

    async def put_many(self, items: Iterable[tuple[ObjectId, bytes]]) -> None:
        frozen = list(items)  # a retry must see the same items again
        await self._r.call(lambda: self._inner.put_many(frozen), "put_many")

    async def has(self, oid: ObjectId) -> bool:
        return await self._r.call(lambda: self._inner.has(oid), "has")

    async def has_many(self, oids: Iterable[ObjectId]) -> set[ObjectId]:
        frozen = list(oids)
        return await self._r.call(lambda: self._inner.has_many(frozen), "has_many")

    async def delete(self, oid: ObjectId) -> bool:
        return await self._r.call(lambda: self._inner.delete(oid), "delete")

    async def list(self) -> AsyncIterator[ObjectId]:
        seen: set[ObjectId] = set()
        start = self._r._clock()
        retry = 0
        while True:
            try:
                async for oid in self._inner.list():
                    if oid not in seen:
                        seen.add(oid)
                        yield oid
                return
            except TransientRemoteError as exc:
                await self._r.wait_or_raise(exc, retry, start, "list")
                retry += 1

    async def close(self) -> None:
        await self._inner.close()


class RetryingRefStore(RefStore):
    """``inner`` with transient failures retried (see the module docstring)."""

    def __init__(
        self,
        inner: RefStore,
        policy: RetryPolicy | None = None,
        *,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self._inner = inner
        self._r = _Retrier(policy, sleep, clock, rng)

    @property
    def inner(self) -> RefStore:
        return self._inner

    async def call(self, fn: Callable[[], Awaitable[T]], what: str = "call") -> T:
        """Run ``fn()`` under this wrapper's policy (see :meth:`RetryingObjectStore.call`)."""
        return await self._r.call(fn, what)

    def __repr__(self) -> str:
        return f"RetryingRefStore({self._inner!r})"

    async def get(self, name: str) -> ObjectId | None:
        return await self._r.call(lambda: self._inner.get(name), "get ref")

    async def set_if_equals(
        self, name: str, old: ObjectId | None, new: ObjectId | None, reason: str = ""
    ) -> bool:
        start = self._r._clock()
        retry = 0
        uncertain = False  # an earlier attempt may have been applied unseen
        while True:
            try:
                if await self._inner.set_if_equals(name, old, new, reason):
                    return True
                if not uncertain:
                    return False
                return await self._inner.get(name) == new
            except TransientRemoteError as exc:
                uncertain = True
                await self._r.wait_or_raise(exc, retry, start, f"update ref {name}")
                retry += 1

    async def list(self, prefix: str = "") -> AsyncIterator[tuple[str, ObjectId]]:
        rows = await self._r.call(lambda: _collect(self._inner.list(prefix)), "list refs")
        for row in rows:
            yield row

    async def reflog(self, name: str) -> builtins.list[ReflogEntry]:
        return await self._r.call(lambda: self._inner.reflog(name), "reflog")

    async def logged_refs(self) -> builtins.list[str]:
        return await self._r.call(lambda: self._inner.logged_refs(), "logged refs")

    async def close(self) -> None:
        await self._inner.close()


async def _collect(it: AsyncIterator[T]) -> list[T]:
    return [x async for x in it]
