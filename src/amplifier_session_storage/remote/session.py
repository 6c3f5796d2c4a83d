"""An open remote for the sync engine: the stores of one user, every call under retries.

:class:`SyncRemote` holds the :class:`~..stores.cosmos.CosmosRemote` of a user and
exposes its refs and objects through :class:`~..stores.retry.RetryingRefStore` /
:class:`~..stores.retry.RetryingObjectStore`; calls beyond those contracts (index queries,
pack uploads, range reads) go through :meth:`SyncRemote.call`, under the same
:class:`~..stores.retry.RetryPolicy`. Nothing talks to Azure outside a retry.

Both SDK clients get a :class:`~.transport.CountingTransport` sharing one
:class:`~.transport.TransferStats`, so a push or fetch can report exactly how many requests
and body bytes it cost. The Blob client's own retries are turned off (``retry_total=0``):
its fixed 15-second back-off ignores ``Retry-After``; the outer policy honours it. The
Cosmos DB client keeps its own 429 handling, which reads ``x-ms-retry-after-ms``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from ..compat.config import StorageConfig
from ..errors import ConfigurationError
from ..stores.memory import MemoryObjectStore
from ..stores.retry import RetryingObjectStore, RetryingRefStore, RetryPolicy
from .config import LOCAL_HOSTS, RemoteSpec

if TYPE_CHECKING:
    from ..stores.blob import BlobObjectStore
    from ..stores.cosmos import CosmosRemote
    from ..stores.cosmos_index import CosmosIndex
    from .stats import TransferStats

__all__ = ["DEFAULT_POLICY", "SyncRemote", "open_remote_config", "open_remote_from"]

T = TypeVar("T")
DEFAULT_POLICY = RetryPolicy()


class SyncRemote:
    """One user's stores on a remote, with retries and request counting."""

    def __init__(
        self,
        name: str,
        stores: CosmosRemote,
        stats: TransferStats,
        policy: RetryPolicy | None = None,
        *,
        config: StorageConfig | None = None,
    ) -> None:
        self.name = name
        self.stores = stores
        self.stats = stats
        self.policy = policy or DEFAULT_POLICY
        self.config = config
        self.objects = RetryingObjectStore(stores.objects, self.policy)
        self.refs = RetryingRefStore(stores.refs, self.policy)

    def __repr__(self) -> str:
        return f"SyncRemote(name={self.name!r}, user_id={self.user_id!r})"

    @property
    def user_id(self) -> str:
        return self.stores.user_id

    @property
    def index(self) -> CosmosIndex:
        """The Cosmos DB index (call it through :meth:`call`)."""
        return self.stores.index

    @property
    def blobs(self) -> BlobObjectStore:
        """The Blob pack store (call it through :meth:`call`)."""
        return self.stores.blobs

    async def call(self, fn: Callable[[], Awaitable[T]], what: str = "remote call") -> T:
        """``await fn()`` with transient failures retried (see ``stores.retry``)."""
        return await self.objects.call(fn, what)

    async def close(self) -> None:
        await self.stores.close()

    async def __aenter__(self) -> SyncRemote:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _client_options(
    config: StorageConfig, stats: TransferStats, insecure_tls: bool
) -> tuple[dict[str, Any], dict[str, Any]]:
    from urllib.parse import urlparse

    from .transport import CountingTransport

    if insecure_tls:
        host = (urlparse(config.cosmos_endpoint or "").hostname or "").lower()
        if host not in LOCAL_HOSTS:
            raise ConfigurationError(
                "insecure_tls is only allowed for an emulator on 127.0.0.1 / localhost"
            )
    cosmos: dict[str, Any] = {"transport": CountingTransport(stats)}
    if insecure_tls:
        cosmos["connection_verify"] = False
    blob: dict[str, Any] = {"transport": CountingTransport(stats), "retry_total": 0}
    return cosmos, blob


async def open_remote_config(
    config: StorageConfig,
    *,
    name: str = "origin",
    blob_account_key: str | None = None,
    insecure_tls: bool = False,
    create: bool = False,
    policy: RetryPolicy | None = None,
    cosmos_options: Mapping[str, Any] | None = None,
    blob_options: Mapping[str, Any] | None = None,
) -> SyncRemote:
    """Open the stores of ``config.user_id`` described by ``config``.

    ``create`` makes the database and containers first (``remote init``, idempotent).
    ``cosmos_options`` / ``blob_options`` are extra client keyword arguments.
    """
    from ..stores.azure_auth import AzureClients
    from ..stores.cosmos import open_remote
    from .stats import TransferStats

    stats = TransferStats()
    cosmos, blob = _client_options(config, stats, insecure_tls)
    cosmos.update(cosmos_options or {})
    blob.update(blob_options or {})
    clients = AzureClients(
        config, blob_account_key=blob_account_key, cosmos_options=cosmos, blob_options=blob
    )
    retry = policy or DEFAULT_POLICY
    probe = RetryingObjectStore(MemoryObjectStore(), retry)  # only its call() is used
    try:
        stores = await probe.call(
            lambda: open_remote(config, clients, create=create, owns_clients=False),
            "open remote",
        )
    except BaseException:
        await clients.close()
        raise
    stores.clients = clients  # the SyncRemote owns them from here on
    return SyncRemote(name, stores, stats, retry, config=config)


async def open_remote_from(
    spec: RemoteSpec,
    *,
    environ: Mapping[str, str] | None = None,
    create: bool = False,
    policy: RetryPolicy | None = None,
) -> SyncRemote:
    """Open the remote ``spec`` describes, with secrets taken from ``environ``."""
    config, account_key = spec.storage_config(environ)
    return await open_remote_config(
        config,
        name=spec.name,
        blob_account_key=account_key,
        insecure_tls=spec.insecure_tls,
        create=create,
        policy=policy,
    )
