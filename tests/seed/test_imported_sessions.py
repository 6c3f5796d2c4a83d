"""The seed readers -- SessionTool and SessionStateReader over LocalBlockStorage -- show
sessions imported from Amplifier folders as Amplifier wrote them (not stored skeletons)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from amplifier_session_storage import (
    InvalidInputError,
    LocalBlockStorage,
    SessionStateReader,
    StorageConfig,
)
from amplifier_session_storage.compat.migrator import SessionMigrator
from amplifier_session_storage.core.objects import BlockType
from amplifier_session_storage.tools import SessionTool, SessionToolConfig
from amplifier_session_storage.tools.session_tool import _text
from helpers.generator import load_generator


def _lines(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


Corpus = tuple[LocalBlockStorage, dict[str, Path]]


@pytest.fixture
async def corpus(tmp_path: Path) -> AsyncIterator[Corpus]:
    root = tmp_path / "amplifier"
    load_generator().generate(root, 4, 3_000_000, seed=5)
    storage = LocalBlockStorage(StorageConfig(user_id="u", local_path=tmp_path / "store"))
    batch = await SessionMigrator(storage, user_id="u").import_path(root)
    assert batch.failed == 0, [r.error for r in batch.results if r.error]
    yield storage, {p.name: p for p in root.glob("projects/*/sessions/*")}
    await storage.close()


def _tool(storage: LocalBlockStorage) -> SessionTool:
    config = SessionToolConfig(max_results=10_000, max_excerpt_length=10**8)
    return SessionTool(config, storage=storage)


async def _is_fork(storage: LocalBlockStorage, sid: str) -> bool:
    chain = await (await storage.repository()).chain(sid, resolve=False)
    return any(b.block_type is BlockType.FORK for b in chain)


async def test_session_tool_messages_are_the_transcript(corpus: Corpus) -> None:
    storage, folders = corpus
    tool = _tool(storage)
    for sid, folder in folders.items():
        transcript = _lines(folder / "transcript.jsonl")
        got = await tool.get_session(sid)
        assert "__line__" not in json.dumps(got)
        assert got["message_count"] == len(transcript)
        assert [m["role"] for m in got["messages"]] == [m["role"] for m in transcript]
        assert [m["excerpt"] for m in got["messages"]] == [
            _text(m.get("content")) for m in transcript
        ]
    # a phrase from deep inside a long message (in a blob, not the stored skeleton) is found
    sid, folder = max(folders.items(), key=lambda kv: (kv[1] / "transcript.jsonl").stat().st_size)
    transcript = _lines(folder / "transcript.jsonl")
    index, text = max(
        enumerate(_text(m.get("content")) for m in transcript), key=lambda x: len(x[1])
    )
    assert len(text) > 1000
    hits = await tool.search_sessions(text[600:660])
    assert any(h["session_id"] == sid and h["message_index"] == index for h in hits)


async def test_session_tool_events_are_the_events_lines(corpus: Corpus) -> None:
    storage, folders = corpus
    tool = _tool(storage)
    checked = 0
    for sid, folder in folders.items():
        if await _is_fork(storage, sid):
            continue  # a fork's inherited lines are shown as its parent wrote them
        lines = _lines(folder / "events.jsonl")
        events = await tool.get_events(sid, limit=10_000)
        assert [e["event_type"] for e in events] == [line["event"] for line in lines]
        assert [e["excerpt"] for e in events] == [str(line) for line in lines]

        def is_error(line: dict[str, Any]) -> bool:
            data = line.get("data")
            return (
                "error" in line["event"]
                or line.get("lvl") == "ERROR"
                or (isinstance(data, dict) and bool(data.get("error")))
            )

        assert [e["error"] for e in events] == [is_error(line) for line in lines]
        analysis = await tool.analyze_events(sid)
        assert analysis["total_events"] == len(lines)
        assert analysis["by_type"] == dict(Counter(line["event"] for line in lines))
        assert analysis["errors"] == sum(map(is_error, lines))
        assert analysis["messages"] == len(_lines(folder / "transcript.jsonl"))
        checked += 1
    assert checked > 0


async def test_session_state_reader_over_read_blocks(corpus: Corpus) -> None:
    storage, folders = corpus
    reader = SessionStateReader(storage)
    refused = 0
    for sid, folder in folders.items():
        blocks = await storage.read_blocks(sid)
        meta, messages, summaries = await reader.compute_current_state_async(blocks)
        assert messages == _lines(folder / "transcript.jsonl")
        assert "__line__" not in json.dumps(messages)
        assert meta["session_id"] == sid
        if not await _is_fork(storage, sid):
            lines = _lines(folder / "events.jsonl")
            assert [s["event_type"] for s in summaries] == [line["event"] for line in lines]
        try:
            _, plain, _ = SessionStateReader().compute_current_state(blocks)
        except InvalidInputError:
            refused += 1  # a skeleton needs the store: never returned as stored
        else:
            assert plain == messages
    assert refused > 0
