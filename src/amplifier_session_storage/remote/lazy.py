"""Lazy fetch: payload chunks and links come from a "promisor" remote on first read.

``fetch --lazy`` / ``clone --lazy`` download blocks only and record the remote in
``<root>/promisors.json``::

    {"format": "amplifier-promisors/1", "remotes": ["origin"]}

A repository with promisors is opened with :func:`open_repository`, which wraps its object
store in a :class:`PromisorObjectStore`: a local miss is fetched from the promisor remotes
(in order), verified (``unframe``: the bytes must hash to the id; a mismatch is retried once,
then an ``IntegrityError``), stored locally, and returned. ``has``/``list`` answer for the
local objects only, so fsck can tell a *promised* object (named by a block, absent locally)
from a missing one (see ``promises_objects``).
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path

from ..core.codec import unframe
from ..core.ids import ObjectId, validate_name
from ..errors import ConfigurationError, IntegrityError, InvalidInputError
from ..repository.repo import Repository
from ..stores.base import ObjectStore
from .session import SyncRemote

__all__ = [
    "PROMISORS_FILE",
    "PromisorObjectStore",
    "add_promisor",
    "load_promisors",
    "open_repository",
    "remove_promisor",
    "wrap_promisors",
]

PROMISORS_FILE = "promisors.json"
FORMAT = "amplifier-promisors/1"

Opener = Callable[[], Awaitable[ObjectStore]]


def load_promisors(root: Path | str) -> list[str]:
    """The promisor remotes of the repository at ``root`` (in the order they were added)."""
    path = Path(root).expanduser() / PROMISORS_FILE
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        return []
    except ValueError as exc:
        raise ConfigurationError(f"{path} is not valid JSON: {exc}") from exc
    names = doc.get("remotes") if isinstance(doc, dict) and doc.get("format") == FORMAT else None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ConfigurationError(f"{path} is not a promisors file ({FORMAT})")
    return [validate_name(n, "remote name") for n in names]


def _save(root: Path | str, names: Sequence[str]) -> None:
    path = Path(root).expanduser() / PROMISORS_FILE
    if not names:
        path.unlink(missing_ok=True)
        return
    tmp = path.with_name(f".{PROMISORS_FILE}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"format": FORMAT, "remotes": list(names)}, indent=2) + "\n")
    os.replace(tmp, path)


def add_promisor(root: Path | str, name: str) -> None:
    """Record ``name`` as a remote that promises the objects not fetched (idempotent)."""
    names = load_promisors(root)
    if validate_name(name, "remote name") not in names:
        _save(root, [*names, name])


def remove_promisor(root: Path | str, name: str) -> None:
    _save(root, [n for n in load_promisors(root) if n != name])


class PromisorObjectStore(ObjectStore):
    """Local objects, with misses fetched from promisor remotes (see the module docstring)."""

    promises_objects = True  # fsck: a block's absent chunk or link is promised, not missing

    def __init__(self, local: ObjectStore, promisors: Sequence[Opener]) -> None:
        self.local = local
        self._openers = list(promisors)
        self._remotes: list[ObjectStore | None] = [None] * len(self._openers)
        self.fetched = 0
        self.fetched_bytes = 0

    def __repr__(self) -> str:
        return f"PromisorObjectStore({self.local!r}, promisors={len(self._openers)})"

    async def _remote(self, i: int) -> ObjectStore:
        store = self._remotes[i]
        if store is None:
            store = self._remotes[i] = await self._openers[i]()
        return store

    async def get(self, oid: ObjectId) -> bytes | None:
        data = await self.local.get(oid)
        if data is not None:
            return data
        oid = ObjectId(oid)
        for i in range(len(self._openers)):
            remote = await self._remote(i)
            data = await remote.get(oid)
            if data is None:
                continue
            try:
                unframe(oid, data)
            except IntegrityError:
                data = await remote.get(oid)  # once more: a torn read is not corruption
                if data is None:
                    continue
                unframe(oid, data)
            await self.local.put(oid, data)
            self.fetched += 1
            self.fetched_bytes += len(data)
            return data
        return None

    async def put(self, oid: ObjectId, data: bytes) -> None:
        await self.local.put(oid, data)

    async def put_many(self, items: Iterable[tuple[ObjectId, bytes]]) -> None:
        await self.local.put_many(items)

    async def has(self, oid: ObjectId) -> bool:
        return await self.local.has(oid)

    async def has_many(self, oids: Iterable[ObjectId]) -> set[ObjectId]:
        return await self.local.has_many(oids)

    async def delete(self, oid: ObjectId) -> bool:
        return await self.local.delete(oid)

    def write_guard(self) -> AbstractAsyncContextManager[None]:
        return self.local.write_guard()  # gc sweeps the local store only

    def sweep_guard(self, timeout: float | None = 600.0) -> AbstractAsyncContextManager[None]:
        return self.local.sweep_guard(timeout)

    async def list(self) -> AsyncIterator[ObjectId]:
        async for oid in self.local.list():
            yield oid

    async def close(self) -> None:
        try:
            await self.local.close()
        finally:
            for store in self._remotes:
                if store is not None:
                    await store.close()
            self._remotes = [None] * len(self._openers)


class _RemoteObjects(ObjectStore):
    """A promisor's retrying object store that also closes its remote."""

    def __init__(self, remote: SyncRemote) -> None:
        self.remote = remote

    async def get(self, oid: ObjectId) -> bytes | None:
        return await self.remote.objects.get(oid)

    async def put(self, oid: ObjectId, data: bytes) -> None:
        raise InvalidInputError("a promisor remote is read-only here")

    async def has(self, oid: ObjectId) -> bool:
        return await self.remote.objects.has(oid)

    async def delete(self, oid: ObjectId) -> bool:
        return False

    async def list(self) -> AsyncIterator[ObjectId]:
        async for oid in self.remote.objects.list():
            yield oid

    async def close(self) -> None:
        await self.remote.close()


def promisor_opener(root: Path | str, name: str) -> Opener:
    """Opens remote ``name`` of the repository at ``root`` on first use."""

    async def open_() -> ObjectStore:
        from .config import get_remote
        from .session import open_remote_from

        return _RemoteObjects(await open_remote_from(get_remote(root, name)))

    return open_


def wrap_promisors(repo: Repository, root: Path | str) -> Repository:
    """``repo`` (opened at ``root``) with its objects fetched from the promisors on a miss,
    when ``root`` has any; nothing touches the network until an object is missing."""
    names = load_promisors(root)
    if names and not isinstance(repo.objects, PromisorObjectStore):
        repo.objects = PromisorObjectStore(repo.objects, [promisor_opener(root, n) for n in names])
    return repo


async def open_repository(
    root: Path | str, *, user_id: str = "", fsync: bool = True, create: bool = False
) -> Repository:
    """The local repository at ``root``; with promisors, its objects fetch on a miss."""
    from ..repository.local import open_local

    repo = await open_local(root, user_id=user_id, fsync=fsync, create=create)
    return wrap_promisors(repo, root)
