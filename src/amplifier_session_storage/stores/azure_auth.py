"""Credentials and clients for Cosmos DB and Blob Storage, from a :class:`StorageConfig`.

Cosmos DB, by ``config.cosmos_auth_method``:

==================== ==============================================================
``key``              the account key (``cosmos_key``, base64)
``default_credential`` ``azure.identity.aio.DefaultAzureCredential`` (``azure_client_id``,
                     when set, selects a user-assigned managed identity inside it)
``managed_identity`` ``ManagedIdentityCredential(client_id=azure_client_id)``
                     (system-assigned when ``azure_client_id`` is unset)
``service_principal`` ``ClientSecretCredential(azure_tenant_id, azure_client_id,
                     azure_client_secret)``: all three are required
==================== ==============================================================

Blob Storage: ``blob_connection_string`` (which carries its own key or SAS), or
``blob_account_url`` with an account key (the ``blob_account_key`` argument) or, for the
three token methods, the same token credential as Cosmos DB.

Everything is validated without touching the network (:func:`validate_cosmos_auth`,
:func:`validate_blob_auth`); a bad combination is a :class:`ConfigurationError` that names
the missing or conflicting *fields*, never their values. Every secret is registered with
:func:`~.azure_errors.register_secret` so that no error message can carry it.

:class:`AzureClients` owns the clients and the one token credential they share; closing it
closes all of them (azure-identity's async credentials hold HTTP sessions of their own).
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from ..compat.config import CosmosAuthMethod, StorageConfig
from ..errors import ConfigurationError
from .azure_errors import register_secret

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential
    from azure.cosmos.aio import CosmosClient
    from azure.storage.blob.aio import BlobServiceClient, ContainerClient

__all__ = [
    "AzureClients",
    "make_token_credential",
    "validate_blob_auth",
    "validate_cosmos_auth",
]

TOKEN_METHODS = frozenset(
    {
        CosmosAuthMethod.DEFAULT_CREDENTIAL,
        CosmosAuthMethod.MANAGED_IDENTITY,
        CosmosAuthMethod.SERVICE_PRINCIPAL,
    }
)


def _check_base64_key(value: str, what: str) -> None:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ConfigurationError(f"{what} is not a base64 account key") from None
    if not raw:
        raise ConfigurationError(f"{what} is empty")


def _register_config_secrets(config: StorageConfig) -> None:
    register_secret(config.cosmos_key)
    register_secret(config.azure_client_secret)
    register_secret(config.blob_connection_string)
    if config.blob_connection_string:
        for part in config.blob_connection_string.split(";"):
            key, _, value = part.partition("=")
            if key.strip().lower() in ("accountkey", "sharedaccesssignature"):
                register_secret(value.strip())


def _check_token_method(config: StorageConfig) -> None:
    method = config.cosmos_auth_method
    if method is CosmosAuthMethod.SERVICE_PRINCIPAL:
        missing = [
            name
            for name in ("azure_tenant_id", "azure_client_id", "azure_client_secret")
            if not (getattr(config, name) or "").strip()
        ]
        if missing:
            raise ConfigurationError(
                f"cosmos_auth_method=service_principal needs {', '.join(missing)}"
            )


def validate_cosmos_auth(config: StorageConfig) -> None:
    """Raise :class:`ConfigurationError` unless ``config`` can build a Cosmos DB client."""
    _register_config_secrets(config)
    if not config.cosmos_endpoint:
        raise ConfigurationError("cosmos_endpoint is required for Cosmos DB")
    method = config.cosmos_auth_method
    if method is CosmosAuthMethod.KEY:
        if not config.cosmos_key:
            raise ConfigurationError("cosmos_auth_method=key needs cosmos_key")
        _check_base64_key(config.cosmos_key, "cosmos_key")
        return
    if config.cosmos_key:
        # A key that is silently ignored would surface later as a baffling token failure.
        raise ConfigurationError(
            f"cosmos_key is set but cosmos_auth_method is {method.value}; "
            "use cosmos_auth_method=key or unset cosmos_key"
        )
    _check_token_method(config)


def validate_blob_auth(config: StorageConfig, blob_account_key: str | None = None) -> None:
    """Raise :class:`ConfigurationError` unless ``config`` can build a Blob client."""
    _register_config_secrets(config)
    register_secret(blob_account_key)
    if config.blob_connection_string and config.blob_account_url:
        raise ConfigurationError("set blob_connection_string or blob_account_url, not both")
    if config.blob_connection_string:
        parts = {
            k.strip().lower()
            for k, _, v in (p.partition("=") for p in config.blob_connection_string.split(";"))
            if v
        }
        if (
            not parts & {"accountkey", "sharedaccesssignature"}
            and "usedevelopmentstorage" not in parts
        ):
            raise ConfigurationError(
                "blob_connection_string holds neither AccountKey nor SharedAccessSignature"
            )
        if blob_account_key:
            raise ConfigurationError("blob_account_key is not used with blob_connection_string")
        return
    if not config.blob_account_url:
        raise ConfigurationError("Blob Storage needs blob_connection_string or blob_account_url")
    parsed = urlparse(config.blob_account_url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ConfigurationError("blob_account_url must be an http(s) URL")
    if parsed.query:
        raise ConfigurationError(
            "blob_account_url must not carry a query (a SAS): use a credential"
        )
    if blob_account_key:
        _check_base64_key(blob_account_key, "blob_account_key")
        return
    if config.cosmos_auth_method is CosmosAuthMethod.KEY:
        raise ConfigurationError(
            "key authentication for Blob Storage needs blob_connection_string or blob_account_key"
        )
    _check_token_method(config)


def make_token_credential(config: StorageConfig) -> AsyncTokenCredential:
    """A new async azure-identity credential for a token method (the caller closes it)."""
    if config.cosmos_auth_method not in TOKEN_METHODS:
        raise ConfigurationError(
            f"cosmos_auth_method={config.cosmos_auth_method.value} does not use a token credential"
        )
    _check_token_method(config)
    _register_config_secrets(config)
    from azure.identity.aio import (
        ClientSecretCredential,
        DefaultAzureCredential,
        ManagedIdentityCredential,
    )

    method = config.cosmos_auth_method
    if method is CosmosAuthMethod.SERVICE_PRINCIPAL:
        assert config.azure_tenant_id and config.azure_client_id and config.azure_client_secret
        return ClientSecretCredential(
            config.azure_tenant_id, config.azure_client_id, config.azure_client_secret
        )
    if method is CosmosAuthMethod.MANAGED_IDENTITY:
        if config.azure_client_id:
            return ManagedIdentityCredential(client_id=config.azure_client_id)
        return ManagedIdentityCredential()
    if config.azure_client_id:
        return DefaultAzureCredential(managed_identity_client_id=config.azure_client_id)
    return DefaultAzureCredential()


class AzureClients:
    """The Cosmos DB and Blob clients of one configuration, created lazily, closed together.

    ``cosmos_options`` / ``blob_options`` are passed to the client constructors (for the
    emulators: ``{"connection_verify": False}``). Construction validates nothing; the first
    ``cosmos()`` / ``blob_service()`` call validates its half of the configuration.
    """

    def __init__(
        self,
        config: StorageConfig,
        *,
        blob_account_key: str | None = None,
        cosmos_options: dict[str, Any] | None = None,
        blob_options: dict[str, Any] | None = None,
    ) -> None:
        self.config = config
        self._blob_account_key = blob_account_key
        register_secret(blob_account_key)
        self._cosmos_options = dict(cosmos_options or {})
        self._blob_options = dict(blob_options or {})
        self._credential: AsyncTokenCredential | None = None
        self._cosmos: CosmosClient | None = None
        self._blob: BlobServiceClient | None = None
        self._closed = False

    def __repr__(self) -> str:
        c = self.config
        return (
            f"AzureClients(cosmos_endpoint={c.cosmos_endpoint!r}, "
            f"auth={c.cosmos_auth_method.value}, blob_account_url={c.blob_account_url!r})"
        )

    def _check_open(self) -> None:
        if self._closed:
            raise ConfigurationError("AzureClients is closed")

    def token_credential(self) -> AsyncTokenCredential:
        """The shared token credential (created on first use)."""
        self._check_open()
        if self._credential is None:
            self._credential = make_token_credential(self.config)
        return self._credential

    def cosmos(self) -> CosmosClient:
        """The async Cosmos DB client."""
        self._check_open()
        if self._cosmos is None:
            validate_cosmos_auth(self.config)
            from azure.cosmos.aio import CosmosClient

            config = self.config
            assert config.cosmos_endpoint is not None
            credential: Any
            if config.cosmos_auth_method is CosmosAuthMethod.KEY:
                credential = config.cosmos_key
            else:
                credential = self.token_credential()
            self._cosmos = CosmosClient(config.cosmos_endpoint, credential, **self._cosmos_options)
        return self._cosmos

    def blob_service(self) -> BlobServiceClient:
        """The async Blob service client."""
        self._check_open()
        if self._blob is None:
            validate_blob_auth(self.config, self._blob_account_key)
            from azure.storage.blob.aio import BlobServiceClient

            config = self.config
            if config.blob_connection_string:
                self._blob = BlobServiceClient.from_connection_string(
                    config.blob_connection_string, **self._blob_options
                )
            else:
                assert config.blob_account_url is not None
                credential: Any = self._blob_account_key or self.token_credential()
                self._blob = BlobServiceClient(
                    config.blob_account_url, credential=credential, **self._blob_options
                )
        return self._blob

    def blob_container(self, name: str | None = None) -> ContainerClient:
        """A client for ``name`` (default ``config.blob_container``)."""
        return self.blob_service().get_container_client(name or self.config.blob_container)

    async def close(self) -> None:
        """Close both clients and the credential (idempotent)."""
        self._closed = True
        cosmos, blob, cred = self._cosmos, self._blob, self._credential
        self._cosmos = self._blob = self._credential = None
        try:
            if cosmos is not None:
                await cosmos.close()
            if blob is not None:
                await blob.close()
        finally:
            if cred is not None:
                await cred.close()

    async def __aenter__(self) -> AzureClients:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
