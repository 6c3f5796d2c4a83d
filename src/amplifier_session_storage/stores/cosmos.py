"""Cosmos DB stores (refs, index, catalog, objects) and the one-call remote opener.

The pieces live in ``cosmos_common`` (partitions, ids, the container and its indexing
policy), ``cosmos_refs``, ``cosmos_index`` and ``cosmos_objects``; this module re-exports
them. docs/remote.md specifies the documents, partitions and blob layout.

Importing this module imports no Azure SDK: the SDK is loaded when a client is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..compat.config import StorageConfig
from .azure_auth import AzureClients
from .blob import BlobObjectStore
from .cosmos_common import (
    INDEXING_POLICY,
    MAX_DOC_BYTES,
    ensure_container,
    get_container,
    objects_partition,
    packs_partition,
    ref_partition,
    refs_partition,
    session_partition,
    sessions_partition,
    user_key,
)
from .cosmos_index import CosmosCatalogStore, CosmosIndex, Location, Page
from .cosmos_objects import CosmosObjectStore
from .cosmos_refs import CosmosRefStore
from .visibility import Access, Reader, can_read

if TYPE_CHECKING:
    from azure.cosmos.aio import ContainerProxy

__all__ = [
    "INDEXING_POLICY",
    "MAX_DOC_BYTES",
    "Access",
    "CosmosCatalogStore",
    "CosmosIndex",
    "CosmosObjectStore",
    "CosmosRefStore",
    "CosmosRemote",
    "Location",
    "Page",
    "Reader",
    "can_read",
    "ensure_container",
    "get_container",
    "objects_partition",
    "open_remote",
    "packs_partition",
    "ref_partition",
    "refs_partition",
    "session_partition",
    "sessions_partition",
]


@dataclass
class CosmosRemote:
    """One user's stores on a remote: Cosmos DB container + Blob container."""

    user_id: str
    container: ContainerProxy
    index: CosmosIndex
    refs: CosmosRefStore
    catalog: CosmosCatalogStore
    blobs: BlobObjectStore
    objects: CosmosObjectStore
    clients: AzureClients | None = None

    async def close(self) -> None:
        """Close the clients when this remote owns them."""
        if self.clients is not None:
            await self.clients.close()


async def open_remote(
    config: StorageConfig,
    clients: AzureClients,
    *,
    create: bool = False,
    blob_prefix: str | None = None,
    owns_clients: bool = False,
) -> CosmosRemote:
    """The stores of ``config.user_id`` on the configured remote.

    ``create`` makes the database, container and Blob container first (``remote init``;
    idempotent). Blob names are prefixed ``users/<user_id>/`` unless ``blob_prefix`` says
    otherwise.
    """
    user = config.user_id
    user_key(user)
    try:
        client = clients.cosmos()
        if create:
            container = await ensure_container(config, client)
        else:
            container = get_container(config, client)
        blobs = BlobObjectStore(
            clients.blob_container(),
            prefix=f"users/{user}/" if blob_prefix is None else blob_prefix,
        )
        if create:
            await blobs.ensure_container()
    except BaseException:
        if owns_clients:
            await clients.close()
        raise
    path = config.cosmos_partition_key_path
    index = CosmosIndex(container, partition_key_path=path)
    return CosmosRemote(
        user_id=user,
        container=container,
        index=index,
        refs=CosmosRefStore(container, user, partition_key_path=path),
        catalog=CosmosCatalogStore(index, user),
        blobs=blobs,
        objects=CosmosObjectStore(index, blobs, user),
        clients=clients if owns_clients else None,
    )
