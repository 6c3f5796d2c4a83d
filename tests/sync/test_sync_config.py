"""remotes.json and promisors.json: validation, no secrets, secrets from the environment."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from amplifier_session_storage.compat.config import CosmosAuthMethod
from amplifier_session_storage.errors import ConfigurationError, InvalidInputError, NotFoundError
from amplifier_session_storage.remote.config import (
    RemoteSpec,
    add_remote,
    get_remote,
    load_remotes,
    remove_remote,
)
from amplifier_session_storage.remote.lazy import add_promisor, load_promisors, remove_promisor

LOCAL = "https://127.0.0.1:8081/"
AZURE = "https://acct.documents.azure.com:443/"


def spec(name: str = "origin", **kw: object) -> RemoteSpec:
    values: dict[str, object] = {"name": name, "cosmos_endpoint": AZURE, "user_id": "alice"}
    values.update(kw)
    return RemoteSpec(**values)  # type: ignore[arg-type]


def test_insecure_tls_only_for_local_endpoints() -> None:
    assert spec(cosmos_endpoint=LOCAL, insecure_tls=True).insecure_tls
    with pytest.raises(ConfigurationError, match=r"127\.0\.0\.1"):
        spec(insecure_tls=True)


@pytest.mark.parametrize(
    "bad",
    [
        {"name": "../x"},
        {"name": "a/b"},
        {"user_id": ""},
        {"cosmos_endpoint": "ftp://x"},
        {"blob_account_url": "https://acct.blob.core.windows.net/?sig=secret"},
        {"blob_connection_string_env": "NOT A NAME"},
        {"auth_method": "password"},
        {"partition_key_path": "/a/b"},
        {"blob_account_url": "https://a.blob.core.windows.net", "blob_connection_string_env": "X"},
    ],
)
def test_bad_specs_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(InvalidInputError):
        spec(**bad)


def test_remotes_file_round_trip_without_secrets(tmp_path: Path) -> None:
    add_remote(tmp_path, spec(cosmos_endpoint=LOCAL, insecure_tls=True, auth_method="key"))
    add_remote(tmp_path, spec("backup", blob_account_url="https://a.blob.core.windows.net"))
    with pytest.raises(InvalidInputError, match="already exists"):
        add_remote(tmp_path, spec("backup"))
    doc = json.loads((tmp_path / "remotes.json").read_text())
    assert doc["format"] == "amplifier-remotes/1"
    assert doc["remotes"]["origin"]["insecure_tls"] is True
    assert "insecure_tls" not in doc["remotes"]["backup"]
    assert load_remotes(tmp_path)["backup"] == spec(
        "backup", blob_account_url="https://a.blob.core.windows.net")
    assert get_remote(tmp_path).name == "origin"
    remove_remote(tmp_path, "origin")
    assert get_remote(tmp_path).name == "backup"  # the only one
    with pytest.raises(NotFoundError):
        get_remote(tmp_path, "origin")
    remove_remote(tmp_path, "backup")
    with pytest.raises(NotFoundError, match="no remote is configured"):
        get_remote(tmp_path)


def test_secrets_come_from_the_environment() -> None:
    s = spec(auth_method="key", blob_connection_string_env="MY_BLOB")
    with pytest.raises(ConfigurationError, match="AMPLIFIER_COSMOS_KEY"):
        s.storage_config({})
    with pytest.raises(ConfigurationError, match="MY_BLOB"):
        s.storage_config({"AMPLIFIER_COSMOS_KEY": "a2V5"})
    config, account_key = s.storage_config(
        {"AMPLIFIER_COSMOS_KEY": "a2V5", "MY_BLOB": "AccountKey=x;BlobEndpoint=http://h/a"})
    assert config.cosmos_key == "a2V5" and config.blob_connection_string is not None
    assert config.cosmos_auth_method is CosmosAuthMethod.KEY and account_key is None
    url = spec(auth_method="key", blob_account_url="https://a.blob.core.windows.net")
    config, account_key = url.storage_config(
        {"AMPLIFIER_COSMOS_KEY": "a2V5", "AMPLIFIER_BLOB_ACCOUNT_KEY": "YWNjdA=="})
    assert account_key == "YWNjdA==" and config.blob_account_url is not None
    token = spec(blob_account_url="https://a.blob.core.windows.net")
    config, _ = token.storage_config({"AMPLIFIER_COSMOS_KEY": "ignored"})
    assert config.cosmos_key is None  # only used with key authentication


def test_unknown_fields_in_the_file_are_refused(tmp_path: Path) -> None:
    (tmp_path / "remotes.json").write_text(json.dumps({
        "format": "amplifier-remotes/1",
        "remotes": {"origin": {"cosmos_endpoint": AZURE, "user_id": "u", "cosmos_key": "s"}}}))
    with pytest.raises(ConfigurationError, match="unknown fields"):
        load_remotes(tmp_path)


def test_promisors_file(tmp_path: Path) -> None:
    assert load_promisors(tmp_path) == []
    add_promisor(tmp_path, "origin")
    add_promisor(tmp_path, "origin")
    add_promisor(tmp_path, "backup")
    assert load_promisors(tmp_path) == ["origin", "backup"]
    remove_promisor(tmp_path, "origin")
    remove_promisor(tmp_path, "backup")
    assert not (tmp_path / "promisors.json").exists()
