"""Concurrent pushes, pull (fast-forward, merge), lazy fetch, ahead/behind (emulators)."""

from __future__ import annotations

import asyncio

import pytest
from sync_support import SyncEnv, big_event, make_session, message

from amplifier_session_storage.core.objects import BlockType, ChunkedPayload
from amplifier_session_storage.errors import NotFastForwardError
from amplifier_session_storage.remote.api import clone_repo, fetch_repo
from amplifier_session_storage.remote.checks import fsck_remote, remote_status
from amplifier_session_storage.remote.fetch import fetch, pull
from amplifier_session_storage.remote.lazy import PromisorObjectStore, open_repository
from amplifier_session_storage.remote.push import PushRejectedError, push
from amplifier_session_storage.repository.maintenance import fsck
from amplifier_session_storage.repository.repo import Repository


async def _two_clones(sync_env: SyncEnv) -> tuple[Repository, Repository]:
    a = await sync_env.repo("a")
    await make_session(a, "s", 5)
    await push(a, await sync_env.remote())
    for name in ("b", "c"):
        await clone_repo(sync_env.spec, sync_env.root(name))
    b = await sync_env.repo("b", user_id="bob")
    c = await sync_env.repo("c", user_id="carol")
    return b, c


async def test_two_clones_push_at_once_exactly_one_wins(sync_env: SyncEnv) -> None:
    b, c = await _two_clones(sync_env)
    for repo, who in ((b, "b"), (c, "c")):
        await repo.append_many(
            "s", [(BlockType.MESSAGE, message(i, who), None) for i in range(3)]
        )
    rb, rc = await sync_env.remote(), await sync_env.remote()
    outcomes = await asyncio.gather(push(b, rb), push(c, rc), return_exceptions=True)
    wins = [o for o in outcomes if not isinstance(o, BaseException)]
    losses = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(wins) == 1 and len(losses) == 1
    assert isinstance(losses[0], PushRejectedError) and isinstance(losses[0], NotFastForwardError)
    assert "pull" in str(losses[0])
    loser, loser_remote = (c, rc) if wins[0].sessions[0].new == await b.head("s") else (b, rb)
    # nothing is lost: pull merges the winner's blocks, then the push goes through
    merged = await pull(loser, loser_remote)
    assert merged.sessions[0].integration == "merged"
    again = await push(loser, loser_remote)
    assert again.sessions[0].status == "fast-forward"
    remote = await sync_env.remote()
    final = await sync_env.repo("check")
    await pull(final, remote)
    texts = [m["content"] for m in (await final.materialize("s")).messages]
    for who in ("b", "c"):
        assert [t for t in texts if t.startswith(who)] == [f"{who}{i}" for i in range(3)]
    assert len(texts) == len(set(texts)) == 11
    assert (await fsck_remote(remote)).ok


async def test_two_cli_pushes_at_once_one_exits_4(sync_env: SyncEnv) -> None:
    b, c = await _two_clones(sync_env)
    for repo, who in ((b, "b"), (c, "c")):
        await repo.append("s", BlockType.MESSAGE, message(1, who))
    from sync_support import run_cli

    procs = [
        run_cli(["-q", "push", "s"], sync_env.cli_env(sync_env.root(name))) for name in "bc"
    ]
    codes = sorted(p.wait(timeout=120) for p in procs)
    errors = "".join(p.communicate()[1] for p in procs)
    assert codes == [0, 4], errors
    assert "not a fast-forward" in errors or "another push won" in errors


async def test_pull_fast_forward_and_diverged_merge(sync_env: SyncEnv) -> None:
    a = await sync_env.repo("a")
    await make_session(a, "s", 4)
    remote = await sync_env.remote()
    await push(a, remote)
    b = await sync_env.repo("b")
    first = await pull(b, remote)
    assert first.sessions[0].integration == "created"
    await a.append_many("s", [(BlockType.MESSAGE, message(i, "a"), None) for i in range(2)])
    await push(a, remote)
    ff = await pull(b, remote)
    assert ff.sessions[0].integration == "fast-forward"
    assert await b.head("s") == await a.head("s")
    # both sides move: pull merges (a MERGE block), nothing duplicated
    await a.append("s", BlockType.MESSAGE, message(7, "from-a"))
    await push(a, remote)
    await b.append("s", BlockType.MESSAGE, message(8, "from-b"))
    with pytest.raises(PushRejectedError):
        await push(b, remote)
    merged = await pull(b, remote)
    assert merged.sessions[0].integration == "merged"
    head = await b.get_block(await b.require_head("s"), resolve=False)
    assert head.block_type is BlockType.MERGE and head.parents[1] == await a.head("s")
    texts = [m["content"] for m in (await b.materialize("s")).messages]
    assert texts[-2:] in (["from-a7", "from-b8"], ["from-b8", "from-a7"])
    assert len(texts) == len(set(texts))
    await push(b, remote)
    up = await pull(a, remote)
    assert up.sessions[0].integration == "fast-forward"
    assert await a.materialize("s") == await b.materialize("s")
    # a local head ahead of the remote is left alone
    await a.append("s", BlockType.MESSAGE, message(9, "ahead"))
    assert (await pull(a, remote)).sessions[0].integration == "ahead"


async def test_lazy_fetch_reads_chunks_on_demand(sync_env: SyncEnv) -> None:
    a = await sync_env.repo("a")
    await make_session(a, "s", 3)
    await a.append("s", BlockType.EVENT, big_event(11))
    remote = await sync_env.remote()
    await push(a, remote)
    cloned = await clone_repo(sync_env.spec, sync_env.root("lazy"), lazy=True)
    block = await a.get_block(await a.require_head("s"), resolve=False)
    assert isinstance(block.data, ChunkedPayload)
    assert cloned.objects == 5  # blocks only
    b = await open_repository(sync_env.root("lazy"))
    try:
        assert isinstance(b.objects, PromisorObjectStore)
        report = await fsck(b)
        missing = {p["object"] for p in report.problems if p["kind"] == "missing-chunk"}
        promised = getattr(report, "promised", 0)  # once maintenance.fsck knows promisors
        assert missing <= {c.hex() for c in block.data.chunk_ids}
        assert len(missing) + promised == len(block.data.chunk_ids)
        state = await b.materialize("s")  # reads the chunked payload: fetched on demand
        assert state == await a.materialize("s")
        assert b.objects.fetched == len(block.data.chunk_ids)
        assert not [p for p in (await fsck(b)).problems if p["kind"] == "missing-chunk"]
    finally:
        await b.close()


async def test_fetch_moves_tracking_refs_only_and_status_counts(sync_env: SyncEnv) -> None:
    a = await sync_env.repo("a")
    await make_session(a, "s", 4)
    await make_session(a, "t", 2)
    remote = await sync_env.remote()
    await push(a, remote)
    b = await sync_env.repo("b")
    await pull(b, remote)
    await a.append_many("s", [(BlockType.MESSAGE, message(i, "x"), None) for i in range(3)])
    await push(a, remote)
    await b.append_many("s", [(BlockType.MESSAGE, message(i, "y"), None) for i in range(2)])
    await b.append("t", BlockType.MESSAGE, message(1, "z"))
    before = await b.head("s")
    result = await fetch(b, remote)
    assert {s.session_id: s.status for s in result.sessions} == {"s": "updated",
                                                                  "t": "up-to-date"}
    assert await b.head("s") == before  # fetch never touches local sessions
    status = {st.session_id: st for st in await remote_status(b, "origin")}
    assert (status["s"].state, status["s"].ahead, status["s"].behind) == ("diverged", 2, 3)
    assert (status["t"].state, status["t"].ahead, status["t"].behind) == ("ahead", 1, 0)
    await make_session(b, "u", 1)
    status = {st.session_id: st for st in await remote_status(b, "origin")}
    assert (status["u"].state, status["u"].ahead) == ("local-only", 2)


async def test_fetch_repo_of_a_named_session_and_missing_one(sync_env: SyncEnv) -> None:
    a = await sync_env.repo("a")
    await make_session(a, "s", 2)
    await push(a, await sync_env.remote())
    await sync_env.repo("b")
    result = await fetch_repo(sync_env.root("b"), "origin", ["s"])
    assert [s.status for s in result.sessions] == ["new"]
    from amplifier_session_storage.errors import SessionNotFoundError

    with pytest.raises(SessionNotFoundError):
        await fetch_repo(sync_env.root("b"), "origin", ["nope"])
