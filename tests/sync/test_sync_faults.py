"""Push and clone through a proxy that drops connections and answers 503 and 429."""

from __future__ import annotations

import asyncio
import dataclasses
from urllib.parse import urlsplit

import pytest
from fault_proxy import FAULTS, FaultProxy
from sync_support import SyncEnv, make_session, message, object_ids, session_refs

from amplifier_session_storage.core.objects import BlockType
from amplifier_session_storage.remote.checks import fsck_remote
from amplifier_session_storage.remote.fetch import pull
from amplifier_session_storage.remote.push import push
from amplifier_session_storage.remote.session import open_remote_from
from amplifier_session_storage.stores.retry import RetryPolicy

POLICY = RetryPolicy(max_attempts=10, base_delay=0.05, max_delay=2.0, max_elapsed=90.0)


def _port(url: str) -> int:
    port = urlsplit(url).port
    assert port is not None
    return port


@pytest.mark.slow
async def test_push_and_clone_survive_drops_503_and_429(sync_env: SyncEnv) -> None:
    emu = sync_env.emu
    blob = FaultProxy("127.0.0.1", _port(emu.blob_url), rate=0.2, seed=7, service="blob",
                      max_faults=40, lifetime=240)
    cosmos = FaultProxy("127.0.0.1", _port(emu.cosmos_endpoint), tls=True, rate=0.12, seed=11,
                        service="cosmos", max_faults=40, lifetime=240)
    await blob.start()
    await cosmos.start()
    try:
        spec = dataclasses.replace(
            sync_env.spec,
            cosmos_endpoint=cosmos.url + "/",
            blob_connection_string_env="FAULTY_BLOB_CONNECTION_STRING",
        )
        account = urlsplit(emu.blob_url).path  # /devstoreaccount1
        environ = {
            **sync_env.environ,
            "FAULTY_BLOB_CONNECTION_STRING": emu.blob_connection_string.replace(
                emu.blob_url, blob.url + account
            ),
        }
        a = await sync_env.repo("a")
        for k in range(4):
            await make_session(a, f"s{k}", 150, big=2)
        remote = await open_remote_from(spec, environ=environ, policy=POLICY)
        try:
            result = await push(a, remote)
            assert {s.status for s in result.sessions} == {"created"}
            await a.append_many("s1", [(BlockType.MESSAGE, message(i, "n"), None)
                                       for i in range(5)])
            assert (await push(a, remote)).objects == 5
            b = await sync_env.repo("b", with_remote=False)
            cloned = await pull(b, remote)
            assert {s.integration for s in cloned.sessions} == {"created"}
            assert await session_refs(b) == await session_refs(a)
            assert await object_ids(b) == await object_ids(a)
            for sid in await a.session_ids():
                assert await b.materialize(sid) == await a.materialize(sid)
        finally:
            await remote.close()
        # the proxies really misbehaved, in every way, on both services
        seen = blob.stats + cosmos.stats
        assert all(seen[f] > 0 for f in FAULTS), dict(seen)
        assert blob.stats["passed"] > 0 and cosmos.stats["passed"] > 0
        assert (await fsck_remote(await sync_env.remote())).ok  # checked without the proxy
    finally:
        await blob.stop()
        await cosmos.stop()
    assert blob.stopped.is_set() and cosmos.stopped.is_set()


async def test_fault_proxy_stops_by_itself() -> None:
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    proxy = FaultProxy("127.0.0.1", port, lifetime=0.3)
    await proxy.start()
    await asyncio.wait_for(proxy.stopped.wait(), 5)
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", proxy.port)
    server.close()
    await server.wait_closed()
