"""The seed README's quick start, run as written, and the seed API over the local store."""

from __future__ import annotations

from pathlib import Path

import pytest

from amplifier_session_storage import (
    BlockType,
    BlockWriter,
    InvalidInputError,
    LocalBlockStorage,
    SessionStateReader,
    StorageConfig,
)


async def test_readme_quick_start_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # the default ~/.amplifier/sessions lands here
    monkeypatch.delenv("AMPLIFIER_LOCAL_STORAGE_PATH", raising=False)
    # --- verbatim from the seed README ---------------------------------------------
    from amplifier_session_storage import (
        BlockWriter,
        LocalBlockStorage,
        StorageConfig,
    )

    # Create storage config
    config = StorageConfig(user_id="user-123")

    # Create local storage
    storage = LocalBlockStorage(config)

    # Create a block writer for a session
    writer = BlockWriter(
        session_id="sess-abc",
        user_id="user-123",
        device_id="device-001",
    )

    # Write session blocks
    block = writer.create_session(project_slug="my-project", name="My Session")
    await storage.write_block(block)

    # Add messages
    msg_block = writer.add_message(role="user", content="Hello!", turn=1)
    await storage.write_block(msg_block)

    # Read blocks back
    blocks = await storage.read_blocks("sess-abc")

    # Clean up
    await storage.close()
    # --- end of the README ---------------------------------------------------------
    assert [b.block_type for b in blocks] == [BlockType.SESSION_CREATED, BlockType.MESSAGE]
    assert blocks[1].data["content"] == "Hello!"
    assert (tmp_path / ".amplifier" / "sessions" / "config.json").exists()


@pytest.fixture
def config(tmp_path: Path) -> StorageConfig:
    return StorageConfig(user_id="u1", local_path=tmp_path / "store")


async def test_writer_chain_ids_are_kept_when_alone(config: StorageConfig) -> None:
    storage = LocalBlockStorage(config)
    w = BlockWriter("s1", "u1", "d1")
    made = [
        w.create_session("proj"),
        w.add_message("user", "hi", 1),
        w.add_message("assistant", "hello", 1),
    ]
    stored = await storage.write_blocks(made)
    assert [b.id for b in stored] == [b.id for b in made]
    assert await storage.get_latest_sequence("s1") == 3
    got = await storage.read_blocks("s1", since_sequence=1)
    assert [b.data["content"] for b in got] == ["hi", "hello"]
    await storage.close()


async def test_two_writers_interleave_without_loss(config: StorageConfig) -> None:
    storage = LocalBlockStorage(config)
    w1 = BlockWriter("s1", "u1", "laptop")
    await storage.write_block(w1.create_session("proj"))
    w2 = BlockWriter("s1", "u1", "desktop", head=(await storage.read_blocks("s1"))[-1])
    await storage.write_block(w1.add_message("user", "from laptop", 1))
    await storage.write_block(w2.add_message("user", "from desktop", 1))  # rebased
    await storage.write_block(w1.add_message("user", "laptop again", 2))  # rebased
    blocks = await storage.read_blocks("s1")
    _, messages, _ = SessionStateReader().compute_current_state(blocks)
    assert [m["content"] for m in messages] == ["from laptop", "from desktop", "laptop again"]
    assert [b.sequence for b in blocks] == [1, 2, 3, 4]
    await storage.close()


async def test_rewind_through_writer_keeps_history(config: StorageConfig) -> None:
    storage = LocalBlockStorage(config)
    w = BlockWriter("s1", "u1", "d1")
    await storage.write_blocks(
        [w.create_session("proj")] + [w.add_message("user", f"m{i}", i) for i in range(5)]
    )
    await storage.write_block(w.rewind(3, reason="undo"))
    await storage.write_block(w.add_message("user", "after", 9))
    blocks = await storage.read_blocks("s1")
    _, messages, _ = SessionStateReader().compute_current_state(blocks)
    assert [m["content"] for m in messages] == ["m0", "m1", "after"]
    repo = await storage.repository()
    rewind = next(b for b in blocks if b.block_type is BlockType.REWIND)
    abandoned = await repo.chain_from(rewind.parents[1])
    assert [b.data["content"] for b in abandoned if b.block_type is BlockType.MESSAGE] == [
        f"m{i}" for i in range(5)
    ]
    await storage.close()


async def test_reader_ignores_abandoned_blocks_in_flat_list(config: StorageConfig) -> None:
    storage = LocalBlockStorage(config)
    w = BlockWriter("s1", "u1", "d1")
    made = [w.create_session("proj"), w.add_message("user", "a", 1), w.add_message("user", "b", 2)]
    rw = w.rewind(2)
    after = w.add_message("user", "c", 3)
    _, messages, _ = SessionStateReader().compute_current_state([*made, rw, after])
    assert [m["content"] for m in messages] == ["a", "c"]
    await storage.close()


async def test_fork_via_writer(config: StorageConfig) -> None:
    storage = LocalBlockStorage(config)
    w = BlockWriter("src", "u1", "d1")
    blocks = await storage.write_blocks(
        [w.create_session("proj", name="source")]
        + [w.add_message("user", f"m{i}", i) for i in range(4)]
    )
    f = BlockWriter("dst", "u1", "d1")
    await storage.write_block(f.fork(blocks[2], name="the fork"))
    await storage.write_block(f.add_message("user", "fork only", 9))
    meta, messages, _ = SessionStateReader().compute_current_state(await storage.read_blocks("dst"))
    assert [m["content"] for m in messages] == ["m0", "m1", "fork only"]
    assert meta["name"] == "the fork"
    await storage.close()


async def test_list_and_delete_sessions(config: StorageConfig) -> None:
    storage = LocalBlockStorage(config)
    for i, slug in enumerate(["a", "b", "a"]):
        w = BlockWriter(f"s{i}", "u1", "d1")
        await storage.write_block(w.create_session(slug, name=f"n{i}"))
    assert [s["session_id"] for s in await storage.list_sessions("a")] == ["s2", "s0"]
    await storage.delete_session("s2")
    assert [s["session_id"] for s in await storage.list_sessions()] == ["s1", "s0"]
    assert await storage.read_blocks("s2") == []
    await storage.close()


async def test_writer_delete_session_block(config: StorageConfig) -> None:
    storage = LocalBlockStorage(config)
    w = BlockWriter("s9", "u1", "d1")
    await storage.write_blocks([w.create_session("p"), w.delete_session()])
    assert await storage.get_latest_sequence("s9") == 0
    await storage.close()


@pytest.mark.parametrize("slug", ["../../x", "a/b", "", "..", "x\x00"])
async def test_hostile_project_slugs(config: StorageConfig, slug: str) -> None:
    with pytest.raises(InvalidInputError):
        BlockWriter("s", "u", "d").create_session(slug)
    storage = LocalBlockStorage(config)
    with pytest.raises(InvalidInputError):
        await storage.list_sessions(slug)
    await storage.close()
    assert not (config.storage_path.parent / "x").exists()


@pytest.mark.parametrize("sid", ["../evil", "a/b", "..", "", "x" * 300])
async def test_hostile_session_ids(config: StorageConfig, sid: str) -> None:
    with pytest.raises(InvalidInputError):
        BlockWriter(sid, "u", "d")
    storage = LocalBlockStorage(config)
    with pytest.raises(InvalidInputError):
        await storage.read_blocks(sid)
    with pytest.raises(InvalidInputError):
        await storage.delete_session(sid)
    await storage.close()


def test_writer_refuses_bad_visibility() -> None:
    w = BlockWriter("s", "u", "d")
    with pytest.raises(InvalidInputError):
        w.create_session("p", visibility="everyone")
    with pytest.raises(InvalidInputError):
        w.create_session("p", visibility="team", org_id="o")  # no teams
    w.create_session("p", visibility="team", org_id="org-1", team_ids=["team-a"])


async def test_local_storage_refuses_foreign_directory(tmp_path: Path) -> None:
    foreign = tmp_path / "sessions"
    (foreign / "63cc3feb").mkdir(parents=True)
    (foreign / "63cc3feb" / "events.jsonl").write_text("{}\n")
    storage = LocalBlockStorage(StorageConfig(user_id="u", local_path=foreign))
    with pytest.raises(InvalidInputError, match="not a repository"):
        await storage.list_sessions()
    assert sorted(p.name for p in foreign.iterdir()) == ["63cc3feb"]
