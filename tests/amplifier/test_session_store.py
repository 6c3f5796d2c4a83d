"""SessionStore: the drop-in save/load API over the repository."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from amplifier_session_storage.compat.amplifier import export_session
from amplifier_session_storage.compat.config import StorageConfig
from amplifier_session_storage.compat.session_store import SessionStore
from amplifier_session_storage.compat.storage import LocalBlockStorage
from amplifier_session_storage.core.objects import BlockType
from amplifier_session_storage.errors import InvalidInputError, SessionNotFoundError
from amplifier_session_storage.repository import Repository

META = {
    "session_id": "s1",
    "created": "2026-06-01T10:00:00+00:00",
    "bundle": "bundle:foundation",
    "model": "claude-opus-4-8",
    "turn_count": 1,
    "working_dir": "/home/u/app",
}


def msgs(*texts: str) -> list[dict[str, object]]:
    return [
        {"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(texts)
    ]


@pytest.fixture
def store(repo: Repository) -> SessionStore:
    return SessionStore(repo)


async def message_blocks(repo: Repository, sid: str) -> list[str]:
    return [b.data["content"] for b in await repo.chain(sid) if b.block_type is BlockType.MESSAGE]


async def test_save_load_round_trip(store: SessionStore) -> None:
    transcript = [
        {"role": "system", "content": "sys"},
        *msgs("héllo", "hi"),
        {"role": "developer", "content": "ctx"},
    ]
    await store.save("s1", transcript, META)
    loaded, meta = await store.load("s1")
    assert loaded == msgs("héllo", "hi")  # system and developer messages are not kept
    assert meta == META
    assert await store.get_metadata("s1") == META
    assert await store.exists("s1") and not await store.exists("s2")


async def test_extending_save_appends_only_new(store: SessionStore, repo: Repository) -> None:
    await store.save("s1", msgs("a", "b"), META)
    head = await repo.head("s1")
    await store.save("s1", msgs("a", "b", "c"), META)
    chain = await repo.chain("s1")
    assert await message_blocks(repo, "s1") == ["a", "b", "c"]
    assert chain[-2].id == head and chain[-1].block_type is BlockType.MESSAGE
    await store.save("s1", msgs("a", "b", "c"), META)  # unchanged: nothing written
    assert len(await repo.chain("s1")) == len(chain)


async def test_non_prefix_save_rewinds_and_loses_nothing(
    store: SessionStore, repo: Repository
) -> None:
    await store.save("s1", msgs("a", "b", "c"), META)
    old_head = await repo.head("s1")
    await store.save("s1", msgs("a", "x"), META)
    loaded, _ = await store.load("s1")
    assert [m["content"] for m in loaded] == ["a", "x"]
    chain = await repo.chain("s1")
    rewind = next(b for b in chain if b.block_type is BlockType.REWIND)
    assert rewind.parents[1] == old_head
    abandoned = [
        b.data["content"]
        async for b in repo.walk(rewind.parents[1], resolve=True)
        if b.block_type is BlockType.MESSAGE
    ]
    assert abandoned == ["c", "b", "a"]  # the old messages are still reachable
    assert await message_blocks(repo, "s1") == ["a", "x"]


async def test_metadata_updates(store: SessionStore, repo: Repository) -> None:
    await store.save("s1", msgs("a"), META)
    updated = await store.update_metadata("s1", {"name": "Named", "turn_count": 2})
    assert updated["name"] == "Named" and (await store.get_metadata("s1"))["turn_count"] == 2
    doc = await repo.catalog.get("s1") or {}
    assert doc["name"] == "Named" and doc["project_slug"] == "-home-u-app"
    await store.save("s1", msgs("a"), {**META, "turn_count": 3})
    assert (await store.get_metadata("s1"))["turn_count"] == 3


async def test_find_and_list(store: SessionStore) -> None:
    for sid in ("abc-1", "abc-2", "abd-3", "abc-1-0123_explorer"):
        await store.save(sid, msgs("x"), {"session_id": sid})
    assert await store.find_session("abd") == "abd-3"
    assert await store.find_session("abc-1") == "abc-1"
    with pytest.raises(ValueError, match="Ambiguous"):
        await store.find_session("abc")
    with pytest.raises(FileNotFoundError):
        await store.find_session("zzz")
    with pytest.raises(SessionNotFoundError):
        await store.find_session("abc-1-0123")  # a sub-session, excluded by default
    assert await store.find_session("abc-1-0123", top_level_only=False) == "abc-1-0123_explorer"
    listed = await store.list_sessions()
    assert sorted(listed) == ["abc-1", "abc-2", "abd-3"] and listed[0] == "abd-3"
    assert "abc-1-0123_explorer" in await store.list_sessions(top_level_only=False)


async def test_delete_and_cleanup(store: SessionStore, repo: Repository) -> None:
    await store.save("new", msgs("x"), {})
    old = time.time_ns() - 40 * 86_400 * 10**9
    await repo.create_session("old", {"metadata": {}, "metadata_format": None}, timestamp_ns=old)
    assert await store.cleanup_old_sessions(days=30) == 1
    assert await store.list_sessions() == ["new"]
    assert await store.delete_session("new") is True
    assert await store.delete_session("new") is False
    with pytest.raises(FileNotFoundError):
        await store.load("new")
    with pytest.raises(InvalidInputError):
        await store.cleanup_old_sessions(days=-1)


@pytest.mark.parametrize("bad", ["", "  ", ".", "..", "a/b", "a\\b", "../x", "x\x00y"])
async def test_invalid_ids_refused(store: SessionStore, bad: str) -> None:
    with pytest.raises(ValueError):
        await store.save(bad, msgs("a"), {})
    with pytest.raises(ValueError):
        await store.load(bad)
    assert await store.exists(bad) is False


async def test_export_is_what_app_cli_writes(
    store: SessionStore, repo: Repository, tmp_path: Path
) -> None:
    transcript = msgs("héllo ☃", "ok")
    await store.save("s1", transcript, META)
    await export_session(repo, "s1", tmp_path)
    expected = "\n".join(json.dumps(m, ensure_ascii=False) for m in transcript) + "\n"
    assert (tmp_path / "transcript.jsonl").read_text(encoding="utf-8") == expected
    assert (tmp_path / "metadata.json").read_text() == json.dumps(
        META, indent=2, ensure_ascii=False
    )
    assert not (tmp_path / "events.jsonl").exists()


async def test_over_local_block_storage(tmp_path: Path) -> None:
    storage = LocalBlockStorage(StorageConfig(user_id="u", local_path=tmp_path / "repo"))
    store = SessionStore(storage=storage)
    try:
        await store.save("s1", msgs("a", "b"), META)
        await store.save("s1", msgs("a", "c"), META)
        loaded, meta = await store.load("s1")
        assert [m["content"] for m in loaded] == ["a", "c"] and meta == META
    finally:
        await store.close()
    reopened = SessionStore(
        LocalBlockStorage(StorageConfig(user_id="u", local_path=tmp_path / "repo"))
    )
    try:
        assert (await reopened.load("s1"))[1] == META
    finally:
        await reopened.close()
