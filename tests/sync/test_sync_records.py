"""How a push records objects on the remote (format 2), and format-1 remotes (emulators).

Blocks get one object document each; chunks and links (leaves) are listed by the pack
documents of the packs that hold them, their offsets being in the packs' idx blobs.
"""

from __future__ import annotations

from typing import Any

from sync_support import SyncEnv, big_event, make_session, object_ids, session_refs

from amplifier_session_storage.core.ids import ObjectId
from amplifier_session_storage.core.objects import BlockType
from amplifier_session_storage.remote.api import clone_repo
from amplifier_session_storage.remote.checks import fsck_remote
from amplifier_session_storage.remote.lazy import open_repository
from amplifier_session_storage.remote.push import push
from amplifier_session_storage.remote.session import SyncRemote
from amplifier_session_storage.repository.repo import Repository
from amplifier_session_storage.stores.cosmos_common import (
    objects_partition,
    packs_partition,
    query_all,
)
from amplifier_session_storage.stores.cosmos_index import Location


async def _blocks_and_leaves(repo: Repository) -> tuple[set[ObjectId], set[ObjectId]]:
    blocks: set[ObjectId] = set()
    leaves: set[ObjectId] = set()
    async for _, head in repo.refs.list("sessions/"):
        stack = [head]
        while stack:
            oid = stack.pop()
            if oid in blocks:
                continue
            blocks.add(oid)
            block = await repo.get_block(oid, resolve=False)
            leaves.update(block.object_refs())
            stack.extend(block.parents)
    return blocks, leaves


async def _docs(remote: SyncRemote, kind: str, partition: str) -> list[dict[str, Any]]:
    sql = "SELECT * FROM c WHERE c.type = @t"
    return await query_all(
        remote.index.container, sql, [{"name": "@t", "value": kind}], partition=partition
    )


async def test_blocks_get_object_documents_and_leaves_pack_documents(sync_env: SyncEnv) -> None:
    a = await sync_env.repo("a")
    await make_session(a, "s1", 20, big=3)
    remote = await sync_env.remote()
    result = await push(a, remote)
    blocks, leaves = await _blocks_and_leaves(a)
    assert leaves and result.objects == len(blocks) + len(leaves)
    user = remote.user_id
    object_docs = await _docs(remote, "object", objects_partition(user))
    assert {ObjectId.from_hex(str(d["id"])) for d in object_docs} == blocks
    pack_docs = await _docs(remote, "pack", packs_partition(user))
    listed = [ObjectId.from_hex(str(h)) for d in pack_docs for h in d["objects"]]
    assert sorted(listed) == sorted(leaves)  # each leaf once, no block
    report = await fsck_remote(remote)
    assert report.ok and report.object_docs == len(blocks) + len(leaves)
    assert report.pack_docs == len(pack_docs)
    # the generic object store finds a leaf through its pack document and the idx
    leaf = next(iter(leaves))
    assert await remote.objects.get(leaf) == await a.objects.get(leaf)
    assert await remote.objects.has(leaf)


async def test_fsck_remote_reports_a_pack_document_that_lies(sync_env: SyncEnv) -> None:
    a = await sync_env.repo("a")
    await make_session(a, "s1", 3, big=1)
    remote = await sync_env.remote()
    await push(a, remote)
    packs = await _docs(remote, "pack", packs_partition(remote.user_id))
    pack = str(packs[0]["pack"])
    stranger = ObjectId.of(b"not in that pack")
    await remote.index.put_pack(remote.user_id, pack, [stranger])  # part 0 rewritten
    ghost = "f" * 64
    await remote.index.put_pack(remote.user_id, ghost, [ObjectId.of(b"no such pack")])
    report = await fsck_remote(remote)
    kinds = {(p["kind"], p["object"]) for p in report.problems}
    assert ("not-in-pack", stranger.hex()) in kinds
    assert ("unreadable", ObjectId.of(b"no such pack").hex()) in kinds
    # the leaves part 0 listed before are no longer recorded: their blocks say so
    assert any(k == "missing-chunk" for k, _ in kinds)


async def test_a_format_1_remote_is_read_and_its_leaves_sent_once_more(
    sync_env: SyncEnv,
) -> None:
    a = await sync_env.repo("a")
    await make_session(a, "s1", 5, big=2)
    remote = await sync_env.remote()
    await push(a, remote)
    # Turn the remote into format 1: an object document for every leaf, no pack document.
    user, index = remote.user_id, remote.index
    legacy: list[tuple[ObjectId, Location]] = []
    for doc in await _docs(remote, "pack", packs_partition(user)):
        entries = await remote.blobs.pack_index(str(doc["pack"]))
        for h in doc["objects"]:
            oid = ObjectId.from_hex(str(h))
            legacy.append((oid, Location(str(doc["pack"]), *entries[oid])))
        await index.container.delete_item(str(doc["id"]), partition_key=packs_partition(user))
    await index.put_objects(user, legacy)
    assert (await fsck_remote(remote)).ok
    # clone (fetch, chunks located through object documents) and lazy reads work
    await clone_repo(sync_env.spec, sync_env.root("b"))
    b = await open_repository(sync_env.root("b"))
    try:
        assert await session_refs(b) == await session_refs(a)
        assert await object_ids(b) == await object_ids(a)
        assert await b.materialize("s1") == await a.materialize("s1")
    finally:
        await b.close()
    await clone_repo(sync_env.spec, sync_env.root("c"), lazy=True)
    c = await open_repository(sync_env.root("c"))
    try:
        assert await c.materialize("s1") == await a.materialize("s1")
    finally:
        await c.close()
    # a push whose new block reuses old chunks sends them once more, listed this time
    await a.append("s1", BlockType.EVENT, big_event(hash(("s1", 0)) & 0xFFFF))
    block = await a.get_block(await a.require_head("s1"), resolve=False)
    again = await push(a, remote, ["s1"])
    assert again.objects == 1 + len(set(block.object_refs()))
    assert (await fsck_remote(remote)).ok
