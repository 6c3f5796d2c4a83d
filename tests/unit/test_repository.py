"""The repository DAG over in-memory stores (the local store runs the same suite later)."""

from __future__ import annotations

import itertools

import pytest

from amplifier_session_storage.core.objects import BlockType
from amplifier_session_storage.errors import (
    ConflictError,
    CorruptObjectError,
    IntegrityError,
    InvalidInputError,
    NotFoundError,
    SessionNotFoundError,
)
from amplifier_session_storage.repository import Repository, fsck, gc
from amplifier_session_storage.repository.maintenance import reachable
from amplifier_session_storage.stores import MemoryObjectStore, MemoryRefStore

M = BlockType.MESSAGE


def msg(text: str, turn: int = 1) -> tuple[BlockType, dict[str, object], None]:
    return (M, {"role": "user", "content": text, "turn": turn}, None)


@pytest.fixture
def repo() -> Repository:
    return Repository(MemoryObjectStore(), MemoryRefStore(), user_id="u", device_id="dev")


async def contents(repo: Repository, sid: str) -> list[str]:
    return [m["content"] for m in (await repo.materialize(sid)).messages]


async def test_append_and_materialize(repo: Repository) -> None:
    await repo.create_session("s", {"project_slug": "p", "name": "n"})
    await repo.append_many("s", [msg(f"m{i}") for i in range(5)])
    state = await repo.materialize("s")
    assert [m["content"] for m in state.messages] == [f"m{i}" for i in range(5)]
    assert state.metadata["project_slug"] == "p"
    assert state.sequence == 6
    chain = await repo.chain("s")
    assert [b.sequence for b in chain] == [1, 2, 3, 4, 5, 6]
    assert all(b.parents == (a.id,) for a, b in itertools.pairwise(chain))


async def test_create_twice_conflicts(repo: Repository) -> None:
    await repo.create_session("s")
    with pytest.raises(ConflictError):
        await repo.create_session("s")


async def test_append_to_missing_session(repo: Repository) -> None:
    with pytest.raises(SessionNotFoundError):
        await repo.append("nope", M, {})


async def test_same_content_same_id_idempotent(repo: Repository) -> None:
    b1 = await repo.create_session("s", {"x": 1}, timestamp_ns=5)
    other = Repository(MemoryObjectStore(), MemoryRefStore(), user_id="u", device_id="dev")
    b2 = await other.create_session("s", {"x": 1}, timestamp_ns=5)
    assert b1.id == b2.id
    n = len([o async for o in repo.objects.list()])
    await repo.store_blocks([b1])
    assert len([o async for o in repo.objects.list()]) == n


async def test_lost_race_is_retried_on_new_head(repo: Repository) -> None:
    await repo.create_session("s")
    # a second writer on the same stores with a stale cached head
    other = Repository(repo.objects, repo.refs, repo.catalog, user_id="u2", device_id="d2")
    await other.append("s", M, {"content": "from other"})
    await repo.append("s", M, {"content": "from me"})  # cached head is stale -> CAS fails, retry
    assert await contents(repo, "s") == ["from other", "from me"]


async def test_expected_head_raises_conflict(repo: Repository) -> None:
    first = await repo.create_session("s")
    await repo.append("s", M, {"content": "a"})
    with pytest.raises(ConflictError):
        await repo.append("s", M, {"content": "b"}, expected_head=first.id)
    assert await contents(repo, "s") == ["a"]


async def test_fork_is_constant_and_shares_history(repo: Repository) -> None:
    await repo.create_session("src", {"name": "source"})
    blocks = await repo.append_many("src", [msg(f"m{i}") for i in range(50)])
    before = len([o async for o in repo.objects.list()])
    fork = await repo.fork("src", "dst", at=blocks[9].id, metadata={"name": "forked"})
    assert len([o async for o in repo.objects.list()]) == before + 1  # one FORK block, O(1)
    assert fork.parents == (blocks[9].id,)
    await repo.append("dst", M, {"content": "new"})
    assert await contents(repo, "dst") == [f"m{i}" for i in range(10)] + ["new"]
    assert await contents(repo, "src") == [f"m{i}" for i in range(50)]
    state = await repo.materialize("dst")
    assert state.metadata["name"] == "forked"
    assert state.metadata["forked_from"]["session_id"] == "src"


async def test_fork_at_foreign_block_refused(repo: Repository) -> None:
    await repo.create_session("a")
    b = await repo.create_session("b")
    with pytest.raises(InvalidInputError):
        await repo.fork("a", "c", at=b.id)


async def test_rewind_loses_nothing(repo: Repository) -> None:
    await repo.create_session("s")
    blocks = await repo.append_many("s", [msg(f"m{i}") for i in range(6)])
    old_head = blocks[-1].id
    rw = await repo.rewind("s", blocks[2].id, reason="wrong turn")
    assert rw.parents == (blocks[2].id, old_head)
    assert rw.data["abandoned_head"] == old_head.hex()
    await repo.append("s", M, {"content": "after"})
    assert await contents(repo, "s") == ["m0", "m1", "m2", "after"]
    live = await reachable(repo, include_reflogs=False)
    assert all(b.id in live for b in blocks)  # abandoned blocks are still reachable
    assert (await gc(repo, grace_seconds=0)).deleted == 0
    # blocks after the rewind belong to the session
    assert [b.sequence for b in await repo.chain("s")][-2:] == [5, 6]


async def test_rewind_to_block_not_in_history_refused(repo: Repository) -> None:
    await repo.create_session("s")
    other = await repo.create_session("t")
    with pytest.raises(InvalidInputError):
        await repo.rewind("s", other.id)


async def test_merge_and_merge_base(repo: Repository) -> None:
    await repo.create_session("s")
    base = (await repo.append_many("s", [msg("base")]))[-1]
    await repo.fork("s", "s-dev2", at=base.id)  # device 2 works on a copy
    ours = await repo.append("s", M, {"content": "ours"}, timestamp_ns=base.timestamp_ns + 10)
    theirs = await repo.append(
        "s-dev2", M, {"content": "theirs"}, timestamp_ns=base.timestamp_ns + 5
    )
    assert await repo.merge_base(ours.id, theirs.id) == base.id
    merged = await repo.merge("s", theirs.id)
    assert merged is not None and merged.parents == (ours.id, theirs.id)
    assert await contents(repo, "s") == ["base", "theirs", "ours"]  # interleaved by time
    assert await repo.merge("s", theirs.id) is None  # already merged


async def test_merge_fast_forward(repo: Repository) -> None:
    head = await repo.create_session("s")
    await repo.fork("s", "t", at=head.id)
    t = await repo.append("t", M, {"content": "x"})
    await repo.merge("s", t.id)
    assert await repo.head("s") == t.id


async def test_chain_since_and_limit(repo: Repository) -> None:
    await repo.create_session("s")
    await repo.append_many("s", [msg(f"m{i}") for i in range(20)])
    got = await repo.chain("s", since_sequence=10, limit=5)
    assert [b.sequence for b in got] == [11, 12, 13, 14, 15]  # sorted, then limited


async def test_resolve_rev(repo: Repository) -> None:
    await repo.create_session("s")
    blocks = await repo.append_many("s", [msg(f"m{i}") for i in range(5)])
    assert await repo.resolve_rev("s", 3) == blocks[1].id
    assert await repo.resolve_rev("s", "HEAD~1") == blocks[3].id
    assert await repo.resolve_rev("s", blocks[2].block_id[:10]) == blocks[2].id
    with pytest.raises(NotFoundError):
        await repo.resolve_rev("s", 99)
    with pytest.raises(InvalidInputError):
        await repo.resolve_rev("s", "zz")


async def test_delete_is_recoverable_from_reflog(repo: Repository) -> None:
    await repo.create_session("s", {"project_slug": "p"})
    await repo.append("s", M, {"content": "keep me"})
    await repo.delete_session("s")
    assert not await repo.exists("s")
    assert await repo.list_sessions() == []
    log = await repo.refs.reflog("sessions/s")
    last_head = log[-1].old
    assert last_head is not None
    state_blocks = await repo.chain_from(last_head)
    assert any(b.data.get("content") == "keep me" for b in state_blocks if b.block_type is M)
    assert (await gc(repo, grace_seconds=0)).deleted == 0  # the reflog keeps it alive


async def test_list_sessions_catalog(repo: Repository) -> None:
    for i in range(5):
        await repo.create_session(
            f"s{i}", {"project_slug": "a" if i % 2 else "b"}, timestamp_ns=1000 + i
        )
    assert [d["session_id"] for d in await repo.list_sessions()] == ["s4", "s3", "s2", "s1", "s0"]
    assert [d["session_id"] for d in await repo.list_sessions("a")] == ["s3", "s1"]
    assert [d["session_id"] for d in await repo.list_sessions(limit=2, offset=1)] == ["s3", "s2"]
    await repo.catalog.delete("s2")  # the catalog is derived: it can be rebuilt
    assert await repo.rebuild_catalog() == 5
    assert len(await repo.list_sessions()) == 5


async def test_fsck_reports_corruption_and_rest_stays_readable(repo: Repository) -> None:
    await repo.create_session("s")
    blocks = await repo.append_many("s", [msg(f"m{i}") for i in range(5)])
    await repo.create_session("t")
    assert (await fsck(repo)).ok
    store = repo.objects
    assert isinstance(store, MemoryObjectStore)
    victim = blocks[2].id
    data = bytearray(await store.get(victim) or b"")
    data[-1] ^= 0x40
    store.raw_set(victim, bytes(data))
    repo._cache.clear()
    report = await fsck(repo)
    assert [p["object"] for p in report.problems if p["kind"] == "corrupt"] == [victim.hex()]
    with pytest.raises(IntegrityError) as info:
        await repo.materialize("s")
    assert victim.hex() in str(info.value)
    assert (await repo.materialize("t")).blocks == 1  # the rest of the store is fine
    assert (await repo.get_block(blocks[4].id)).data["content"] == "m4"


async def test_fsck_reports_missing_chunk(repo: Repository) -> None:
    await repo.create_session("s")
    big = await repo.append("s", BlockType.EVENT, {"raw": "x" * 10 + "y" * 100_000})
    chunk = big.object_refs()[0]
    await repo.objects.delete(chunk)
    repo._cache.clear()
    report = await fsck(repo)
    assert {"missing-chunk"} == {p["kind"] for p in report.problems}
    with pytest.raises(CorruptObjectError):
        await repo.materialize("s")


async def test_gc_removes_only_unreachable_after_grace(repo: Repository, tmp_path) -> None:  # type: ignore[no-untyped-def]
    await repo.create_session("s")
    await repo.append_many("s", [msg("a")])
    orphan = await repo.append("s", M, {"content": "orphan"})
    # make it unreachable by hand: move the ref back and forget the reflog
    await repo.refs.set_if_equals("sessions/s", orphan.id, orphan.parents[0])
    repo.refs._logs.clear()  # type: ignore[attr-defined]
    state = tmp_path / "gc.json"
    first = await gc(repo, grace_seconds=3600, state_file=state)
    assert first.deleted == 0 and first.kept_in_grace == 1
    assert await repo.objects.has(orphan.id)
    swept = await gc(repo, grace_seconds=0, state_file=state)
    assert swept.deleted_ids == [orphan.id.hex()]
    assert (await fsck(repo)).ok
    assert await contents(repo, "s") == ["a"]


async def test_resolve_rev_digit_only_hex_prefix(repo: Repository) -> None:
    """About 1 id in 100 starts with 10 decimal digits: such a prefix is not a sequence."""
    await repo.create_session("s")
    blocks = await repo.append_many("s", [msg(f"m{i}") for i in range(3)])
    digits = None
    for i in range(2000):  # find a block whose id starts with 4+ digits
        b = await repo.append("s", M, {"content": f"n{i}"})
        lead = len(b.block_id) - len(b.block_id.lstrip("0123456789"))
        if lead >= 6 and int(b.block_id[:6]) > b.sequence:
            digits = b
            break
    assert digits is not None
    assert await repo.resolve_rev("s", digits.block_id[:6]) == digits.id
    assert await repo.resolve_rev("s", "2") == blocks[0].id  # a sequence still wins
    with pytest.raises(NotFoundError):
        await repo.resolve_rev("s", "999")
