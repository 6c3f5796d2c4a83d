"""Push from one repository, clone into another: same ids, same sessions (emulators)."""

from __future__ import annotations

from sync_support import SyncEnv, big_event, make_session, message, object_ids, session_refs

from amplifier_session_storage.core.objects import BlockType, ChunkedPayload
from amplifier_session_storage.remote.api import clone_repo
from amplifier_session_storage.remote.checks import fsck_remote
from amplifier_session_storage.remote.lazy import open_repository
from amplifier_session_storage.remote.push import push
from amplifier_session_storage.repository.maintenance import fsck


async def test_push_then_clone_gives_identical_ids_and_sessions(sync_env: SyncEnv) -> None:
    a = await sync_env.repo("a")
    await make_session(a, "s1", 12, big=2)
    # fork s1 at sequence 6 and continue the fork with its own blocks
    at = await a.resolve_rev("s1", 6)
    await a.fork("s1", "s2", at=at, metadata={"name": "the fork"})
    await a.append_many("s2", [(BlockType.MESSAGE, message(i, "fork"), None) for i in range(4)])
    # rewind s1 and continue: the abandoned blocks stay reachable
    target = await a.resolve_rev("s1", 9)
    await a.rewind("s1", target, reason="undo")
    await a.append("s1", BlockType.MESSAGE, message(99, "after"))
    # merge the fork's line into a third session forked from s1
    await a.fork("s1", "s3", at=await a.resolve_rev("s1", 4))
    await a.append("s3", BlockType.EVENT, big_event(7))
    s2_head = await a.head("s2")
    assert s2_head is not None
    assert await a.merge("s3", s2_head, reason="join") is not None
    remote = await sync_env.remote()
    result = await push(a, remote)
    assert {s.status for s in result.sessions} == {"created"}
    assert (await fsck_remote(remote)).ok

    cloned = await clone_repo(sync_env.spec, sync_env.root("b"))
    assert {s.integration for s in cloned.sessions} == {"created"}
    b = await open_repository(sync_env.root("b"))
    try:
        assert await session_refs(b) == await session_refs(a)
        assert await object_ids(b) == await object_ids(a)
        for sid in ("s1", "s2", "s3"):
            assert await b.materialize(sid) == await a.materialize(sid)
            assert await b.catalog.get(sid) == await a.catalog.get(sid)
        assert (await fsck(b)).ok
        # chunked payloads came along and resolve
        events = (await b.materialize("s3")).events
        assert any(len(str(e.get("data"))) > 100_000 for e in events)
        # tracking refs say what the remote has
        assert await b.refs.get("remotes/origin/sessions/s3") == await a.head("s3")
    finally:
        await b.close()


async def test_shared_history_of_a_fork_is_uploaded_once(sync_env: SyncEnv) -> None:
    a = await sync_env.repo("a")
    await make_session(a, "src", 30, big=1)
    remote = await sync_env.remote()
    first = await push(a, remote, ["src"])
    src_objects = len(await object_ids(a))
    assert first.objects == src_objects  # everything, once
    await a.fork("src", "fork", at=await a.resolve_rev("src", 20))
    await a.append_many("fork", [(BlockType.MESSAGE, message(i, "f"), None) for i in range(3)])
    second = await push(a, remote, ["fork"])
    # the FORK block and three messages: the 20 shared blocks and their chunks stay put
    assert second.objects == 4
    assert second.sessions[0].blocks == 4
    third = await push(a, remote)
    assert third.objects == 0
    assert {s.status for s in third.sessions} == {"up-to-date"}


async def test_chunked_payload_dedups_across_sessions(sync_env: SyncEnv) -> None:
    a = await sync_env.repo("a")
    await make_session(a, "x", 2)
    await a.append("x", BlockType.EVENT, big_event(1))
    remote = await sync_env.remote()
    await push(a, remote, ["x"])
    block = await a.get_block(await a.require_head("x"), resolve=False)
    assert isinstance(block.data, ChunkedPayload) and len(block.data.chunk_ids) > 3
    await make_session(a, "y", 2)
    await a.append("y", BlockType.EVENT, big_event(1))  # the same payload
    result = await push(a, remote, ["y"])
    assert result.objects == 4  # SESSION_CREATED, two messages, the event block: no chunks
