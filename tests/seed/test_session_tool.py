"""SessionTool over the local store."""

from __future__ import annotations

from pathlib import Path

import pytest

from amplifier_session_storage import (
    BlockWriter,
    InvalidInputError,
    LocalBlockStorage,
    StorageConfig,
)
from amplifier_session_storage.core.objects import BlockType
from amplifier_session_storage.tools import SessionTool, SessionToolConfig


@pytest.fixture
async def tool(tmp_path: Path) -> SessionTool:
    storage = LocalBlockStorage(StorageConfig(user_id="u", local_path=tmp_path / "s"))
    w = BlockWriter("s1", "u", "d")
    blocks = [w.create_session("proj", name="first")]
    for turn in range(1, 4):
        blocks.append(w.add_message("user", f"question {turn} about zebras", turn))
        blocks.append(w.add_message("assistant", f"answer {turn}", turn))
        blocks.extend(w.add_event(f"e{turn}", "tool:post", {"ok": True}, turn))
    blocks.extend(w.add_event("e9", "tool:error", {"error": "boom"}, 3))
    await storage.write_blocks(blocks)
    return SessionTool(
        SessionToolConfig(project_slug="proj", max_excerpt_length=40), storage=storage
    )


async def test_list_get_search(tool: SessionTool) -> None:
    assert [s["session_id"] for s in await tool.list_sessions()] == ["s1"]
    got = await tool.get_session("s1")
    assert got["message_count"] == 6 and got["event_count"] == 4
    hits = await tool.search_sessions("ZEBRAS")
    assert [h["message_index"] for h in hits] == [0, 2, 4]
    with pytest.raises(InvalidInputError):
        await tool.search_sessions("  ")
    await tool.close()


async def test_events_and_analysis(tool: SessionTool) -> None:
    errors = await tool.get_events("s1", errors_only=True)
    assert [e["event_type"] for e in errors] == ["tool:error"]
    assert len(await tool.get_events("s1", event_types=["tool:post"], limit=2)) == 2
    analysis = await tool.analyze_events("s1")
    assert analysis["by_type"] == {"tool:post": 3, "tool:error": 1}
    assert analysis["errors"] == 1
    await tool.close()


async def test_rewind_dry_run_then_real(tool: SessionTool) -> None:
    plan = await tool.rewind_session("s1", to_turn=1)
    assert plan["dry_run"] and plan["messages_kept"] == 2 and plan["messages_removed"] == 4
    repo = await tool._repo()
    before = await repo.head("s1")
    assert (await tool.rewind_session("s1", to_turn=1))["dry_run"]
    assert await repo.head("s1") == before  # dry run changed nothing
    done = await tool.rewind_session("s1", to_message=2, dry_run=False)
    state = await repo.materialize("s1")
    assert len(state.messages) == 2
    rewind = await repo.get_block(await repo.head("s1"))
    assert rewind.block_type is BlockType.REWIND and rewind.block_id == done["rewind_block"]
    with pytest.raises(InvalidInputError):
        await tool.rewind_session("s1")
    await tool.close()
