"""Credential configuration for the four auth methods (validation needs no network)."""

from __future__ import annotations

from typing import Any

import pytest

from amplifier_session_storage.compat.config import CosmosAuthMethod, StorageConfig
from amplifier_session_storage.errors import ConfigurationError
from amplifier_session_storage.stores import azure_auth
from amplifier_session_storage.stores.azure_auth import (
    AzureClients,
    make_token_credential,
    validate_blob_auth,
    validate_cosmos_auth,
)

ENDPOINT = "https://acct.documents.azure.com:443/"
KEY = "C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nqbq/7Fxr6aGgBOqFLpJnDSHWvV5hD2cLsA6w1iA=="
SECRET = "sp-secret-value-~1234567890"
BLOB_URL = "https://acct.blob.core.windows.net"
BLOB_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
CONN = (
    "DefaultEndpointsProtocol=https;AccountName=acct;"
    f"AccountKey={BLOB_KEY};EndpointSuffix=core.windows.net"
)


def cfg(method: CosmosAuthMethod, **kw: Any) -> StorageConfig:
    return StorageConfig(user_id="u1", cosmos_endpoint=ENDPOINT, cosmos_auth_method=method, **kw)


def refused(fn: Any, *args: Any, words: tuple[str, ...] = ()) -> str:
    with pytest.raises(ConfigurationError) as info:
        fn(*args)
    text = str(info.value)
    for secret in (KEY, SECRET, BLOB_KEY, "not-base64!!"):
        assert secret not in text
    for w in words:
        assert w in text
    return text


# ---------------------------------------------------------------------- Cosmos DB
def test_key_method() -> None:
    validate_cosmos_auth(cfg(CosmosAuthMethod.KEY, cosmos_key=KEY))
    refused(validate_cosmos_auth, cfg(CosmosAuthMethod.KEY), words=("cosmos_key",))
    refused(validate_cosmos_auth, cfg(CosmosAuthMethod.KEY, cosmos_key="not-base64!!"))
    with pytest.raises(ConfigurationError):
        make_token_credential(cfg(CosmosAuthMethod.KEY, cosmos_key=KEY))


def test_endpoint_is_required() -> None:
    config = StorageConfig(user_id="u1", cosmos_auth_method=CosmosAuthMethod.KEY, cosmos_key=KEY)
    refused(validate_cosmos_auth, config, words=("cosmos_endpoint",))


def test_service_principal_needs_tenant_client_and_secret() -> None:
    full = {"azure_tenant_id": "t", "azure_client_id": "c", "azure_client_secret": SECRET}
    validate_cosmos_auth(cfg(CosmosAuthMethod.SERVICE_PRINCIPAL, **full))
    for missing in full:
        partial = {k: v for k, v in full.items() if k != missing}
        refused(
            validate_cosmos_auth,
            cfg(CosmosAuthMethod.SERVICE_PRINCIPAL, **partial),
            words=(missing,),
        )
    refused(
        validate_cosmos_auth,
        cfg(CosmosAuthMethod.SERVICE_PRINCIPAL, **{**full, "azure_tenant_id": "  "}),
        words=("azure_tenant_id",),
    )


@pytest.mark.parametrize(
    "method", [CosmosAuthMethod.DEFAULT_CREDENTIAL, CosmosAuthMethod.MANAGED_IDENTITY]
)
def test_token_methods_need_no_secret_but_refuse_a_stray_key(method: CosmosAuthMethod) -> None:
    validate_cosmos_auth(cfg(method))
    validate_cosmos_auth(cfg(method, azure_client_id="cid"))
    refused(validate_cosmos_auth, cfg(method, cosmos_key=KEY), words=("cosmos_key",))


async def test_credential_types_for_each_method() -> None:
    from azure.identity.aio import (
        ClientSecretCredential,
        DefaultAzureCredential,
        ManagedIdentityCredential,
    )

    cases: list[tuple[StorageConfig, type]] = [
        (cfg(CosmosAuthMethod.DEFAULT_CREDENTIAL), DefaultAzureCredential),
        (cfg(CosmosAuthMethod.DEFAULT_CREDENTIAL, azure_client_id="c"), DefaultAzureCredential),
        (cfg(CosmosAuthMethod.MANAGED_IDENTITY), ManagedIdentityCredential),
        (cfg(CosmosAuthMethod.MANAGED_IDENTITY, azure_client_id="c"), ManagedIdentityCredential),
        (
            cfg(
                CosmosAuthMethod.SERVICE_PRINCIPAL,
                azure_tenant_id="t",
                azure_client_id="c",
                azure_client_secret=SECRET,
            ),
            ClientSecretCredential,
        ),
    ]
    for config, kind in cases:
        cred = make_token_credential(config)
        assert isinstance(cred, kind)
        await cred.close()


async def test_clients_are_built_without_network_and_closed_with_the_credential(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    closed: list[str] = []

    class FakeCredential:
        async def get_token(self, *scopes: str, **kw: Any) -> Any:
            raise AssertionError("no token may be requested while building clients")

        async def close(self) -> None:
            closed.append("credential")

    monkeypatch.setattr(azure_auth, "make_token_credential", lambda config: FakeCredential())
    config = cfg(CosmosAuthMethod.MANAGED_IDENTITY, blob_account_url=BLOB_URL)
    clients = AzureClients(config)
    cosmos = clients.cosmos()
    assert clients.cosmos() is cosmos
    blob = clients.blob_service()
    assert clients.token_credential() is clients.token_credential()  # one shared credential
    assert blob.url.startswith(BLOB_URL)
    assert clients.blob_container().container_name == "amplifier-objects"
    await clients.close()
    await clients.close()
    assert closed == ["credential"]
    with pytest.raises(ConfigurationError):
        clients.cosmos()


async def test_key_clients_close_cleanly() -> None:
    async with AzureClients(
        cfg(CosmosAuthMethod.KEY, cosmos_key=KEY, blob_connection_string=CONN)
    ) as c:
        c.cosmos()
        c.blob_service()
        assert KEY not in repr(c) and BLOB_KEY not in repr(c)
    assert KEY not in repr(c.config) and BLOB_KEY not in repr(c.config)


# ---------------------------------------------------------------------- Blob
def test_blob_connection_string() -> None:
    validate_blob_auth(cfg(CosmosAuthMethod.KEY, cosmos_key=KEY, blob_connection_string=CONN))
    refused(
        validate_blob_auth,
        cfg(CosmosAuthMethod.KEY, blob_connection_string=CONN, blob_account_url=BLOB_URL),
        words=("not both",),
    )
    refused(
        validate_blob_auth,
        cfg(CosmosAuthMethod.KEY, blob_connection_string="AccountName=acct;BlobEndpoint=x"),
    )


def test_blob_account_url_with_key_or_token() -> None:
    key_cfg = cfg(CosmosAuthMethod.KEY, cosmos_key=KEY, blob_account_url=BLOB_URL)
    refused(validate_blob_auth, key_cfg, words=("blob_account_key",))
    validate_blob_auth(key_cfg, BLOB_KEY)
    with pytest.raises(ConfigurationError):
        validate_blob_auth(key_cfg, "not-base64!!")
    for method in (CosmosAuthMethod.DEFAULT_CREDENTIAL, CosmosAuthMethod.MANAGED_IDENTITY):
        validate_blob_auth(cfg(method, blob_account_url=BLOB_URL))
    refused(
        validate_blob_auth,
        cfg(CosmosAuthMethod.SERVICE_PRINCIPAL, blob_account_url=BLOB_URL),
        words=("azure_tenant_id",),
    )
    refused(validate_blob_auth, cfg(CosmosAuthMethod.DEFAULT_CREDENTIAL), words=("blob_",))
    refused(
        validate_blob_auth,
        cfg(CosmosAuthMethod.DEFAULT_CREDENTIAL, blob_account_url=BLOB_URL + "?sig=abc"),
    )


async def test_blob_account_key_client() -> None:
    config = cfg(CosmosAuthMethod.KEY, cosmos_key=KEY, blob_account_url=BLOB_URL)
    async with AzureClients(config, blob_account_key=BLOB_KEY) as clients:
        svc = clients.blob_service()
        assert svc.account_name == "acct"
        assert BLOB_KEY not in repr(clients)


def test_from_environment_combinations(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMPLIFIER_COSMOS_ENDPOINT", ENDPOINT)
    monkeypatch.setenv("AMPLIFIER_COSMOS_AUTH_METHOD", "service_principal")
    monkeypatch.setenv("AZURE_TENANT_ID", "t")
    monkeypatch.setenv("AZURE_CLIENT_ID", "c")
    monkeypatch.delenv("AZURE_CLIENT_SECRET", raising=False)
    monkeypatch.delenv("AMPLIFIER_COSMOS_KEY", raising=False)
    refused(validate_cosmos_auth, StorageConfig.from_environment("u1"), words=("secret",))
    monkeypatch.setenv("AZURE_CLIENT_SECRET", SECRET)
    validate_cosmos_auth(StorageConfig.from_environment("u1"))
