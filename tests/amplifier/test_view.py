"""Readers above the repository show imported sessions as Amplifier wrote them: messages
and event lines rendered from their stored skeletons (compat.amplifier.view)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from amp_helpers import session_dirs

from amplifier_session_storage.compat.amplifier import PayloadRenderer
from amplifier_session_storage.compat.amplifier.dedup import H_UTF8
from amplifier_session_storage.compat.amplifier.view import is_skeleton_message, plain_message
from amplifier_session_storage.compat.migrator import SessionMigrator
from amplifier_session_storage.compat.reader import SessionStateReader
from amplifier_session_storage.compat.session_store import SessionStore
from amplifier_session_storage.core.ids import ObjectId
from amplifier_session_storage.core.objects import Block, BlockType, encode_blob
from amplifier_session_storage.errors import (
    CorruptObjectError,
    InvalidInputError,
    NotFoundError,
)
from amplifier_session_storage.repository import Repository

M, E = BlockType.MESSAGE, BlockType.EVENT


def parsed_lines(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def without_ids(event: dict[str, Any]) -> dict[str, Any]:
    """A fork's copy of a parent event differs in its session ids only."""
    return {k: v for k, v in event.items() if k not in ("session_id", "parent_session_id")}


@pytest.fixture
async def imported(generator: ModuleType, tmp_path: Path, repo: Repository) -> dict[str, Path]:
    """A generated corpus imported into ``repo``: session id -> its folder."""
    root = tmp_path / "amplifier"
    generator.generate(root, 5, 4_000_000, seed=5)
    batch = await SessionMigrator(repo, user_id="tester").import_path(root)
    assert batch.failed == 0, [r.error for r in batch.results if r.error]
    return {p.name: p for p in session_dirs(root)}


async def test_materialize_with_renderer_gives_the_files_content(
    repo: Repository, imported: dict[str, Path]
) -> None:
    skeletons = event_blobs = raw_skeletons = 0
    for sid, folder in imported.items():
        chain = await repo.history(await repo.require_head(sid))
        skeletons += sum(1 for b in chain if b.block_type is M and is_skeleton_message(b.data))
        event_blobs += sum(1 for b in chain if b.block_type is E and b.data.get("blobs"))
        raw = await repo.materialize(sid)
        raw_skeletons += sum(1 for m in raw.messages if "__line__" in m)
        state = await repo.materialize(sid, render=PayloadRenderer(repo))
        transcript = parsed_lines(folder / "transcript.jsonl")
        assert state.messages == transcript, sid
        assert '"__line__"' not in json.dumps(state.messages)
        # the renderer changes payloads only: the rest of the state is the stored one
        assert (state.metadata, state.head, state.blocks) == (raw.metadata, raw.head, raw.blocks)
        events = parsed_lines(folder / "events.jsonl")
        if any(b.block_type is BlockType.FORK for b in chain):
            assert [without_ids(e) for e in state.events] == [without_ids(e) for e in events]
        else:
            assert state.events == events, sid
        # what SessionStore.load returns is the same transcript
        assert (await SessionStore(repo).load(sid))[0] == transcript
    # the corpus exercised the bug: stored skeletons (what materialize folds without a
    # renderer), shown as messages
    assert skeletons > 0 and event_blobs > 0 and raw_skeletons == skeletons


async def test_renderer_flags_select_block_types(
    repo: Repository, imported: dict[str, Path]
) -> None:
    sid = next(iter(imported))
    only_messages = await repo.materialize(sid, render=PayloadRenderer(repo, events=False))
    only_events = await repo.materialize(sid, render=PayloadRenderer(repo, messages=False))
    raw = await repo.materialize(sid)
    assert only_messages.messages == parsed_lines(imported[sid] / "transcript.jsonl")
    assert only_messages.events == raw.events
    assert only_events.messages == raw.messages
    assert only_events.events != raw.events and all("event" in e for e in only_events.events)


async def test_session_state_reader_renders_with_storage(
    repo: Repository, imported: dict[str, Path]
) -> None:
    sid = max(imported, key=lambda s: (imported[s] / "transcript.jsonl").stat().st_size)
    blocks = await repo.chain(sid)
    assert any(b.block_type is M and is_skeleton_message(b.data) for b in blocks)
    meta, messages, summaries = await SessionStateReader(repo).compute_current_state_async(blocks)
    assert messages == parsed_lines(imported[sid] / "transcript.jsonl")
    assert meta["session_id"] == sid
    assert [s["event_type"] for s in summaries] == [
        e["event"] for e in parsed_lines(imported[sid] / "events.jsonl")
    ]
    # without a store the skeleton cannot be rendered: refused, never returned as is
    with pytest.raises(InvalidInputError, match="compute_current_state_async"):
        SessionStateReader().compute_current_state(blocks)
    with pytest.raises(InvalidInputError, match="needs SessionStateReader"):
        await SessionStateReader().compute_current_state_async(blocks)


async def test_native_payloads_come_back_unchanged(repo: Repository) -> None:
    msg = {"role": "user", "content": "x" * 600, "turn": 1}
    event = {"event_id": "e1", "event_type": "tool:post", "data": {"line": "y"}, "turn": 1}
    await repo.create_session("n", {"project_slug": "p"})
    m = await repo.append("n", M, msg)
    e = await repo.append("n", E, event)
    render = PayloadRenderer(repo)
    assert await render(m) is m.data and await render(e) is e.data
    state = await repo.materialize("n", render=render)
    assert state.messages == [msg] and state.events == [event]
    assert SessionStateReader().compute_current_state(await repo.chain("n"))[1] == [msg]


def test_plain_message_forms() -> None:
    msg = {"role": "user", "content": "é"}
    assert plain_message(msg) is msg
    assert plain_message({**msg, "__line__": {"ascii": True}}) == msg
    assert plain_message({**msg, "__line__": {"nl": False}}) == msg
    assert plain_message({"__line__": {"text": json.dumps(msg) + " "}}) == msg
    not_json = {"__line__": {"text": "{not json"}}
    assert plain_message(not_json) is not_json
    not_utf8 = {"__line__": {"bytes": b"\xff"}}
    assert plain_message(not_utf8) is not_utf8
    unknown = {"role": "user", "__line__": {"mine": 1}}
    assert plain_message(unknown) is unknown
    with pytest.raises(InvalidInputError):
        plain_message({"role": "user", "__line__": {"line": "\x02", "blobs": [1]}})


def _blob(data: bytes) -> tuple[list[ObjectId], list[tuple[ObjectId, bytes]]]:
    """A blob's chunk ids (for a block's links) and objects (to store)."""
    chunks = encode_blob(data)
    return [oid for oid, _ in chunks], chunks


async def _append(
    repo: Repository,
    block_type: BlockType,
    payload: dict[str, Any],
    links: list[ObjectId],
    extra: Sequence[tuple[ObjectId, bytes]] = (),
) -> Block:
    if await repo.head("bad") is None:
        await repo.create_session("bad", {"project_slug": "p"})
    [b] = await repo.append_many("bad", [(block_type, payload, None, links)], extra=extra)
    return b


async def test_hand_built_skeleton_renders(repo: Repository) -> None:
    text = "long " * 100
    ids, chunks = _blob(text.encode())
    line = '{"role": "assistant", "content": ' + H_UTF8 + "}"
    payload = {"role": "assistant", "__line__": {"line": line, "blobs": [len(ids)]}}
    b = await _append(repo, M, payload, ids, chunks)
    assert await PayloadRenderer(repo)(b) == {"role": "assistant", "content": text}
    top = await _append(repo, M, {"__line__": {"line": H_UTF8, "blobs": [len(ids)]}}, ids)
    assert await PayloadRenderer(repo)(top) == {"__line__": {"text": json.dumps(text)}}


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        ({"role": "user", "__line__": {"line": "\x02", "blobs": "1"}}, CorruptObjectError),
        ({"role": "user", "__line__": {"line": "\x02", "blobs": [0]}}, CorruptObjectError),
        ({"role": "user", "__line__": {"line": "\x02", "blobs": [9]}}, CorruptObjectError),
        ({"role": "user", "__line__": {"line": 5, "blobs": [1]}}, CorruptObjectError),
        ({"role": "user", "__line__": {"line": "\x02\x02", "blobs": [1]}}, CorruptObjectError),
        ({"role": "user", "__line__": {"line": "{\x02", "blobs": [1]}}, CorruptObjectError),
        ({"role": "user", "__line__": {"line": "\x02", "what": 1}}, CorruptObjectError),
    ],
)
async def test_malformed_message_skeletons_raise_typed_errors(
    repo: Repository, payload: dict[str, Any], error: type[Exception]
) -> None:
    ids, chunks = _blob(b"x" * 300)
    b = await _append(repo, M, payload, ids, chunks)
    with pytest.raises(error):
        await PayloadRenderer(repo)(b)
    with pytest.raises(error):
        await repo.materialize("bad", render=PayloadRenderer(repo))


async def test_unreadable_blobs_raise_typed_errors(repo: Repository) -> None:
    payload = {"role": "user", "__line__": {"line": "\x02", "blobs": [1]}}
    ids, _ = _blob(b"never stored")
    missing = await _append(repo, M, payload, ids)
    with pytest.raises(NotFoundError):
        await PayloadRenderer(repo)(missing)
    ids, chunks = _blob(b"\xff\xfe not utf-8")
    bad_utf8 = await _append(repo, M, payload, ids, chunks)
    with pytest.raises(CorruptObjectError):
        await PayloadRenderer(repo)(bad_utf8)
    ids, chunks = _blob(b"not a node")
    node = {"event_type": "x", "line": '{"a": \x04}', "blobs": [1]}
    not_a_node = await _append(repo, E, node, ids, chunks)
    with pytest.raises(CorruptObjectError):
        await PayloadRenderer(repo)(not_a_node)


@pytest.mark.parametrize(
    "payload",
    [
        {"event_type": "x", "line": 7},
        {"event_type": "x", "line": "\x07", "tsd": "3"},
        {"event_type": "x", "line": "\x07", "tsd": 12},
        {"event_type": "x", "line": "{}", "tsd": 3},  # a time digit count without the hole
        {"event_type": "x", "line": '{"a": \x02}', "blobs": [2]},
        {"event_type": "x", "line": '{"a": \x00}', "blobs": [1], "pid": 3},
    ],
)
async def test_malformed_event_skeletons_raise_typed_errors(
    repo: Repository, payload: dict[str, Any]
) -> None:
    ids, chunks = _blob(b"y" * 300)
    b = await _append(repo, E, payload, ids, chunks)
    with pytest.raises(CorruptObjectError):
        await PayloadRenderer(repo)(b)


async def test_event_lines_that_are_not_objects(repo: Repository) -> None:
    whole = await _append(repo, E, {"event_type": None, "line": "not json"}, [])
    assert await PayloadRenderer(repo)(whole) == {"event_type": None, "line": "not json"}
    raw = {"event_type": None, "bytes": b"\xff\n"}
    b = await _append(repo, E, raw, [])
    assert await PayloadRenderer(repo)(b) == raw
