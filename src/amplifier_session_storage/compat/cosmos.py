"""CosmosBlockStorage: the seed's BlockStorage served from the remote directly.

The repository runs on the remote stores of ``config.user_id`` (objects: Cosmos DB
locations over Blob packs; refs: Cosmos DB documents with etag compare-and-swap; catalog:
Cosmos DB session documents), every call under the retry policy. Besides the repository's
own writes, ``write_blocks`` indexes the committed blocks (block documents in the session's
partition, as ``push`` writes them), so the session can be fetched and listed like a pushed
one; ``read_blocks`` first downloads the session's blocks and chunks with a few ranged
reads (block index, then locations) instead of two requests per object.

Authentication follows ``config.cosmos_auth_method`` (see ``stores.azure_auth``); with
``blob_account_url`` and key authentication the Blob account key is read from
``AMPLIFIER_BLOB_ACCOUNT_KEY`` unless given. ``connection_verify=False`` (self-signed
emulator certificates) is accepted for 127.0.0.1 / localhost endpoints only.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from ..core.codec import unframe
from ..core.ids import ObjectId, validate_session_id
from ..core.objects import Block, decode_block
from ..remote.common import access_of, download, locate
from ..repository.repo import Repository
from ..stores.base import ObjectStore
from ..stores.catalog import CatalogStore
from ..stores.cosmos_index import Location
from .config import StorageConfig
from .storage import RepositoryBlockStorage

if TYPE_CHECKING:
    from ..remote.session import SyncRemote
    from ..stores.retry import RetryPolicy

__all__ = ["CosmosBlockStorage"]

PREFETCH_MAX = 200_000


class _RetryingCatalog(CatalogStore):
    """The remote's session documents, every call under the remote's retry policy."""

    def __init__(self, remote: SyncRemote) -> None:
        self._remote = remote
        self._inner = remote.stores.catalog

    async def get(self, session_id: str) -> dict[str, Any] | None:
        return await self._remote.call(lambda: self._inner.get(session_id), "read summary")

    async def put(self, session_id: str, doc: dict[str, Any]) -> None:
        await self._remote.call(lambda: self._inner.put(session_id, doc), "write summary")

    async def delete(self, session_id: str) -> None:
        await self._remote.call(lambda: self._inner.delete(session_id), "delete summary")

    async def list(self) -> AsyncIterator[dict[str, Any]]:
        async def collect() -> list[dict[str, Any]]:
            return [d async for d in self._inner.list()]

        for doc in await self._remote.call(collect, "list summaries"):
            yield doc


class _Prefetched(ObjectStore):
    """The remote object store, with frames downloaded ahead by ``read_blocks`` served first."""

    def __init__(self, inner: ObjectStore) -> None:
        self.inner = inner
        self.frames: dict[ObjectId, bytes] = {}

    async def get(self, oid: ObjectId) -> bytes | None:
        data = self.frames.get(oid)
        return data if data is not None else await self.inner.get(oid)

    async def put(self, oid: ObjectId, data: bytes) -> None:
        await self.inner.put(oid, data)

    async def put_many(self, items: Iterable[tuple[ObjectId, bytes]]) -> None:
        await self.inner.put_many(items)

    async def has(self, oid: ObjectId) -> bool:
        return oid in self.frames or await self.inner.has(oid)

    async def has_many(self, oids: Iterable[ObjectId]) -> set[ObjectId]:
        return await self.inner.has_many(oids)

    async def delete(self, oid: ObjectId) -> bool:
        self.frames.pop(oid, None)
        return await self.inner.delete(oid)

    async def list(self) -> AsyncIterator[ObjectId]:
        async for oid in self.inner.list():
            yield oid

    async def close(self) -> None:
        self.frames.clear()
        await self.inner.close()


class CosmosBlockStorage(RepositoryBlockStorage):
    """Sessions stored directly on the remote of ``config`` (see the module docstring)."""

    def __init__(
        self,
        config: StorageConfig,
        *,
        blob_account_key: str | None = None,
        connection_verify: bool = True,
        create: bool = True,
        policy: RetryPolicy | None = None,
    ) -> None:
        super().__init__(config)
        self._account_key = blob_account_key
        self._insecure = not connection_verify
        self._create = create
        self._policy = policy
        self._remote: SyncRemote | None = None
        self._objects: _Prefetched | None = None

    async def _open(self) -> Repository:
        from ..remote.session import open_remote_config

        key = self._account_key
        if key is None and self.config.blob_account_url:
            key = os.environ.get("AMPLIFIER_BLOB_ACCOUNT_KEY") or None
        remote = await open_remote_config(
            self.config,
            name="cosmos",
            blob_account_key=key,
            insecure_tls=self._insecure,
            create=self._create,
            policy=self._policy,
        )
        self._remote = remote
        self._objects = _Prefetched(remote.objects)
        return Repository(
            self._objects,
            remote.refs,
            _RetryingCatalog(remote),
            user_id=self.config.user_id,
            device_id=self.config.device_id or "",
        )

    async def remote(self) -> SyncRemote:
        """The open remote (for sync tools and tests)."""
        await self.repository()
        assert self._remote is not None
        return self._remote

    async def write_blocks(self, blocks: Sequence[Block]) -> list[Block]:
        committed = await super().write_blocks(blocks)
        remote = await self.remote()
        repo = await self.repository()
        by_session: dict[str, list[Block]] = {}
        for b in committed:
            by_session.setdefault(b.session_id, []).append(b)
        index, user = remote.index, remote.user_id
        for sid, group in by_session.items():
            locs = await remote.call(
                partial(index.locate_many, user, [b.id for b in group]), "locate blocks"
            )
            summary = await repo.catalog.get(sid) if await repo.head(sid) else None
            rows = [(b, locs[b.id]) for b in group if b.id in locs]
            await remote.call(
                partial(index.put_blocks, user, sid, rows, access_of(summary)), "write block index"
            )
        return committed

    async def read_blocks(
        self, session_id: str, since_sequence: int | None = None, limit: int | None = None
    ) -> list[Block]:
        validate_session_id(session_id)
        await self._prefetch(session_id, since_sequence or 0)
        try:
            return await super().read_blocks(session_id, since_sequence, limit)
        finally:
            if self._objects is not None:
                self._objects.frames.clear()

    async def _prefetch(self, session_id: str, since: int) -> None:
        remote = await self.remote()
        assert self._objects is not None
        index, user = remote.index, remote.user_id
        docs = await remote.call(lambda: index.blocks_since(user, session_id, since), "index")
        wanted = {ObjectId.from_hex(str(d["id"])): Location.of(d) for d in docs[:PREFETCH_MAX]}
        if not wanted:
            return
        frames = await download(remote, wanted)
        refs: dict[ObjectId, None] = {}
        for oid, data in frames.items():
            refs.update(dict.fromkeys(decode_block(unframe(oid, data), oid).object_refs()))
        if refs:
            locs = await locate(remote, refs, leaves=True)
            frames.update(await download(remote, locs))
        self._objects.frames.update(frames)

    async def close(self) -> None:
        try:
            await super().close()
        finally:
            if self._remote is not None:
                await self._remote.close()
                self._remote = None
