"""Cosmos DB index, refs, catalog and visibility on the patched emulator."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from azure_support import AzureResources

from amplifier_session_storage.core.codec import frame
from amplifier_session_storage.core.ids import ObjectId
from amplifier_session_storage.core.objects import Block, BlockType
from amplifier_session_storage.errors import ConfigurationError, InvalidInputError
from amplifier_session_storage.repository.repo import Repository
from amplifier_session_storage.stores.cosmos import (
    INDEXING_POLICY,
    Access,
    CosmosIndex,
    CosmosRefStore,
    Location,
    Reader,
    ensure_container,
    objects_partition,
    packs_partition,
    refs_partition,
    session_partition,
    sessions_partition,
)
from amplifier_session_storage.stores.cosmos_common import query_all
from amplifier_session_storage.stores.cosmos_index import PACK_DOC_OBJECTS

pytestmark = pytest.mark.emulators

LOC = Location("0" * 64, 8 + 36, 100)


def chain(session_id: str, n: int, user: str = "u1") -> list[Block]:
    blocks: list[Block] = []
    for i in range(1, n + 1):
        parents = [blocks[-1].id] if blocks else []
        blocks.append(
            Block(
                BlockType.MESSAGE,
                session_id,
                parents,
                i,
                1_700_000_000_000_000_000 + i,
                "dev",
                user,
                {"i": i},
            )
        )
    return blocks


# ---------------------------------------------------------------------- container
async def test_ensure_container_is_idempotent_and_checks_the_partition_key(
    azure: AzureResources,
) -> None:
    remote = await azure.remote()
    config = azure._configs[-1]
    client = azure._clients[-1].cosmos()
    again = await ensure_container(config, client)
    props = await again.read()
    assert props["partitionKey"]["paths"] == ["/partitionKey"]
    excluded = {p["path"] for p in props["indexingPolicy"]["excludedPaths"]}
    assert {p["path"] for p in INDEXING_POLICY["excludedPaths"]} <= excluded
    other = azure.config(cosmos_container=config.cosmos_container, cosmos_partition_key_path="/pk")
    with pytest.raises(ConfigurationError):
        await ensure_container(other, client)
    assert remote.user_id == "u1"


async def test_custom_partition_key_path(azure: AzureResources) -> None:
    remote = await azure.remote(cosmos_partition_key_path="/pk")
    assert await remote.refs.set_if_equals("sessions/s1", None, ObjectId.of(b"x"))
    await remote.objects.put(ObjectId.of(b"y"), frame(b"y"))  # a leaf: a pack document
    block = chain("s1", 1)[0]
    await remote.objects.put(block.id, frame(block.encoded.canonical))  # a block: object doc
    raw = await query_all(remote.container, "SELECT * FROM c WHERE c.type = 'object'")
    assert [d["id"] for d in raw] == [block.block_id]
    assert all(d["pk"] == objects_partition("u1") for d in raw)
    packs = await query_all(remote.container, "SELECT * FROM c WHERE c.type = 'pack'")
    assert [d["objects"] for d in packs] == [[ObjectId.of(b"y").hex()]]
    assert all(d["pk"] == packs_partition("u1") for d in packs)


# ---------------------------------------------------------------------- blocks and paging
async def test_blocks_since_pages_with_continuation_tokens(azure: AzureResources) -> None:
    remote = await azure.remote()
    blocks = chain("s1", 250)
    access = Access("team", "org1", ("t1",))
    assert await remote.index.put_blocks("u1", "s1", [(b, LOC) for b in blocks], access) == 250
    docs = await remote.index.blocks_since("u1", "s1", 0, page_size=40)
    assert [d["sequence"] for d in docs] == list(range(1, 251))
    assert docs[0]["id"] == blocks[0].block_id
    assert docs[1]["parents"] == [blocks[0].block_id]
    assert docs[0]["visibility"] == "team" and docs[0]["team_ids"] == ["t1"]
    assert docs[0]["timestamp_ns"] == str(blocks[0].timestamp_ns)  # exact, not a double
    assert "_etag" not in docs[0]
    assert [d["sequence"] for d in await remote.index.blocks_since("u1", "s1", 200)] == list(
        range(201, 251)
    )
    # page by page, each page resumed by a NEW index object from the token alone
    seen: list[int] = []
    token: str | None = None
    pages = 0
    while True:
        index = CosmosIndex(remote.container)
        page = await index.blocks_page("u1", "s1", 0, limit=40, continuation=token)
        seen += [d["sequence"] for d in page.items]
        pages += 1
        token = page.continuation
        if token is None:
            break
    assert seen == list(range(1, 251))
    assert pages == 7
    # upserts are idempotent
    await remote.index.put_blocks("u1", "s1", [(b, LOC) for b in blocks[:5]], access)
    assert len(await remote.index.blocks_since("u1", "s1")) == 250
    assert await remote.index.missing_blocks("u1", "s1", [blocks[3].id, ObjectId.of(b"no")]) == {
        ObjectId.of(b"no")
    }


async def test_partition_scoped_queries_never_see_other_partitions(azure: AzureResources) -> None:
    remote = await azure.remote()
    index = remote.index
    # naive "{user}_{session}" would put these two in ONE partition ("a_b_c")
    await index.put_blocks("a_b", "c", [(b, LOC) for b in chain("c", 3, "a_b")])
    await index.put_blocks("a", "b_c", [(b, LOC) for b in chain("b_c", 4, "a")])
    await index.put_blocks("a", "c", [(b, LOC) for b in chain("c", 5, "a")])
    assert session_partition("a_b", "c") != session_partition("a", "b_c")
    one = await index.blocks_since("a_b", "c")
    two = await index.blocks_since("a", "b_c")
    three = await index.blocks_since("a", "c")
    assert [(d["user_id"], d["session_id"]) for d in one] == [("a_b", "c")] * 3
    assert [(d["user_id"], d["session_id"]) for d in two] == [("a", "b_c")] * 4
    assert [(d["user_id"], d["session_id"]) for d in three] == [("a", "c")] * 5
    # the special partitions cannot be a session's: "#" is not allowed in a session id
    with pytest.raises(InvalidInputError):
        session_partition("a", "#objects")
    # a raw partition-scoped query returns only that partition's documents
    pk = session_partition("a", "c")
    raw = await query_all(remote.container, "SELECT * FROM c", partition=pk)
    assert len(raw) == 5 and {d["partitionKey"] for d in raw} == {pk}


async def test_missing_uses_slices_of_lookup_queries(azure: AzureResources) -> None:
    remote = await azure.remote()
    present = [ObjectId.of(b"p%d" % i) for i in range(300)]
    absent = [ObjectId.of(b"a%d" % i) for i in range(400)]
    await remote.index.put_objects("u1", [(o, LOC) for o in present])
    # another user's objects are not ours
    await remote.index.put_objects("u2", [(o, LOC) for o in absent[:50]])
    assert await remote.index.missing("u1", present + absent) == set(absent)
    assert await remote.index.missing("u2", absent[:50]) == set()
    located = await remote.index.locate_many("u1", present[:10] + absent[:10])
    assert set(located) == set(present[:10]) and located[present[0]] == LOC
    assert await remote.index.locate("u1", present[0]) == LOC
    assert await remote.index.locate("u1", absent[0]) is None
    assert len([o async for o in remote.index.list_objects("u1")]) == 300


async def test_pack_documents_list_leaves(azure: AzureResources) -> None:
    remote = await azure.remote()
    index = remote.index
    pack_a, pack_b = "a" * 64, "b" * 64
    leaves = [ObjectId.of(b"leaf%d" % i) for i in range(PACK_DOC_OBJECTS + 700)]
    # parts of at most PACK_DOC_OBJECTS ids, each far below the size limit
    assert await index.put_pack("u1", pack_a, leaves) == 2
    assert await index.put_pack("u1", pack_a, leaves) == 2  # idempotent
    assert await index.put_pack("u1", pack_b, leaves[:10]) == 1  # also in another pack
    await index.put_pack("u2", pack_b, leaves[-5:])  # another user's are not ours
    unknown = [ObjectId.of(b"nope%d" % i) for i in range(1500)]
    found = await index.packs_of("u1", leaves + unknown)  # several lookup slices
    assert set(found) == set(leaves)
    assert {found[o] for o in leaves[10:]} == {pack_a}
    assert await index.missing("u1", leaves + unknown) == set(unknown)
    listed = [o async for o in index.list_objects("u1")]
    assert sorted(listed) == sorted(leaves)  # each once
    assert len([p async for p in index.list_packs("u1")]) == 3
    # forgetting a leaf takes it out of every pack document; an emptied one is deleted
    assert await index.delete_object("u1", leaves[3]) is True
    assert await index.delete_object("u1", leaves[3]) is False
    assert leaves[3] not in await index.packs_of("u1", leaves[:20])
    for oid in leaves[:10]:
        await index.delete_object("u2", oid)  # not u2's: nothing happens
    assert await index.packs_of("u2", leaves[-5:]) == dict.fromkeys(leaves[-5:], pack_b)
    docs = await query_all(remote.container, "SELECT * FROM c WHERE c.type = 'pack'",
                           partition=packs_partition("u1"))
    assert sum(len(d["objects"]) for d in docs) == len(leaves) - 1 + 9


# ---------------------------------------------------------------------- sessions
async def test_list_sessions_pages_newest_first(azure: AzureResources) -> None:
    remote = await azure.remote()
    base = time.time_ns()
    for i in range(130):
        summary = {
            "session_id": f"s{i:03d}",
            "project_slug": "proj-a" if i % 2 else "proj-b",
            "name": f"session {i}",
            "created_ns": base + i,
            "updated_ns": base + 1000 + i,
        }
        await remote.index.put_session("u1", f"s{i:03d}", summary)
    await remote.index.put_session("u2", "other", {"updated_ns": base + 10**9})
    ids: list[str] = []
    token = None
    sizes = []
    while True:
        page = await remote.index.list_sessions("u1", limit=50, continuation=token)
        ids += [d["session_id"] for d in page.items]
        sizes.append(len(page.items))
        token = page.continuation
        if token is None:
            break
    assert sizes == [50, 50, 30]
    assert ids == [f"s{i:03d}" for i in reversed(range(130))]
    page = await remote.index.list_sessions("u1", "proj-a", limit=1000)
    assert [d["session_id"] for d in page.items] == [
        f"s{i:03d}" for i in reversed(range(130)) if i % 2
    ]
    with pytest.raises(InvalidInputError):
        await remote.index.list_sessions("u1", continuation="not a token")
    with pytest.raises(InvalidInputError):
        await remote.index.list_sessions("u1", limit=0)


async def test_catalog_round_trips_exactly_and_keeps_the_head(azure: AzureResources) -> None:
    remote = await azure.remote()
    doc: dict[str, Any] = {
        "session_id": "s1",
        "project_slug": "p",
        "name": "Ünïcode name",
        "created_ns": 1_712_345_678_123_456_789,  # > 2**53: a double would round it
        "updated_ns": 1_712_345_678_123_456_790,
        "tags": ["a", "b"],
        "visibility": "org",
        "org_id": "o1",
        "user_id": "device-author",
    }
    await remote.catalog.put("s1", doc)
    assert await remote.catalog.get("s1") == doc
    head = ObjectId.of(b"head")
    await remote.index.put_session("u1", "s1", doc, head)
    await remote.catalog.put("s1", {**doc, "name": "renamed"})
    stored = await remote.index.get_session("u1", "s1")
    assert stored is not None and stored["head"] == head.hex() and stored["name"] == "renamed"
    assert stored["partitionKey"] == sessions_partition("u1")
    assert [d async for d in remote.catalog.list()] == [{**doc, "name": "renamed"}]
    await remote.catalog.delete("s1")
    await remote.catalog.delete("s1")
    assert await remote.catalog.get("s1") is None
    with pytest.raises(InvalidInputError):
        await remote.catalog.put("s2", {"description": "x" * 300_000})  # far below 2 MB only


# ---------------------------------------------------------------------- visibility
async def test_visible_sessions_follow_the_rules(azure: AzureResources) -> None:
    index = (await azure.remote()).index
    now = time.time_ns()
    sessions = [
        ("alice", "a-private", {"visibility": "private", "org_id": "org1"}),
        ("alice", "a-team", {"visibility": "team", "org_id": "org1", "team_ids": ["t1", "t2"]}),
        ("alice", "a-team3", {"visibility": "team", "org_id": "org1", "team_ids": ["t3"]}),
        ("alice", "a-org", {"visibility": "org", "org_id": "org1"}),
        ("alice", "a-public", {"visibility": "public"}),
        ("bob", "b-org2", {"visibility": "org", "org_id": "org2"}),
        ("bob", "b-team-org2", {"visibility": "team", "org_id": "org2", "team_ids": ["t1"]}),
        ("bob", "b-public", {"visibility": "public", "org_id": "org2"}),
    ]
    for i, (user, sid, fields) in enumerate(sessions):
        await index.put_session(user, sid, {**fields, "updated_ns": now + i})

    async def visible(reader: Reader) -> set[str]:
        page = await index.list_visible_sessions(reader, limit=100)
        assert page.continuation is None
        return {d["session_id"] for d in page.items}

    carol = Reader("carol", "org1", ("t1",))
    assert await visible(carol) == {"a-team", "a-org", "a-public", "b-public"}
    # the v0.1.0 bug: a user whose id equals a team id is not a member of that team
    t1 = Reader("t1", "org1", ())
    assert await visible(t1) == {"a-org", "a-public", "b-public"}
    assert await visible(Reader("dave", None, ("t1",))) == {"a-public", "b-public"}
    erin = Reader("erin", "org2", ("t1",))
    assert await visible(erin) == {"b-org2", "b-team-org2", "b-public", "a-public"}
    # owners see their own through list_sessions, not here
    assert await visible(Reader("alice", "org1", ("t1",))) == {"b-public"}
    # paging across partitions with the seek token
    got: list[str] = []
    token = None
    while True:
        page = await index.list_visible_sessions(carol, limit=1, continuation=token)
        got += [d["session_id"] for d in page.items]
        token = page.continuation
        if token is None:
            break
    assert got == ["b-public", "a-public", "a-org", "a-team"]
    assert await index.get_visible_session(carol, "alice", "a-team") is not None
    assert await index.get_visible_session(carol, "alice", "a-private") is None
    assert await index.get_visible_session(t1, "alice", "a-team") is None


# ---------------------------------------------------------------------- refs
async def test_refs_live_in_their_partitions(azure: AzureResources) -> None:
    remote = await azure.remote()
    a, b = ObjectId.of(b"a"), ObjectId.of(b"b")
    assert await remote.refs.set_if_equals("sessions/s1", None, a, "create")
    assert await remote.refs.set_if_equals("remotes/origin/sessions/s1", None, b, "fetch")
    in_session = await query_all(
        remote.container, "SELECT * FROM c", partition=session_partition("u1", "s1")
    )
    assert sorted(d["type"] for d in in_session) == ["ref", "reflog"]
    in_refs = await query_all(remote.container, "SELECT * FROM c", partition=refs_partition("u1"))
    assert sorted(d["type"] for d in in_refs) == ["ref", "reflog"]
    # another user's refs are invisible
    other = CosmosRefStore(remote.container, "u2")
    assert await other.get("sessions/s1") is None
    assert [r async for r in other.list()] == []
    assert await other.logged_refs() == []
    # a deleted ref keeps its reflog and stays a gc root
    assert await remote.refs.set_if_equals("sessions/s1", a, None, "delete")
    assert await remote.refs.logged_refs() == ["remotes/origin/sessions/s1", "sessions/s1"]
    assert [e.new for e in await remote.refs.reflog("sessions/s1")] == [a, None]


async def test_concurrent_cas_from_two_clients_has_one_winner(azure: AzureResources) -> None:
    config = azure.config()
    first = await azure.remote(config)
    second = await azure.remote(config)  # separate clients and connections
    base = ObjectId.of(b"base")
    assert await first.refs.set_if_equals("sessions/race", None, base, "create")
    for round_ in range(5):
        cur = await first.refs.get("sessions/race")
        a, b = ObjectId.of(b"a%d" % round_), ObjectId.of(b"b%d" % round_)
        results = await asyncio.gather(
            first.refs.set_if_equals("sessions/race", cur, a, "first"),
            second.refs.set_if_equals("sessions/race", cur, b, "second"),
        )
        assert sorted(results) == [False, True]
        assert await second.refs.get("sessions/race") == (a if results[0] else b)
    log = await second.refs.reflog("sessions/race")
    assert len(log) == 6
    assert all(log[i].new == log[i + 1].old for i in range(5))
    # two concurrent creates: one wins
    results = await asyncio.gather(
        first.refs.set_if_equals("sessions/new", None, base),
        second.refs.set_if_equals("sessions/new", None, ObjectId.of(b"other")),
    )
    assert sorted(results) == [False, True]


# ---------------------------------------------------------------------- end to end
async def test_repository_runs_directly_on_the_remote(azure: AzureResources) -> None:
    config = azure.config()
    remote = await azure.remote(config)
    repo = Repository(remote.objects, remote.refs, remote.catalog, user_id="u1", device_id="d")
    await repo.create_session("s1", {"project_slug": "p", "name": "remote"})
    await repo.append("s1", BlockType.MESSAGE, {"role": "user", "content": "hi", "turn": 1})
    big = "x" * 100_000  # chunked payload: chunk objects too
    await repo.append("s1", BlockType.MESSAGE, {"role": "assistant", "content": big, "turn": 1})
    again = await azure.remote(config)
    other = Repository(again.objects, again.refs, again.catalog, user_id="u1", device_id="e")
    state = await other.materialize("s1")
    assert [m["content"] for m in state.messages] == ["hi", big]
    assert (await again.catalog.get("s1") or {}).get("name") == "remote"
