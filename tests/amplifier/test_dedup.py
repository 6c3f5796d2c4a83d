"""Structural dedup: one text, one chunk object, whatever representation carries it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from amp_helpers import export_diffs, session_dirs

from amplifier_session_storage.compat.amplifier.dedup import (
    H_NODE,
    BlobReader,
    has_blobs,
    parse_node,
)
from amplifier_session_storage.compat.migrator import SessionMigrator
from amplifier_session_storage.compat.session_store import SessionStore
from amplifier_session_storage.core.codec import unframe
from amplifier_session_storage.core.ids import ObjectId
from amplifier_session_storage.core.objects import (
    Block,
    BlockType,
    decode_chunk,
    encode_blob,
    object_kind,
)
from amplifier_session_storage.errors import CorruptObjectError
from amplifier_session_storage.repository import Repository

SID = "0b6a6ad1-2222-4c4c-8888-00000000d00d"
# Long enough to be a blob; non-ASCII, so transcript.jsonl (ensure_ascii=False) and
# events.jsonl (json defaults: \\u escapes) write it differently.
TEXT = "Réponse détaillée — " + "the quick brown fox jumps over the lazy dog. " * 12
OUTPUT = "     1\timport os\n" + "".join(f"{n:6d}\tprint({n})\n" for n in range(2, 40))


def event(name: str, ts: str, **data: Any) -> bytes:
    rec = {
        "ts": ts,
        "lvl": "INFO",
        "schema": {"name": "amplifier.log", "ver": "1.0.0"},
        "event": name,
        "session_id": SID,
        "data": data,
    }
    return json.dumps(rec).encode() + b"\n"


def message(msg: dict[str, Any], ts: str) -> bytes:
    return json.dumps({**msg, "metadata": {"timestamp": ts}}, ensure_ascii=False).encode() + b"\n"


def write_session(root: Path, transcript: bytes, events: bytes) -> Path:
    folder = root / "projects" / "-home-u-app" / "sessions" / SID
    folder.mkdir(parents=True)
    (folder / "metadata.json").write_text(json.dumps({"session_id": SID}, indent=2))
    (folder / "transcript.jsonl").write_bytes(transcript)
    (folder / "events.jsonl").write_bytes(events)
    return folder


async def chunks_holding(repo: Repository, data: bytes) -> list[ObjectId]:
    """The chunk objects whose content contains ``data``."""
    found = []
    async for oid in repo.objects.list():
        canonical = unframe(oid, await repo.objects.get(oid) or b"")
        if object_kind(canonical) == "c" and data in decode_chunk(canonical):
            found.append(oid)
    return found


async def reachable_ids(repo: Repository, block: Block) -> set[ObjectId]:
    """Every chunk id a block's payload refers to, through nodes too."""
    out: set[ObjectId] = set(block.links)
    stack = [tuple(block.links[i : i + 1]) for i in range(len(block.links))]
    while stack:
        ids = stack.pop()
        try:
            _, kids = parse_node(await repo.read_blob(ids))
        except CorruptObjectError:  # not a node: a string blob
            continue
        for _, kid in kids:
            out.update(kid)
            stack.append(kid)
    return out


async def test_text_in_every_representation_is_one_chunk(tmp_path: Path, repo: Repository) -> None:
    ask = {"role": "user", "content": "Explain, please."}
    answer = {"role": "assistant", "content": [{"type": "text", "text": TEXT}]}
    transcript = message(ask, "2026-06-01T10:00:00.100+00:00") + message(
        answer, "2026-06-01T10:00:05.100+00:00"
    )
    system = "You are a careful assistant. " * 20
    events = b"".join(
        [
            event("prompt:submit", "2026-06-01T10:00:00.200+00:00", prompt=ask["content"]),
            event(
                "llm:request",
                "2026-06-01T10:00:01.000000001+00:00",
                raw={"messages": [ask], "system": system},
            ),
            event(
                "content_block:end",
                "2026-06-01T10:00:04.000+00:00",
                block={"type": "text", "text": TEXT},
                block_index=0,
            ),
            event("llm:response", "2026-06-01T10:00:05.000+00:00", raw={"content": [answer]}),
            event(
                "llm:request",
                "2026-06-01T10:00:06.000000002+00:00",
                raw={"messages": [ask, answer, {"role": "user", "content": "Thanks!"}]},
                system=system,
            ),
        ]
    )
    folder = write_session(tmp_path, transcript, events)
    batch = await SessionMigrator(repo, user_id="tester").import_path(tmp_path)
    assert batch.failed == 0
    # The text is stored once: one chunk object, its decoded UTF-8 bytes.
    [(blob_id, _)] = encode_blob(TEXT.encode())
    assert await chunks_holding(repo, TEXT.encode()) == [blob_id]
    assert await chunks_holding(repo, system.encode()) == [encode_blob(system.encode())[0][0]]
    blocks = await repo.chain(SID)
    carriers = [
        b
        for b in blocks
        if (b.block_type is BlockType.MESSAGE and has_blobs(b.data))
        or (
            b.block_type is BlockType.EVENT
            and b.data.get("event_type") in ("llm:request", "content_block:end", "llm:response")
        )
    ]
    assert len(carriers) == 5  # the assistant message and four events
    holding = [b for b in carriers if blob_id in await reachable_ids(repo, b)]
    kinds = {b.data.get("event_type") or b.block_type.value for b in holding}
    assert kinds == {"message", "llm:request", "content_block:end", "llm:response"}
    assert not await export_diffs(repo, SID, folder, tmp_path / "out")


async def test_json_in_a_string_shares_the_tool_output(tmp_path: Path, repo: Repository) -> None:
    """A tool result is structured in tool:post and a JSON string in the transcript and in
    llm:request: its output text is one chunk all the same."""
    result = {"error": None, "output": {"content": OUTPUT, "path": "a.py"}, "success": True}
    tool_msg = {"role": "tool", "tool_call_id": "toolu_1", "content": json.dumps(result)}
    transcript = message(
        {"role": "user", "content": "read a.py"}, "2026-06-01T10:00:00.000+00:00"
    ) + message(tool_msg, "2026-06-01T10:00:03.000+00:00")
    events = event(
        "tool:post", "2026-06-01T10:00:02.000+00:00", tool_call_id="toolu_1", result=result
    ) + event(
        "llm:request",
        "2026-06-01T10:00:04.000+00:00",
        raw={
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": "toolu_1",
                            "content": json.dumps(result),
                        }
                    ],
                }
            ]
        },
    )
    folder = write_session(tmp_path, transcript, events)
    batch = await SessionMigrator(repo, user_id="tester").import_path(tmp_path)
    assert batch.failed == 0
    assert len(await chunks_holding(repo, OUTPUT.encode())) == 1
    assert not await export_diffs(repo, SID, folder, tmp_path / "out")
    # The application sees the messages it saved.
    store = SessionStore(repo)
    loaded, _ = await store.load(SID)
    assert [m["content"] for m in loaded] == ["read a.py", json.dumps(result)]


async def _links_cover_nodes(repo: Repository, session_id: str) -> None:
    """Every id inside a node a block names is named by that block or an earlier one on
    its chain: fsck, gc and sync follow links only."""
    linked: set[ObjectId] = set()
    for b in await repo.chain(session_id):
        linked.update(b.links)
        payload = b.data
        if not isinstance(payload, dict):
            continue
        if b.block_type is BlockType.MESSAGE and has_blobs(payload):
            skeleton, counts = payload["__line__"]["line"], payload["__line__"]["blobs"]
        elif b.block_type is BlockType.EVENT and payload.get("blobs"):
            skeleton, counts = payload["line"], payload["blobs"]
        else:
            continue
        kinds = [c for c in skeleton if c in "\x00\x01\x02\x03\x04\x05\x06"]
        pos = 0
        stack: list[tuple[str, Sequence[ObjectId]]] = []
        for kind, n in zip(kinds, counts, strict=True):
            stack.append((kind, b.links[pos : pos + n]))
            pos += n
        while stack:
            kind, ids = stack.pop()
            assert set(ids) <= linked, f"{b.block_id}: a hole's ids are not linked"
            if kind in (H_NODE, "\x05", "\x06"):
                for kid_kind, kid in parse_node(await repo.read_blob(ids))[1]:
                    stack.append((kid_kind, kid))


async def test_node_contents_are_linked_on_every_chain(
    generator: ModuleType, tmp_path: Path, repo: Repository
) -> None:
    root = tmp_path / "amplifier"
    summary = generator.generate(root, 10, 12_000_000, seed=3)
    assert any(r.kind == "fork" for r in summary.records)
    batch = await SessionMigrator(repo, user_id="tester").import_path(root)
    assert batch.failed == 0
    for folder in session_dirs(root):
        await _links_cover_nodes(repo, folder.name)
        assert not await export_diffs(repo, folder.name, folder, tmp_path / "out" / folder.name)


async def test_legacy_payloads_still_render() -> None:
    """EVENT payloads written before string blobs (whole sub-values with id placeholders)."""
    blob = '{"role": "user", "content": "I am \\u0000S, child of \\u0000P"}'.replace(
        "\\u0000", "\x00"
    )
    store = dict(encode_blob(blob.encode()))
    ids = tuple(store)

    async def read(wanted: Sequence[ObjectId]) -> bytes:
        return b"".join(decode_chunk(store[i]) for i in wanted)

    payload = {"event_type": "llm:request", "line": '{"m": [\x00]}', "blobs": [1], "pid": "p-1"}
    text = await BlobReader(read).event_text(payload, ids, "s-1")
    assert text == '{"m": [{"role": "user", "content": "I am s-1, child of p-1"}]}'


async def test_batch_restores_gc_thresholds(tmp_path: Path, repo: Repository) -> None:
    import gc

    before = gc.get_threshold()
    write_session(tmp_path, message({"role": "user", "content": TEXT}, "2026-06-01T10:00:00Z"), b"")
    batch = await SessionMigrator(repo, user_id="tester").import_path(tmp_path)
    assert batch.completed == 1 and gc.get_threshold() == before
