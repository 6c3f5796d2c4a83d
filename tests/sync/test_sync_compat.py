"""CosmosBlockStorage and HybridBlockStorage against the emulators (seed API behaviours)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest
from fault_proxy import FaultProxy
from sync_support import SyncEnv, big_event

from amplifier_session_storage import (
    BlockType,
    BlockWriter,
    CosmosAuthMethod,
    CosmosBlockStorage,
    HybridBlockStorage,
    SessionStateReader,
    StorageConfig,
)
from amplifier_session_storage.compat.hybrid import ConflictResolution, SyncState
from amplifier_session_storage.remote.checks import fsck_remote
from amplifier_session_storage.remote.fetch import remote_heads
from amplifier_session_storage.stores.retry import RetryPolicy

QUICK = RetryPolicy(max_attempts=2, base_delay=0.05, max_delay=0.2, max_elapsed=2.0)


def _config(env: SyncEnv, **overrides: object) -> StorageConfig:
    spec = env.spec
    values: dict[str, object] = {
        "user_id": "u1",
        "cosmos_endpoint": spec.cosmos_endpoint,
        "cosmos_auth_method": CosmosAuthMethod.KEY,
        "cosmos_key": env.emu.cosmos_key,
        "cosmos_database": spec.cosmos_database,
        "cosmos_container": spec.cosmos_container,
        "blob_connection_string": env.emu.blob_connection_string,
        "blob_container": spec.blob_container,
        "device_id": "d1",
    }
    values.update(overrides)
    return StorageConfig(**values)  # type: ignore[arg-type]


@pytest.fixture
async def cosmos(sync_env: SyncEnv) -> AsyncIterator[CosmosBlockStorage]:
    storage = CosmosBlockStorage(_config(sync_env), connection_verify=False)
    try:
        yield storage
    finally:
        await storage.close()


# ---------------------------------------------------------------------- CosmosBlockStorage
async def test_cosmos_writer_chain_ids_are_kept(cosmos: CosmosBlockStorage) -> None:
    w = BlockWriter("s1", "u1", "d1")
    made = [w.create_session("proj"), w.add_message("user", "hi", 1),
            w.add_message("assistant", "hello", 1)]
    stored = await cosmos.write_blocks(made)
    assert [b.id for b in stored] == [b.id for b in made]
    assert await cosmos.get_latest_sequence("s1") == 3
    got = await cosmos.read_blocks("s1", since_sequence=1)
    assert [b.data["content"] for b in got] == ["hi", "hello"]
    assert await cosmos.get_latest_sequence("nope") == 0


async def test_cosmos_two_writers_interleave_without_loss(cosmos: CosmosBlockStorage) -> None:
    w1 = BlockWriter("s1", "u1", "laptop")
    await cosmos.write_block(w1.create_session("proj"))
    w2 = BlockWriter("s1", "u1", "desktop", head=(await cosmos.read_blocks("s1"))[-1])
    await cosmos.write_block(w1.add_message("user", "from laptop", 1))
    await cosmos.write_block(w2.add_message("user", "from desktop", 1))  # rebased
    await cosmos.write_block(w1.add_message("user", "laptop again", 2))  # rebased
    blocks = await cosmos.read_blocks("s1")
    _, messages, _ = SessionStateReader().compute_current_state(blocks)
    assert [m["content"] for m in messages] == ["from laptop", "from desktop", "laptop again"]
    assert [b.sequence for b in blocks] == [1, 2, 3, 4]


async def test_cosmos_rewind_fork_and_chunked_payloads(cosmos: CosmosBlockStorage) -> None:
    w = BlockWriter("src", "u1", "d1")
    blocks = await cosmos.write_blocks(
        [w.create_session("proj", name="source")]
        + [w.add_message("user", f"m{i}", i) for i in range(5)]
    )
    big = big_event(5)
    await cosmos.write_blocks(w.add_event(big["event_id"], big["event_type"], big["data"], 1))
    await cosmos.write_block(w.rewind(3, reason="undo"))
    await cosmos.write_block(w.add_message("user", "after", 9))
    _, messages, _ = SessionStateReader().compute_current_state(await cosmos.read_blocks("src"))
    assert [m["content"] for m in messages] == ["m0", "m1", "after"]
    f = BlockWriter("dst", "u1", "d1")
    await cosmos.write_block(f.fork(blocks[2], name="the fork"))
    await cosmos.write_block(f.add_message("user", "fork only", 9))
    meta, messages, _ = SessionStateReader().compute_current_state(await cosmos.read_blocks("dst"))
    assert [m["content"] for m in messages] == ["m0", "m1", "fork only"]
    assert meta["name"] == "the fork"
    repo = await cosmos.repository()
    rewind = next(b for b in await repo.chain("src", resolve=False)
                  if b.block_type is BlockType.REWIND)
    abandoned = await repo.chain_from(rewind.parents[1])
    assert any(b.block_type is BlockType.EVENT and b.data == big for b in abandoned)
    assert (await fsck_remote(await cosmos.remote())).ok


async def test_cosmos_list_and_delete_sessions(cosmos: CosmosBlockStorage) -> None:
    for i, slug in enumerate(["a", "b", "a"]):
        w = BlockWriter(f"s{i}", "u1", "d1")
        await cosmos.write_block(w.create_session(slug, name=f"n{i}"))
    assert [s["session_id"] for s in await cosmos.list_sessions("a")] == ["s2", "s0"]
    await cosmos.delete_session("s2")
    assert [s["session_id"] for s in await cosmos.list_sessions()] == ["s1", "s0"]
    assert await cosmos.read_blocks("s2") == []
    w = BlockWriter("s9", "u1", "d1")
    await cosmos.write_blocks([w.create_session("p"), w.delete_session()])
    assert await cosmos.get_latest_sequence("s9") == 0


async def test_cosmos_sessions_can_be_cloned(sync_env: SyncEnv, cosmos: CosmosBlockStorage) -> None:
    w = BlockWriter("s1", "u1", "d1")
    await cosmos.write_blocks([w.create_session("proj")]
                              + [w.add_message("user", f"m{i}", i) for i in range(20)])
    from amplifier_session_storage.remote.api import clone_repo

    result = await clone_repo(sync_env.spec, sync_env.root("clone"))
    # the block index written by write_blocks: one query told the clone about all 21
    assert result.sessions[0].blocks == 21
    assert result.transfer.requests < 15


# ---------------------------------------------------------------------- HybridBlockStorage
async def _wait(predicate: object, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        if await predicate():  # type: ignore[operator]
            return
        await asyncio.sleep(0.1)
    raise AssertionError("condition not reached in time")


async def test_hybrid_syncs_offline_writes_after_a_restart(sync_env: SyncEnv) -> None:
    config = _config(sync_env, local_path=sync_env.root("h1"))
    h = HybridBlockStorage(config, sync_interval=0.2, connection_verify=False)
    w = BlockWriter("s1", "u1", "d1")
    await h.write_blocks([w.create_session("proj"), w.add_message("user", "a", 1)])
    assert await h.get_pending_sessions() == ["s1"]
    assert await h.get_sync_state("s1") is SyncState.PENDING
    await h.close()  # never started: "offline", then the process ends
    h = HybridBlockStorage(config, sync_interval=0.2, connection_verify=False)
    assert await h.get_pending_sessions() == ["s1"]  # derived from refs, not memory
    await h.start()
    try:
        await _wait(lambda: _no_pending(h))
        assert await h.get_sync_state("s1") is SyncState.SYNCED
        remote = await sync_env.remote()
        repo = await h.local.repository()
        assert (await remote_heads(remote))["s1"] == await repo.head("s1")
    finally:
        await h.close()


async def _no_pending(h: HybridBlockStorage) -> bool:
    return not await h.get_pending_sessions()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_hybrid_survives_a_failed_start(sync_env: SyncEnv) -> None:
    port = _free_port()
    config = _config(sync_env, local_path=sync_env.root("h"),
                     cosmos_endpoint=f"https://127.0.0.1:{port}/")
    errors: list[Exception] = []
    h = HybridBlockStorage(config, sync_interval=0.3, connection_verify=False, policy=QUICK,
                           on_sync_error=lambda exc, sid: errors.append(exc))
    w = BlockWriter("s1", "u1", "d1")
    await h.write_blocks([w.create_session("proj"), w.add_message("user", "offline", 1)])
    await h.start()  # the remote is down: nothing listens on the port
    proxy = None
    try:
        await _wait(lambda: _has(errors), 20)
        assert await h.get_pending_sessions() == ["s1"]
        cosmos_port = urlsplit(sync_env.emu.cosmos_endpoint).port
        assert cosmos_port is not None
        proxy = FaultProxy("127.0.0.1", cosmos_port, tls=True, rate=0.0, listen_port=port,
                           service="cosmos", lifetime=120)
        await proxy.start()  # the remote comes up
        await _wait(lambda: _no_pending(h), 30)
        assert h.last_error is None
    finally:
        await h.close()
        if proxy is not None:
            await proxy.stop()


async def _has(items: list[Exception]) -> bool:
    return bool(items)


async def test_hybrid_conflict_is_merged_without_duplicates(sync_env: SyncEnv) -> None:
    one = HybridBlockStorage(_config(sync_env, local_path=sync_env.root("one"), device_id="one"),
                             connection_verify=False)
    two = HybridBlockStorage(_config(sync_env, local_path=sync_env.root("two"), device_id="two"),
                             connection_verify=False)
    try:
        w = BlockWriter("s", "u1", "one")
        await one.write_blocks([w.create_session("proj"), w.add_message("user", "base", 1)])
        assert await one.force_sync() == {"s": SyncState.SYNCED}
        await two.force_sync()
        assert [b.id for b in await two.read_blocks("s")] == [
            b.id for b in await one.read_blocks("s")]
        # both devices write while apart
        w1 = BlockWriter("s", "u1", "one", head=(await one.read_blocks("s"))[-1])
        w2 = BlockWriter("s", "u1", "two", head=(await two.read_blocks("s"))[-1])
        await one.write_blocks([w1.add_message("user", "one-a", 2),
                                w1.add_message("user", "one-b", 3)])
        await two.write_blocks([w2.add_message("user", "two-a", 2)])
        await one.force_sync()
        assert await two.force_sync() == {"s": SyncState.SYNCED}  # merged, then pushed
        await one.force_sync()  # fast-forward to the merge
        a, b = await one.read_blocks("s"), await two.read_blocks("s")
        assert [x.id for x in a] == [x.id for x in b]
        seqs = [x.sequence for x in a]
        assert seqs == sorted(set(seqs))  # never two blocks at one sequence
        assert a[-1].block_type is BlockType.MERGE
        # the merged view (Repository.materialize splices the other line in by time)
        states = [await (await h.local.repository()).materialize("s") for h in (one, two)]
        assert states[0] == states[1]
        texts = [m["content"] for m in states[0].messages]
        assert sorted(texts) == sorted(["base", "one-a", "one-b", "two-a"])
        assert await one.get_pending_sessions() == await two.get_pending_sessions() == []
    finally:
        await one.close()
        await two.close()


async def test_hybrid_manual_conflict_then_remote_wins(sync_env: SyncEnv) -> None:
    seen: list[object] = []
    one = HybridBlockStorage(_config(sync_env, local_path=sync_env.root("m1")),
                             connection_verify=False)
    two = HybridBlockStorage(_config(sync_env, local_path=sync_env.root("m2")),
                             conflict_resolution=ConflictResolution.MANUAL,
                             on_conflict=seen.append, connection_verify=False)
    try:
        w = BlockWriter("s", "u1", "one")
        await one.write_blocks([w.create_session("proj")])
        await one.force_sync()
        await two.force_sync()
        await one.write_block(w.add_message("user", "remote", 1))
        await one.force_sync()
        w2 = BlockWriter("s", "u1", "two", head=(await two.read_blocks("s"))[-1])
        await two.write_block(w2.add_message("user", "local", 1))
        assert await two.force_sync() == {"s": SyncState.CONFLICT}
        conflicts = await two.get_conflicts()
        assert [c.session_id for c in conflicts] == ["s"] and seen == conflicts
        assert await two.get_sync_state("s") is SyncState.CONFLICT
        assert await two.resolve_conflict("s", ConflictResolution.REMOTE_WINS) is SyncState.SYNCED
        _, messages, _ = SessionStateReader().compute_current_state(await two.read_blocks("s"))
        assert [m["content"] for m in messages] == ["remote"]
        assert await two.get_conflicts() == []
    finally:
        await one.close()
        await two.close()
