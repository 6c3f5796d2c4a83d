"""The shared conformance suites against Blob (azurite) and Cosmos DB (patched emulator).

Each test runs on fresh containers (see azure_support). The corruption hooks rewrite the
pack blob directly, bypassing the stores.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from azure_support import AzureResources, locate_remote_object, modify_blob

from amplifier_session_storage.compat.config import StorageConfig
from amplifier_session_storage.core.ids import ObjectId
from amplifier_session_storage.stores.base import ObjectStore, RefStore
from amplifier_session_storage.stores.blob import BlobObjectStore
from amplifier_session_storage.stores.cosmos import CosmosObjectStore
from amplifier_session_storage.stores.memory import MemoryObjectStore
from amplifier_session_storage.stores.retry import RetryingObjectStore, RetryingRefStore
from conformance.object_store_suite import ObjectStoreSuite
from conformance.ref_store_suite import RefStoreSuite

pytestmark = pytest.mark.emulators


def _flip(offset: int) -> Any:
    def change(data: bytes) -> bytes:
        out = bytearray(data)
        out[offset] ^= 0xFF
        return bytes(out)

    return change


class _AzureSuiteBase:
    res: AzureResources
    config: StorageConfig

    @pytest.fixture(autouse=True)
    def _azure(self, azure: AzureResources) -> None:
        self.res = azure
        self.config = azure.config()


# ---------------------------------------------------------------------- Blob
class TestBlobObjectStore(_AzureSuiteBase, ObjectStoreSuite):
    persistent = True
    prefix = ""

    async def make_store(self, tmp_path: Path) -> ObjectStore:
        store = BlobObjectStore(self.res.clients(self.config).blob_container(), prefix=self.prefix)
        await store.ensure_container()
        return store

    async def reopen(self, store: ObjectStore, tmp_path: Path) -> ObjectStore:
        await store.close()
        return await self.make_store(tmp_path)

    def _where(self, store: ObjectStore, oid: ObjectId) -> tuple[str, int, int]:
        assert isinstance(store, BlobObjectStore)
        loc = store._lookup(oid)
        assert loc is not None
        return loc

    def corrupt(self, store: ObjectStore, oid: ObjectId, offset: int) -> None:
        assert isinstance(store, BlobObjectStore)
        pack, off, _ = self._where(store, oid)
        modify_blob(
            self.res.emu, self.config.blob_container, store.pack_blob(pack), _flip(off + offset)
        )

    def truncate(self, store: ObjectStore, oid: ObjectId, length: int) -> None:
        assert isinstance(store, BlobObjectStore)
        pack, off, _ = self._where(store, oid)
        modify_blob(
            self.res.emu,
            self.config.blob_container,
            store.pack_blob(pack),
            lambda data: data[: off + length],
        )


class TestPrefixedBlobObjectStore(TestBlobObjectStore):
    prefix = "users/u1/"


# ---------------------------------------------------------------------- Cosmos objects
class TestCosmosObjectStore(_AzureSuiteBase, ObjectStoreSuite):
    persistent = True

    async def make_store(self, tmp_path: Path) -> ObjectStore:
        remote = await self.res.remote(self.config)
        return remote.objects

    async def reopen(self, store: ObjectStore, tmp_path: Path) -> ObjectStore:
        await store.close()
        return await self.make_store(tmp_path)

    def _where(self, store: ObjectStore, oid: ObjectId) -> tuple[BlobObjectStore, str, int]:
        assert isinstance(store, CosmosObjectStore)
        pack, offset = locate_remote_object(self.config, oid)
        return store.blobs, pack, offset

    def corrupt(self, store: ObjectStore, oid: ObjectId, offset: int) -> None:
        blobs, pack, off = self._where(store, oid)
        modify_blob(
            self.res.emu, self.config.blob_container, blobs.pack_blob(pack), _flip(off + offset)
        )

    def truncate(self, store: ObjectStore, oid: ObjectId, length: int) -> None:
        blobs, pack, off = self._where(store, oid)
        modify_blob(
            self.res.emu,
            self.config.blob_container,
            blobs.pack_blob(pack),
            lambda data: data[: off + length],
        )


# ---------------------------------------------------------------------- Cosmos refs
class TestCosmosRefStore(_AzureSuiteBase, RefStoreSuite):
    persistent = True

    async def make_store(self, tmp_path: Path) -> RefStore:
        remote = await self.res.remote(self.config)
        return remote.refs

    async def reopen(self, store: RefStore, tmp_path: Path) -> RefStore:
        await store.close()
        return await self.make_store(tmp_path)


# ---------------------------------------------------------------------- retry wrappers
class TestRetryingCosmosRefStore(TestCosmosRefStore):
    async def make_store(self, tmp_path: Path) -> RefStore:
        return RetryingRefStore(await super().make_store(tmp_path))


class TestRetryingMemoryObjectStore(ObjectStoreSuite):
    """The wrapper passes the suite unchanged (no network: over the memory store)."""

    async def make_store(self, tmp_path: Path) -> ObjectStore:
        return RetryingObjectStore(MemoryObjectStore())

    def _raw(self, store: ObjectStore) -> MemoryObjectStore:
        assert isinstance(store, RetryingObjectStore)
        inner = store.inner
        assert isinstance(inner, MemoryObjectStore)
        return inner

    def corrupt(self, store: ObjectStore, oid: ObjectId, offset: int) -> None:
        mem = self._raw(store)
        data = bytearray(mem._objects[oid])
        data[offset] ^= 0xFF
        mem.raw_set(oid, bytes(data))

    def truncate(self, store: ObjectStore, oid: ObjectId, length: int) -> None:
        mem = self._raw(store)
        mem.raw_set(oid, mem._objects[oid][:length])
