"""StorageConfig.from_environment: every variable, and errors instead of silent defaults."""

from __future__ import annotations

import pytest

from amplifier_session_storage import ConfigurationError, CosmosAuthMethod, StorageConfig

ALL = {
    "AMPLIFIER_COSMOS_ENDPOINT": "https://acct.documents.azure.com:443/",
    "AMPLIFIER_COSMOS_AUTH_METHOD": "service_principal",
    "AMPLIFIER_COSMOS_KEY": "a2V5",
    "AMPLIFIER_COSMOS_DATABASE": "db1",
    "AMPLIFIER_COSMOS_CONTAINER": "c1",
    "AMPLIFIER_COSMOS_PARTITION_KEY": "/pk",
    "AMPLIFIER_LOCAL_STORAGE_PATH": "/tmp/somewhere",
    "AMPLIFIER_ENABLE_SYNC": "true",
    "AZURE_TENANT_ID": "tenant",
    "AZURE_CLIENT_ID": "client",
    "AZURE_CLIENT_SECRET": "s3cret",
}


def test_every_variable_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in ALL.items():
        monkeypatch.setenv(k, v)
    c = StorageConfig.from_environment(user_id="u", org_id="o")
    assert c.cosmos_endpoint == ALL["AMPLIFIER_COSMOS_ENDPOINT"]
    assert c.cosmos_auth_method is CosmosAuthMethod.SERVICE_PRINCIPAL
    assert c.cosmos_key == "a2V5"
    assert (c.cosmos_database, c.cosmos_container, c.cosmos_partition_key_path) == (
        "db1",
        "c1",
        "/pk",
    )
    assert str(c.storage_path) == "/tmp/somewhere"
    assert c.enable_sync is True
    assert (c.azure_tenant_id, c.azure_client_id, c.azure_client_secret) == (
        "tenant",
        "client",
        "s3cret",
    )
    assert c.org_id == "o"
    assert "s3cret" not in repr(c) and "a2V5" not in repr(c)


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for k in ALL:
        monkeypatch.delenv(k, raising=False)
    c = StorageConfig.from_environment(user_id="u")
    assert c.cosmos_auth_method is CosmosAuthMethod.DEFAULT_CREDENTIAL
    assert (c.cosmos_database, c.cosmos_container) == ("amplifier-db", "items")
    assert c.enable_sync is False
    assert str(c.storage_path).endswith(".amplifier/sessions")


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("AMPLIFIER_COSMOS_AUTH_METHOD", "password"),
        ("AMPLIFIER_ENABLE_SYNC", "maybe"),
        ("AMPLIFIER_COSMOS_ENDPOINT", "not a url"),
        ("AMPLIFIER_COSMOS_PARTITION_KEY", "partitionKey"),
        ("AMPLIFIER_COSMOS_DATABASE", ""),
    ],
)
def test_invalid_values_are_errors(monkeypatch: pytest.MonkeyPatch, var: str, value: str) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigurationError):
        StorageConfig.from_environment(user_id="u")


def test_user_id_required() -> None:
    with pytest.raises(ConfigurationError):
        StorageConfig(user_id="")
