"""Helpers for the Azure tests: per-test containers on the emulators, and raw access.

Every test gets fresh Cosmos DB and Blob container names (``unique()``), created through
the code under test (``open_remote(create=True)``) and deleted afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from amplifier_session_storage.compat.config import CosmosAuthMethod, StorageConfig
from amplifier_session_storage.stores.azure_auth import AzureClients
from amplifier_session_storage.stores.blob import BlobObjectStore
from amplifier_session_storage.stores.cosmos import CosmosRemote, open_remote

T = TypeVar("T")

DATABASE = "amp-azure-tests"


def unique(prefix: str = "t") -> str:
    """A fresh name valid for both Blob containers and Cosmos DB containers."""
    return f"{prefix}{uuid.uuid4().hex[:20]}"


def make_config(emu: Any, *, user_id: str = "u1", **overrides: Any) -> StorageConfig:
    """A key-auth configuration for the emulators with fresh container names."""
    values: dict[str, Any] = {
        "user_id": user_id,
        "cosmos_endpoint": emu.cosmos_endpoint,
        "cosmos_auth_method": CosmosAuthMethod.KEY,
        "cosmos_key": emu.cosmos_key,
        "cosmos_database": DATABASE,
        "cosmos_container": unique("c"),
        "blob_connection_string": emu.blob_connection_string,
        "blob_container": unique("b"),
    }
    values.update(overrides)
    return StorageConfig(**values)


def make_clients(config: StorageConfig) -> AzureClients:
    # The emulator's certificate is self-signed.
    return AzureClients(config, cosmos_options={"connection_verify": False})


def run_in_thread(fn: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine on a private event loop in another thread (for sync test hooks)."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(fn())  # type: ignore[arg-type]
        except BaseException as exc:
            box["error"] = exc

    t = threading.Thread(target=target)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


def modify_blob(emu: Any, container: str, blob: str, change: Callable[[bytes], bytes]) -> None:
    """Rewrite one blob with ``change(old bytes)``, bypassing every store."""
    from azure.storage.blob.aio import BlobServiceClient

    async def go() -> None:
        async with BlobServiceClient.from_connection_string(emu.blob_connection_string) as svc:
            bc = svc.get_blob_client(container, blob)
            data = await (await bc.download_blob()).readall()
            await bc.upload_blob(change(data), overwrite=True)

    run_in_thread(go)


def read_cosmos_doc(
    emu: Any, config: StorageConfig, item_id: str, partition: str
) -> dict[str, Any]:
    """One document, read with a private client (for sync test hooks)."""
    from azure.cosmos.aio import CosmosClient

    async def go() -> dict[str, Any]:
        async with CosmosClient(emu.cosmos_endpoint, emu.cosmos_key, connection_verify=False) as c:
            ctr = c.get_database_client(config.cosmos_database).get_container_client(
                config.cosmos_container
            )
            doc: dict[str, Any] = await ctr.read_item(item_id, partition_key=partition)
            return doc

    return run_in_thread(go)


def locate_remote_object(config: StorageConfig, oid: Any) -> tuple[str, int]:
    """``(pack, frame offset)`` of an object as the remote records it (object document, or
    pack document + the pack's idx), read with private clients (for sync test hooks)."""

    async def go() -> tuple[str, int]:
        async with make_clients(config) as clients:
            remote = await open_remote(config, clients)
            loc = await remote.objects.locate(oid)
            assert loc is not None, f"{oid} is not recorded"
            return loc.pack, loc.offset

    return run_in_thread(go)


class AzureResources:
    """Creates remotes and stores for one test and deletes their containers afterwards."""

    def __init__(self, emu: Any) -> None:
        self.emu = emu
        self._clients: list[AzureClients] = []
        self._configs: list[StorageConfig] = []

    def config(self, **overrides: Any) -> StorageConfig:
        return make_config(self.emu, **overrides)

    def clients(self, config: StorageConfig) -> AzureClients:
        clients = make_clients(config)
        self._clients.append(clients)
        self._configs.append(config)
        return clients

    async def remote(self, config: StorageConfig | None = None, **overrides: Any) -> CosmosRemote:
        """``open_remote(create=True)`` on fresh containers (or on ``config``'s)."""
        config = config or self.config(**overrides)
        return await open_remote(config, self.clients(config), create=True)

    async def blob_store(self, prefix: str = "", container: str | None = None) -> BlobObjectStore:
        config = self.config(**({"blob_container": container} if container else {}))
        clients = self.clients(config)
        store = BlobObjectStore(clients.blob_container(), prefix=prefix)
        await store.ensure_container()
        return store

    async def cleanup(self) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        for clients in self._clients:
            await clients.close()
        seen: set[tuple[str, str]] = set()
        for config in self._configs:
            key = (config.cosmos_container, config.blob_container)
            if key in seen:
                continue
            seen.add(key)
            async with make_clients(config) as admin:
                db = admin.cosmos().get_database_client(config.cosmos_database)
                with contextlib.suppress(ResourceNotFoundError):
                    await db.delete_container(config.cosmos_container)
                with contextlib.suppress(ResourceNotFoundError):
                    await admin.blob_service().delete_container(config.blob_container)
