"""Named remotes of a local repository, kept in ``<root>/remotes.json``.

A remote names a Cosmos DB container (refs, index, session documents) and a Blob container
(packs) and the user whose data it is::

    {"format": "amplifier-remotes/1",
     "remotes": {"origin": {"cosmos_endpoint": "https://acct.documents.azure.com:443/",
                            "cosmos_database": "amplifier-db", "cosmos_container": "items",
                            "partition_key_path": "/partitionKey",
                            "blob_account_url": "https://acct.blob.core.windows.net",
                            "blob_connection_string_env": null,
                            "blob_container": "amplifier-objects",
                            "auth_method": "default_credential", "user_id": "alice",
                            "org_id": null, "azure_tenant_id": null, "azure_client_id": null}}}

The file never holds a secret. Keys come from the environment when a remote is opened:
``AMPLIFIER_COSMOS_KEY`` (auth ``key``), the Blob connection string from the variable named
by ``blob_connection_string_env`` (else ``AMPLIFIER_BLOB_CONNECTION_STRING`` when no account
URL is given), ``AMPLIFIER_BLOB_ACCOUNT_KEY`` with an account URL, ``AZURE_CLIENT_SECRET``
for a service principal. ``"insecure_tls": true`` (no certificate check: the Cosmos DB
emulator's certificate is self-signed) is accepted only for an endpoint on 127.0.0.1,
``::1`` or ``localhost``, and written only when set.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from ..compat.config import CosmosAuthMethod, StorageConfig
from ..core.ids import validate_name
from ..errors import ConfigurationError, InvalidInputError, NotFoundError

__all__ = [
    "LOCAL_HOSTS",
    "REMOTES_FILE",
    "RemoteSpec",
    "add_remote",
    "get_remote",
    "load_remotes",
    "remove_remote",
    "save_remotes",
]

REMOTES_FILE = "remotes.json"
FORMAT = "amplifier-remotes/1"
DEFAULT_REMOTE = "origin"
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")


def _is_local(url: str) -> bool:
    return (urlparse(url).hostname or "").lower() in LOCAL_HOSTS


def _check_url(value: str, what: str) -> str:
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ConfigurationError(f"{what} must be an http(s) URL, got {value!r:.120}")
    if parsed.query or parsed.username or parsed.password:
        # A SAS token or credentials in a URL would be a secret in the file.
        raise ConfigurationError(f"{what} must not carry a query or credentials (secrets)")
    return value


@dataclass(frozen=True)
class RemoteSpec:
    """Where a remote is and whose data it holds (no secrets: see the module docstring)."""

    name: str
    cosmos_endpoint: str
    user_id: str
    cosmos_database: str = "amplifier-db"
    cosmos_container: str = "items"
    partition_key_path: str = "/partitionKey"
    blob_account_url: str | None = None
    blob_connection_string_env: str | None = None
    blob_container: str = "amplifier-objects"
    auth_method: str = CosmosAuthMethod.DEFAULT_CREDENTIAL.value
    org_id: str | None = None
    azure_tenant_id: str | None = None
    azure_client_id: str | None = None
    insecure_tls: bool = False

    def __post_init__(self) -> None:
        validate_name(self.name, "remote name")
        validate_name(self.user_id, "user id")
        _check_url(self.cosmos_endpoint, "cosmos_endpoint")
        for what in ("cosmos_database", "cosmos_container", "blob_container"):
            validate_name(getattr(self, what), what)
        if not self.partition_key_path.startswith("/") or "/" in self.partition_key_path[1:]:
            raise ConfigurationError("partition_key_path must be a top-level path like /pk")
        try:
            CosmosAuthMethod(self.auth_method)
        except ValueError as exc:
            raise ConfigurationError(
                f"auth_method must be one of {', '.join(m.value for m in CosmosAuthMethod)}"
            ) from exc
        if self.blob_account_url is not None:
            _check_url(self.blob_account_url, "blob_account_url")
        if self.blob_connection_string_env is not None:
            if not _ENV_NAME.fullmatch(self.blob_connection_string_env):
                raise ConfigurationError(
                    "blob_connection_string_env must name an environment variable"
                )
            if self.blob_account_url is not None:
                raise ConfigurationError(
                    "give blob_account_url or blob_connection_string_env, not both"
                )
        if self.insecure_tls and not _is_local(self.cosmos_endpoint):
            raise ConfigurationError(
                "insecure_tls (no certificate check) is only allowed for an emulator on "
                "127.0.0.1 / localhost"
            )

    # ------------------------------------------------------------------ file form
    def to_json(self) -> dict[str, Any]:
        """The document kept in remotes.json (``insecure_tls`` only when set)."""
        doc = {k: v for k, v in asdict(self).items() if k != "name"}
        if not self.insecure_tls:
            doc.pop("insecure_tls")
        return doc

    @classmethod
    def from_json(cls, name: str, doc: Mapping[str, Any]) -> RemoteSpec:
        known = {f.name for f in fields(cls)} - {"name"}
        unknown = set(doc) - known
        if unknown:
            raise ConfigurationError(
                f"remote {name!r}: unknown fields {sorted(unknown)} in {REMOTES_FILE}"
            )
        try:
            return cls(name=name, **dict(doc))
        except TypeError as exc:
            raise ConfigurationError(f"remote {name!r}: {exc}") from exc

    # ------------------------------------------------------------------ opening
    def storage_config(
        self, environ: Mapping[str, str] | None = None
    ) -> tuple[StorageConfig, str | None]:
        """The :class:`StorageConfig` (secrets from ``environ``) and the Blob account key."""
        env = os.environ if environ is None else environ
        method = CosmosAuthMethod(self.auth_method)
        cosmos_key = env.get("AMPLIFIER_COSMOS_KEY") or None
        if method is CosmosAuthMethod.KEY and not cosmos_key:
            raise ConfigurationError(
                f"remote {self.name!r} uses key authentication: set AMPLIFIER_COSMOS_KEY"
            )
        if method is not CosmosAuthMethod.KEY:
            cosmos_key = None
        conn: str | None = None
        account_key: str | None = None
        if self.blob_connection_string_env is not None:
            conn = env.get(self.blob_connection_string_env) or None
            if conn is None:
                raise ConfigurationError(
                    f"remote {self.name!r}: set {self.blob_connection_string_env} "
                    "(its Blob connection string)"
                )
        elif self.blob_account_url is None:
            conn = env.get("AMPLIFIER_BLOB_CONNECTION_STRING") or None
            if conn is None:
                raise ConfigurationError(
                    f"remote {self.name!r} has no blob_account_url: set "
                    "AMPLIFIER_BLOB_CONNECTION_STRING"
                )
        else:
            account_key = env.get("AMPLIFIER_BLOB_ACCOUNT_KEY") or None
        config = StorageConfig(
            user_id=self.user_id,
            org_id=self.org_id,
            enable_sync=True,
            cosmos_endpoint=self.cosmos_endpoint,
            cosmos_auth_method=method,
            cosmos_key=cosmos_key,
            cosmos_database=self.cosmos_database,
            cosmos_container=self.cosmos_container,
            cosmos_partition_key_path=self.partition_key_path,
            azure_tenant_id=self.azure_tenant_id,
            azure_client_id=self.azure_client_id,
            azure_client_secret=(
                env.get("AZURE_CLIENT_SECRET") or None
                if method is CosmosAuthMethod.SERVICE_PRINCIPAL
                else None
            ),
            blob_connection_string=conn,
            blob_account_url=None if conn else self.blob_account_url,
            blob_container=self.blob_container,
        )
        return config, account_key


# ---------------------------------------------------------------------- remotes.json
def _path(root: Path | str) -> Path:
    return Path(root).expanduser() / REMOTES_FILE


def load_remotes(root: Path | str) -> dict[str, RemoteSpec]:
    """Every remote of the repository at ``root`` (empty when none is configured)."""
    path = _path(root)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except ValueError as exc:
        raise ConfigurationError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ConfigurationError(f"{path} is not a remotes file ({FORMAT})")
    remotes = doc.get("remotes")
    if not isinstance(remotes, dict):
        raise ConfigurationError(f"{path}: 'remotes' must be an object")
    out: dict[str, RemoteSpec] = {}
    for name, spec in remotes.items():
        if not isinstance(spec, dict):
            raise ConfigurationError(f"{path}: remote {name!r} must be an object")
        out[name] = RemoteSpec.from_json(name, spec)
    return out


def save_remotes(root: Path | str, remotes: Mapping[str, RemoteSpec]) -> None:
    """Write remotes.json atomically (temporary file, then rename)."""
    path = _path(root)
    doc = {
        "format": FORMAT,
        "remotes": {name: remotes[name].to_json() for name in sorted(remotes)},
    }
    tmp = path.with_name(f".{REMOTES_FILE}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    os.replace(tmp, path)


def add_remote(root: Path | str, spec: RemoteSpec, *, replace: bool = False) -> None:
    """Record ``spec`` (InvalidInputError when the name is taken and not ``replace``)."""
    remotes = load_remotes(root)
    if spec.name in remotes and not replace:
        raise InvalidInputError(f"remote {spec.name!r} already exists")
    remotes[spec.name] = spec
    save_remotes(root, remotes)


def remove_remote(root: Path | str, name: str) -> RemoteSpec:
    """Forget a remote; returns what it was (NotFoundError when unknown).

    Its tracking refs (``remotes/<name>/...``) are left to the caller.
    """
    remotes = load_remotes(root)
    spec = remotes.pop(validate_name(name, "remote name"), None)
    if spec is None:
        raise NotFoundError(f"no remote named {name!r}")
    save_remotes(root, remotes)
    return spec


def get_remote(root: Path | str, name: str | None = None) -> RemoteSpec:
    """The remote called ``name``; without a name ``origin``, or the only remote there is."""
    remotes = load_remotes(root)
    if name is None:
        if DEFAULT_REMOTE in remotes:
            return remotes[DEFAULT_REMOTE]
        if len(remotes) == 1:
            return next(iter(remotes.values()))
        if not remotes:
            raise NotFoundError("no remote is configured (sessctl remote add NAME ...)")
        raise InvalidInputError(
            f"several remotes ({', '.join(sorted(remotes))}): name one with --remote"
        )
    spec = remotes.get(validate_name(name, "remote name"))
    if spec is None:
        raise NotFoundError(f"no remote named {name!r}")
    return spec
