"""In-memory stores: the reference implementation of both contracts (used in unit tests)."""

from __future__ import annotations

import builtins
import time
from collections.abc import AsyncIterator

from ..core.ids import ObjectId
from ..core.refnames import validate_ref_name
from .base import ObjectStore, ReflogEntry, RefStore, keep_after

__all__ = ["MemoryObjectStore", "MemoryRefStore"]


class MemoryObjectStore(ObjectStore):
    """Frames in a dict."""

    def __init__(self) -> None:
        self._objects: dict[ObjectId, bytes] = {}

    async def get(self, oid: ObjectId) -> bytes | None:
        return self._objects.get(ObjectId(oid))

    async def put(self, oid: ObjectId, data: bytes) -> None:
        self._objects.setdefault(ObjectId(oid), bytes(data))

    async def has(self, oid: ObjectId) -> bool:
        return ObjectId(oid) in self._objects

    async def delete(self, oid: ObjectId) -> bool:
        return self._objects.pop(ObjectId(oid), None) is not None

    async def list(self) -> AsyncIterator[ObjectId]:
        for oid in list(self._objects):
            yield oid

    # test hook: plant corruption without going through the contract
    def raw_set(self, oid: ObjectId, data: bytes) -> None:
        self._objects[ObjectId(oid)] = data


class MemoryRefStore(RefStore):
    """Refs and reflogs in dicts."""

    def __init__(self) -> None:
        self._refs: dict[str, ObjectId] = {}
        self._logs: dict[str, list[ReflogEntry]] = {}

    async def get(self, name: str) -> ObjectId | None:
        return self._refs.get(validate_ref_name(name))

    async def set_if_equals(
        self, name: str, old: ObjectId | None, new: ObjectId | None, reason: str = ""
    ) -> bool:
        validate_ref_name(name)
        if self._refs.get(name) != old:
            return False
        if new is None:
            self._refs.pop(name, None)
        else:
            self._refs[name] = ObjectId(new)
        self._logs.setdefault(name, []).append(ReflogEntry(old, new, time.time_ns(), reason))
        return True

    async def list(self, prefix: str = "") -> AsyncIterator[tuple[str, ObjectId]]:
        for name in sorted(self._refs):
            if name.startswith(prefix):
                yield name, self._refs[name]

    async def reflog(self, name: str) -> builtins.list[ReflogEntry]:
        return list(self._logs.get(validate_ref_name(name), []))

    async def logged_refs(self) -> builtins.list[str]:
        return sorted(self._logs)

    async def expire_reflog(self, name: str, before_ns: int) -> int:
        entries = self._logs.get(validate_ref_name(name), [])
        kept = keep_after(entries, before_ns, name in self._refs)
        if kept:
            self._logs[name] = kept
        else:
            self._logs.pop(name, None)
        return len(entries) - len(kept)
