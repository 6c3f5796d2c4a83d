"""Keys never reach a log record or an exception (real SDKs, DEBUG logging everywhere)."""

from __future__ import annotations

import base64
import logging
import traceback

import pytest
from azure_support import AzureResources, make_clients

from amplifier_session_storage.core.ids import ObjectId
from amplifier_session_storage.errors import StorageError
from amplifier_session_storage.stores.blob import BlobObjectStore
from amplifier_session_storage.stores.cosmos import CosmosRefStore, Reader, open_remote
from conformance.object_store_suite import make_object

pytestmark = pytest.mark.emulators


def _leaks(text: str, secrets: list[str]) -> list[str]:
    return [s for s in secrets if s in text]


async def test_no_secret_in_logs_or_errors(
    azure: AzureResources, caplog: pytest.LogCaptureFixture
) -> None:
    emu = azure.emu
    wrong_key = base64.b64encode(b"wrong-key-" * 6).decode()
    secrets = [emu.cosmos_key, emu.blob_account_key, wrong_key, emu.blob_connection_string]
    caplog.set_level(logging.DEBUG)
    for name in ("azure", "azure.core", "azure.cosmos", "azure.storage", "azure.identity"):
        caplog.set_level(logging.DEBUG, logger=name)
    errors: list[BaseException] = []

    # ordinary key-auth work
    config = azure.config()
    remote = await azure.remote(config)
    objs = [make_object() for _ in range(5)]
    await remote.objects.put_many(objs)
    assert await remote.objects.get(objs[0][0]) == objs[0][1]
    a = ObjectId.of(b"a")
    assert await remote.refs.set_if_equals("sessions/s1", None, a, "create")
    assert not await remote.refs.set_if_equals("sessions/s1", None, a, "lost race")
    await remote.catalog.put("s1", {"project_slug": "p", "visibility": "public"})
    await remote.index.list_visible_sessions(Reader("other", "o", ()))

    # failures: a missing Blob container, a missing Cosmos container, a refused Blob key
    missing_blob = BlobObjectStore(azure.clients(config).blob_container("does-not-exist"))
    try:
        await missing_blob.get(objs[0][0])
    except StorageError as exc:
        errors.append(exc)
    db = azure.clients(config).cosmos().get_database_client(config.cosmos_database)
    gone = CosmosRefStore(db.get_container_client("no-such-container"), "u1")
    try:
        await gone.set_if_equals("sessions/x", None, a)
    except StorageError as exc:
        errors.append(exc)
    bad_config = azure.config(
        blob_connection_string=emu.blob_connection_string.replace(emu.blob_account_key, wrong_key)
    )
    async with make_clients(bad_config) as bad:
        store = BlobObjectStore(bad.blob_container(config.blob_container))
        try:
            await store.get(objs[0][0])
        except StorageError as exc:
            errors.append(exc)
    # a remote opened from a config whose key is wrong fails without echoing it
    try:
        await open_remote(bad_config, make_clients(bad_config), create=True, owns_clients=True)
    except StorageError as exc:
        errors.append(exc)

    assert len(errors) >= 3, errors
    for exc in errors:
        text = str(exc) + repr(exc) + "".join(traceback.format_exception(exc))
        assert not _leaks(text, secrets), (type(exc), _leaks(text, secrets))

    azure_records = [r for r in caplog.records if r.name.startswith("azure")]
    assert azure_records, "the SDK loggers were not captured"
    for record in caplog.records:
        text = record.getMessage() + str(record.__dict__.get("exc_text") or "")
        assert not _leaks(text, secrets), (record.name, _leaks(text, secrets))
    assert not _leaks(caplog.text, secrets)
    assert not _leaks(repr(config) + repr(bad_config), secrets)
