"""StorageConfig and CosmosAuthMethod, as the seed API defined them.

``StorageConfig.from_environment`` reads every variable in the seed README's table; an
invalid value (an unknown auth method, a malformed URL, a boolean that is not a boolean) is
a :class:`ConfigurationError`, never a silent default.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from urllib.parse import urlparse

from ..errors import ConfigurationError

__all__ = ["DEFAULT_LOCAL_PATH", "CosmosAuthMethod", "StorageConfig"]

DEFAULT_LOCAL_PATH = "~/.amplifier/sessions"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class CosmosAuthMethod(StrEnum):
    """How to authenticate to Cosmos DB (and Blob Storage)."""

    KEY = "key"
    DEFAULT_CREDENTIAL = "default_credential"
    MANAGED_IDENTITY = "managed_identity"
    SERVICE_PRINCIPAL = "service_principal"


@dataclass
class StorageConfig:
    """Where and as whom sessions are stored. Secrets are never shown by ``repr``."""

    user_id: str
    org_id: str | None = None
    enable_sync: bool = False
    cosmos_endpoint: str | None = None
    cosmos_auth_method: CosmosAuthMethod = CosmosAuthMethod.DEFAULT_CREDENTIAL
    cosmos_key: str | None = field(default=None, repr=False)
    cosmos_database: str = "amplifier-db"
    cosmos_container: str = "items"
    cosmos_partition_key_path: str = "/partitionKey"
    azure_tenant_id: str | None = None
    azure_client_id: str | None = None
    azure_client_secret: str | None = field(default=None, repr=False)
    local_path: str | Path | None = None
    device_id: str | None = None
    blob_connection_string: str | None = field(default=None, repr=False)
    blob_account_url: str | None = None
    blob_container: str = "amplifier-objects"

    def __post_init__(self) -> None:
        if not isinstance(self.user_id, str) or not self.user_id.strip():
            raise ConfigurationError("StorageConfig.user_id must be a non-empty string")
        try:
            self.cosmos_auth_method = CosmosAuthMethod(self.cosmos_auth_method)
        except ValueError as exc:
            raise ConfigurationError(
                f"cosmos_auth_method must be one of {[m.value for m in CosmosAuthMethod]}, "
                f"got {self.cosmos_auth_method!r}"
            ) from exc
        if self.cosmos_endpoint is not None:
            _check_url(self.cosmos_endpoint, "cosmos_endpoint")
        if not self.cosmos_partition_key_path.startswith("/"):
            raise ConfigurationError("cosmos_partition_key_path must start with '/'")

    @property
    def storage_path(self) -> Path:
        """The local repository directory (``~`` expanded)."""
        return Path(self.local_path or DEFAULT_LOCAL_PATH).expanduser()

    @classmethod
    def from_environment(cls, user_id: str, org_id: str | None = None) -> StorageConfig:
        """Build a config from the ``AMPLIFIER_*`` and ``AZURE_*`` variables."""
        env = os.environ
        method = env.get("AMPLIFIER_COSMOS_AUTH_METHOD", "default_credential").strip().lower()
        if method not in {m.value for m in CosmosAuthMethod}:
            raise ConfigurationError(
                f"AMPLIFIER_COSMOS_AUTH_METHOD={method!r} is not one of "
                f"{', '.join(m.value for m in CosmosAuthMethod)}"
            )
        sync = env.get("AMPLIFIER_ENABLE_SYNC", "false").strip().lower()
        if sync not in _TRUE | _FALSE:
            raise ConfigurationError(
                f"AMPLIFIER_ENABLE_SYNC={sync!r} is not a boolean (true/false/1/0/yes/no)"
            )
        pk = env.get("AMPLIFIER_COSMOS_PARTITION_KEY", "/partitionKey")
        for var in ("AMPLIFIER_COSMOS_DATABASE", "AMPLIFIER_COSMOS_CONTAINER"):
            if var in env and not env[var].strip():
                raise ConfigurationError(f"{var} is set but empty")
        return cls(
            user_id=user_id,
            org_id=org_id,
            enable_sync=sync in _TRUE,
            cosmos_endpoint=env.get("AMPLIFIER_COSMOS_ENDPOINT") or None,
            cosmos_auth_method=CosmosAuthMethod(method),
            cosmos_key=env.get("AMPLIFIER_COSMOS_KEY") or None,
            cosmos_database=env.get("AMPLIFIER_COSMOS_DATABASE", "amplifier-db"),
            cosmos_container=env.get("AMPLIFIER_COSMOS_CONTAINER", "items"),
            cosmos_partition_key_path=pk,
            azure_tenant_id=env.get("AZURE_TENANT_ID") or None,
            azure_client_id=env.get("AZURE_CLIENT_ID") or None,
            azure_client_secret=env.get("AZURE_CLIENT_SECRET") or None,
            local_path=env.get("AMPLIFIER_LOCAL_STORAGE_PATH") or None,
            blob_connection_string=env.get("AMPLIFIER_BLOB_CONNECTION_STRING") or None,
            blob_account_url=env.get("AMPLIFIER_BLOB_ACCOUNT_URL") or None,
            blob_container=env.get("AMPLIFIER_BLOB_CONTAINER", "amplifier-objects"),
        )


def _check_url(value: str, what: str) -> None:
    parsed = urlparse(value)
    if parsed.scheme not in ("https", "http") or not parsed.netloc:
        raise ConfigurationError(f"{what} must be an http(s) URL, got {value!r}")
