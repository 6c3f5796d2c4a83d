"""Incremental pushes send only what is new; a push killed midway resumes (emulators)."""

from __future__ import annotations

import asyncio
import json
import random
import signal

import pytest
from sync_support import SyncEnv, big_event, make_session, message, object_ids, run_cli

from amplifier_session_storage.core.objects import BlockType
from amplifier_session_storage.remote.checks import fsck_remote
from amplifier_session_storage.remote.fetch import remote_heads
from amplifier_session_storage.remote.push import push


async def test_incremental_push_uploads_exactly_the_new_objects(sync_env: SyncEnv) -> None:
    a = await sync_env.repo("a")
    await make_session(a, "small", 40)
    await make_session(a, "large", 400)
    remote = await sync_env.remote()
    await push(a, remote)
    costs = []
    for sid in ("small", "large"):
        await a.append_many(sid, [(BlockType.MESSAGE, message(i, "new"), None) for i in range(10)])
        result = await push(a, remote, [sid])
        assert result.objects == 10 and result.sessions[0].blocks == 10
        costs.append(result.transfer.requests)
    assert costs[0] == costs[1]  # O(k): the session's length does not matter
    # a chunked payload: only the chunks the remote lacks go
    await a.append("small", BlockType.EVENT, big_event(3))
    block = await a.get_block(await a.require_head("small"), resolve=False)
    result = await push(a, remote, ["small"])
    assert result.objects == 1 + len(block.object_refs())
    await a.append("large", BlockType.EVENT, big_event(3))
    assert (await push(a, remote, ["large"])).objects == 1
    assert (await fsck_remote(remote)).ok


@pytest.mark.slow
async def test_push_killed_midway_resumes_and_remote_stays_whole(sync_env: SyncEnv) -> None:
    a = await sync_env.repo("a")
    sids = [f"s{k}" for k in range(5)]
    for sid in sids:
        await make_session(a, sid, 1500, big=6)
    root = sync_env.root("a")
    total = len(await object_ids(a))
    remote = await sync_env.remote()
    rng = random.Random(20261124)
    killed_midway = 0
    for _ in range(5):
        # Kill the push at a random moment after one of its packs landed (pushes are fast:
        # a fixed delay would land before or after the push, not in it).
        await remote.blobs.refresh()
        packs_before = remote.blobs.stats()["packs"]
        proc = run_cli(["--repo", str(root), "-q", "push", "--all"], sync_env.cli_env(root))
        while proc.poll() is None:
            await remote.blobs.refresh()
            if remote.blobs.stats()["packs"] > packs_before:
                await asyncio.sleep(rng.uniform(0.0, 0.2))
                break
            await asyncio.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        report = await fsck_remote(remote)
        # never a ref to a missing object, never an object document without its parts
        assert report.ok, report.problems
        heads = await remote_heads(remote)
        if 0 < report.object_docs < total and len(heads) < len(sids):
            killed_midway += 1
    assert killed_midway >= 1, "no kill landed in the middle of a push"
    # Run again at once: a kill inside a local ref update left that ref's lock behind, and
    # the local store breaks a dead writer's lock once it is 2 s old (dead_lock_after),
    # well within the 10 s a writer waits for a lock.
    landed = (await fsck_remote(remote)).object_docs
    done = sync_env.sessctl("--json", "push", "--all", repo=root, check=True)
    result = json.loads(done.stdout)
    assert result["objects"] == total - landed  # what had landed was not sent again
    final = await fsck_remote(remote)
    assert final.ok and final.object_docs == total
    heads = await remote_heads(remote)
    assert heads == {sid: await a.head(sid) for sid in sids}
