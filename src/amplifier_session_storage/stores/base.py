"""The two small storage contracts every backend implements.

* :class:`ObjectStore` keeps **frames** (see ``core.codec``) by :class:`ObjectId`. It moves
  bytes and knows nothing else: verification happens when a reader unframes (``core.codec.
  unframe``), so a backend can never silently hand back edited bytes.
* :class:`RefStore` keeps named pointers (``sessions/<id>``) whose only update is a
  compare-and-swap, and a reflog per ref so every move can be undone.

Implementations: memory and local disk here; Azure Blob (objects) and Cosmos DB (refs and the
index) in ``stores.blob`` / ``stores.cosmos``; cross-cutting behaviour (retries) is a wrapper
that implements the same contract.
"""

from __future__ import annotations

import abc
import builtins
import contextlib
from collections.abc import AsyncIterator, Iterable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

from ..core.ids import ObjectId
from ..errors import InvalidInputError

__all__ = ["ObjectStore", "RefStore", "ReflogEntry", "keep_after"]


class ObjectStore(abc.ABC):
    """Content-addressed frames. ``put`` of an id already present is a no-op (idempotent)."""

    @abc.abstractmethod
    async def get(self, oid: ObjectId) -> bytes | None:
        """The stored frame, or ``None`` if the object is absent."""

    @abc.abstractmethod
    async def put(self, oid: ObjectId, data: bytes) -> None:
        """Store one frame durably before returning (unless inside :meth:`batch`)."""

    async def put_many(self, items: Iterable[tuple[ObjectId, bytes]]) -> None:
        """Store many frames with one durability point (a pack, one fsync, one upload)."""
        for oid, data in items:
            await self.put(oid, data)

    @abc.abstractmethod
    async def has(self, oid: ObjectId) -> bool:
        """Whether the object is present."""

    async def has_many(self, oids: Iterable[ObjectId]) -> set[ObjectId]:
        """The subset of ``oids`` that is present."""
        return {o for o in oids if await self.has(o)}

    @abc.abstractmethod
    async def delete(self, oid: ObjectId) -> bool:
        """Remove an object; ``True`` if it was there."""

    @abc.abstractmethod
    def list(self) -> AsyncIterator[ObjectId]:
        """Every object id in the store (any order)."""

    def write_guard(self) -> AbstractAsyncContextManager[None]:
        """Held by a writer from its first object write or presence check to its ref move,
        so a gc sweep of this store never deletes an object it is about to name (see
        ``stores.guard``). No-op for stores without a local sweep (memory, Azure)."""
        return _null_guard()

    def sweep_guard(self, timeout: float | None = 600.0) -> AbstractAsyncContextManager[None]:
        """Held by gc while it recomputes reachability and deletes: waits for writers."""
        return _null_guard()

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources; the store is unusable afterwards."""

    async def __aenter__(self) -> ObjectStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


@contextlib.asynccontextmanager
async def _null_guard() -> AsyncIterator[None]:
    yield


@dataclass(frozen=True, slots=True)
class ReflogEntry:
    """One move of a ref: from ``old`` to ``new`` at ``time_ns`` because of ``reason``."""

    old: ObjectId | None
    new: ObjectId | None
    time_ns: int
    reason: str


class RefStore(abc.ABC):
    """Named pointers with compare-and-swap updates and a reflog."""

    @abc.abstractmethod
    async def get(self, name: str) -> ObjectId | None:
        """The ref's value, or ``None`` if it does not exist."""

    @abc.abstractmethod
    async def set_if_equals(
        self, name: str, old: ObjectId | None, new: ObjectId | None, reason: str = ""
    ) -> bool:
        """Atomically set ``name`` to ``new`` iff it currently equals ``old``.

        ``old=None`` means "must not exist" (create); ``new=None`` deletes the ref. Returns
        ``False`` (and changes nothing) when the current value differs. Every successful
        update appends a :class:`ReflogEntry`.
        """

    @abc.abstractmethod
    def list(self, prefix: str = "") -> AsyncIterator[tuple[str, ObjectId]]:
        """Every ref whose name starts with ``prefix`` with its value."""

    @abc.abstractmethod
    async def reflog(self, name: str) -> builtins.list[ReflogEntry]:
        """The ref's moves, oldest first (kept after the ref is deleted)."""

    async def logged_refs(self) -> builtins.list[str]:
        """Every ref name that has a reflog, including refs deleted since (gc roots)."""
        raise NotImplementedError(f"{type(self).__name__} cannot list its reflogs")

    async def expire_reflog(self, name: str, before_ns: int) -> int:
        """Drop the ref's reflog entries older than ``before_ns`` (the entry that set a live
        ref's current value is kept); return how many were dropped. What only those entries
        kept reachable becomes garbage for gc. Stores that cannot rewrite their reflogs
        raise :class:`InvalidInputError`."""
        raise InvalidInputError(f"{type(self).__name__} cannot expire reflog entries")

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources."""

    async def __aenter__(self) -> RefStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def keep_after(
    entries: builtins.list[ReflogEntry], before_ns: int, live: bool
) -> builtins.list[ReflogEntry]:
    """The entries :meth:`RefStore.expire_reflog` keeps: those at or after ``before_ns``,
    and for a live ref at least its last one (the move to its current value)."""
    kept = [e for e in entries if e.time_ns >= before_ns]
    if live and entries and (not kept or kept[-1] is not entries[-1]):
        kept.append(entries[-1])
    return kept
