"""SessionMigrator: both layouts, lineage (sub-sessions, forks), re-runs, bad input."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import pytest
from amp_helpers import export_diffs, session_dirs

from amplifier_session_storage.compat.migrator import (
    MigrationStatus,
    SessionMigrator,
    SessionSource,
)
from amplifier_session_storage.core.objects import BlockType
from amplifier_session_storage.repository import Repository

SID = "0b6a6ad1-2222-4c4c-8888-000000000001"


def event(name: str, ts: str, sid: str = SID, **data: object) -> bytes:
    rec = {
        "ts": ts,
        "lvl": "INFO",
        "schema": {"name": "amplifier.log", "ver": "1.0.0"},
        "event": name,
        "session_id": sid,
        "data": {"parent_id": None, **data},
    }
    return json.dumps(rec).encode() + b"\n"


def message(role: str, content: str, ts: str) -> bytes:
    return (
        json.dumps(
            {"role": role, "content": content, "metadata": {"timestamp": ts}}, ensure_ascii=False
        ).encode()
        + b"\n"
    )


def make_session(
    root: Path,
    sid: str = SID,
    *,
    layout: str = "projects",
    metadata: dict[str, object] | None = None,
    transcript: bytes | None = None,
    events: bytes | None = None,
) -> Path:
    folder = (
        root / "projects" / "-home-u-app" / "sessions" / sid
        if layout == "projects"
        else root / "sessions" / sid
    )
    folder.mkdir(parents=True)
    if metadata is not None:
        (folder / "metadata.json").write_text(json.dumps(metadata, indent=2, ensure_ascii=False))
    if transcript is not None:
        (folder / "transcript.jsonl").write_bytes(transcript)
    if events is not None:
        (folder / "events.jsonl").write_bytes(events)
    return folder


def basic_events(n: int = 4) -> bytes:
    return b"".join(
        event(
            "prompt:submit" if i == 0 else "tool:post", f"2026-06-01T10:00:0{i}Z", prompt="p" * 10
        )
        for i in range(n)
    )


def basic_transcript() -> bytes:
    return message("user", "héllo", "2026-06-01T10:00:00.500Z") + message(
        "assistant", "hi", "2026-06-01T10:00:02.500Z"
    )


@pytest.fixture
def migrator(repo: Repository) -> SessionMigrator:
    return SessionMigrator(repo, user_id="tester", device_id="laptop")


# ------------------------------------------------------------------ discovery and layouts
async def test_discovers_both_layouts(tmp_path: Path, migrator: SessionMigrator) -> None:
    make_session(tmp_path, "new-one", metadata={"session_id": "new-one"}, events=basic_events())
    make_session(tmp_path, "old-one", layout="sessions", transcript=basic_transcript())
    (tmp_path / "projects" / "-home-u-app" / "sessions" / "not-a-session").mkdir()
    sources = await migrator.discover_sessions(tmp_path)
    found = {(s.session_id, s.layout, s.project_slug) for s in sources}
    assert found == {("new-one", "projects", "-home-u-app"), ("old-one", "sessions", None)}
    assert [s.session_id for s in await migrator.discover_sessions(tmp_path / "sessions")] == [
        "old-one"
    ]
    only = await migrator.discover_sessions(tmp_path, project_filter="-home-u-app")
    assert [s.session_id for s in only] == ["new-one"]


async def test_interleaving_keeps_order_and_times(
    tmp_path: Path, migrator: SessionMigrator, repo: Repository
) -> None:
    folder = make_session(
        tmp_path,
        metadata={"session_id": SID, "created": "2026-06-01T10:00:00Z"},
        transcript=basic_transcript(),
        events=basic_events(),
    )
    batch = await migrator.import_path(tmp_path)
    [result] = batch.results
    assert (result.messages_migrated, result.events_migrated) == (2, 4)
    chain = await repo.chain(SID)
    kinds = [b.block_type for b in chain if b.block_type in (BlockType.MESSAGE, BlockType.EVENT)]
    m, e = BlockType.MESSAGE, BlockType.EVENT
    assert kinds == [e, m, e, e, m, e]  # messages placed by their timestamps
    msg_blocks = [b for b in chain if b.block_type is m]
    when = datetime(2026, 6, 1, 10, 0, 0, 500_000, tzinfo=UTC)
    assert msg_blocks[0].timestamp_ns == int(when.timestamp()) * 10**9 + 500_000_000
    assert msg_blocks[0].data["content"] == "héllo"
    assert all(b.user_id == "tester" and b.device_id == "laptop" for b in chain)
    assert not await export_diffs(repo, SID, folder, tmp_path / "out")


async def test_messages_without_timestamps_anchor_on_events(
    tmp_path: Path, migrator: SessionMigrator, repo: Repository
) -> None:
    transcript = (
        json.dumps({"role": "user", "content": "a"})
        + "\n"
        + json.dumps({"role": "assistant", "content": "b"})
        + "\n"
    ).encode()
    events = (
        event("session:start", "2026-06-01T10:00:00Z")
        + event("prompt:submit", "2026-06-01T10:00:01Z")
        + event("llm:request", "2026-06-01T10:00:02Z")
        + event("llm:response", "2026-06-01T10:00:03Z")
        + event("prompt:complete", "2026-06-01T10:00:04Z")
    )
    make_session(tmp_path, transcript=transcript, events=events)
    await migrator.import_path(tmp_path)
    order = [
        b.data.get("event_type") or b.data.get("role")
        for b in await repo.chain(SID)
        if b.block_type in (BlockType.MESSAGE, BlockType.EVENT)
    ]
    assert order == [
        "session:start",
        "prompt:submit",
        "user",
        "llm:request",
        "llm:response",
        "assistant",
        "prompt:complete",
    ]


# ------------------------------------------------------------------ lineage
async def test_sub_sessions_and_forks_linked(
    generator: ModuleType, tmp_path: Path, migrator: SessionMigrator, repo: Repository
) -> None:
    root = tmp_path / "amplifier"
    summary = generator.generate(root, 12, 30_000_000, seed=3)
    forks = [r for r in summary.records if r.kind == "fork"]
    subs = [r for r in summary.records if r.kind == "sub"]
    assert forks and subs, "the generator's seed 3 makes forks and sub-sessions"
    batch = await migrator.import_path(root)
    assert batch.failed == 0
    by_id = {r.session_id: r for r in batch.results}
    for sub in subs:
        created = (await repo.chain(sub.session_id, limit=1))[0]
        assert created.block_type is BlockType.SESSION_CREATED
        assert created.data["parent_session_id"] == sub.parent_id
        assert (await repo.catalog.get(sub.session_id) or {})["parent_session_id"] == sub.parent_id
        assert by_id[sub.session_id].kind == "sub"
    for fork in forks:
        result = by_id[fork.session_id]
        assert result.kind == "fork" and result.forked_from == fork.parent_id
        chain = await repo.chain(fork.session_id, resolve=False)
        at = next(i for i, b in enumerate(chain) if b.block_type is BlockType.FORK)
        assert chain[at].parents[0].hex() == result.fork_point
        parent_chain = await repo.chain(fork.parent_id, resolve=False)
        # Shared history is the parent's own blocks: same ids, not copies.
        assert [b.id for b in chain[:at]] == [b.id for b in parent_chain[:at]]
        shared = [b for b in chain[:at] if b.block_type is BlockType.EVENT]
        assert len(shared) == fork.copied_event_lines > 0
        lines = (fork.path / "events.jsonl").read_bytes().count(b"\n")
        assert len(shared) + result.events_migrated == lines
        doc = await repo.catalog.get(fork.session_id) or {}
        assert doc.get("forked_from") == fork.parent_id
    for folder in session_dirs(root):
        assert not await export_diffs(repo, folder.name, folder, tmp_path / "out" / folder.name)


async def test_fork_without_parent_is_imported_alone(
    tmp_path: Path, migrator: SessionMigrator, repo: Repository
) -> None:
    meta = {"session_id": SID, "parent_id": "absent-parent", "forked_from_turn": 1}
    folder = make_session(
        tmp_path, metadata=meta, transcript=basic_transcript(), events=basic_events()
    )
    [result] = (await migrator.import_path(tmp_path)).results
    assert result.status is MigrationStatus.COMPLETED and result.forked_from is None
    assert not await export_diffs(repo, SID, folder, tmp_path / "out")


# ------------------------------------------------------------------ re-runs
async def test_rerun_skips_then_picks_up_appended_lines(
    tmp_path: Path, migrator: SessionMigrator, repo: Repository
) -> None:
    folder = make_session(
        tmp_path, metadata={"session_id": SID}, transcript=basic_transcript(), events=basic_events()
    )
    await migrator.import_path(tmp_path)
    blocks_before = len(await repo.chain(SID))
    again = await migrator.import_path(tmp_path)
    assert again.skipped == 1 and again.results[0].blocks_created == 0
    assert len(await repo.chain(SID)) == blocks_before
    with open(folder / "events.jsonl", "ab") as fh:
        fh.write(event("session:end", "2026-06-01T10:00:09Z"))
    (folder / "transcript.jsonl").write_bytes(
        basic_transcript() + message("user", "more", "2026-06-01T10:00:08Z")
    )
    meta = {"session_id": SID, "turn_count": 2}
    (folder / "metadata.json").write_text(json.dumps(meta, indent=2))
    [result] = (await migrator.import_path(tmp_path)).results
    assert result.status is MigrationStatus.COMPLETED and not result.rewound
    assert (result.messages_migrated, result.events_migrated) == (1, 1)
    assert not await export_diffs(repo, SID, folder, tmp_path / "out")
    verified = await migrator.import_path(tmp_path, skip_if_exists=False)
    assert verified.results[0].messages_migrated == verified.results[0].events_migrated == 0


async def test_rerun_after_amplifier_rewind_keeps_old_blocks(
    tmp_path: Path, migrator: SessionMigrator, repo: Repository
) -> None:
    folder = make_session(
        tmp_path,
        metadata={"session_id": SID},
        transcript=basic_transcript(),
        events=basic_events(4),
    )
    await migrator.import_path(tmp_path)
    old_head = await repo.head(SID)
    # What an Amplifier rewind does: both files truncated in place.
    (folder / "transcript.jsonl").write_bytes(message("user", "héllo", "2026-06-01T10:00:00.500Z"))
    (folder / "events.jsonl").write_bytes(basic_events(2))
    [result] = (await migrator.import_path(tmp_path)).results
    assert result.rewound
    rewind = next(b for b in await repo.chain(SID) if b.block_type is BlockType.REWIND)
    assert rewind.parents[1] == old_head  # the abandoned history stays reachable
    assert not await export_diffs(repo, SID, folder, tmp_path / "out")


async def test_torn_line_completed_later(
    tmp_path: Path, migrator: SessionMigrator, repo: Repository
) -> None:
    full = event("tool:post", "2026-06-01T10:00:05Z", result="x" * 50)
    folder = make_session(tmp_path, events=basic_events(2) + full[:30])
    [first] = (await migrator.import_path(tmp_path)).results
    assert any("torn" in w.problem and w.line == 3 for w in first.warnings)
    (folder / "events.jsonl").write_bytes(basic_events(2) + full + basic_events(1))
    [second] = (await migrator.import_path(tmp_path)).results
    assert second.status is MigrationStatus.COMPLETED and second.rewound
    assert not await export_diffs(repo, SID, folder, tmp_path / "out")


# ------------------------------------------------------------------ bad input
def _warning(result: object, file: str, line: int | None, words: str) -> bool:
    return any(w.file == file and w.line == line and words in w.problem for w in result.warnings)  # type: ignore[attr-defined]


async def test_malformed_line(tmp_path: Path, migrator: SessionMigrator, repo: Repository) -> None:
    events = basic_events(2) + b'{"ts": "2026-06-01T10:00:03Z", "event": oops}\n' + basic_events(1)
    folder = make_session(
        tmp_path,
        metadata={"session_id": SID},
        events=events,
        transcript=basic_transcript() + b'{"role": "user", "content": \n',
    )
    [r] = (await migrator.import_path(tmp_path)).results
    assert r.status is MigrationStatus.COMPLETED
    assert _warning(r, "events.jsonl", 3, "malformed JSON")
    assert _warning(r, "transcript.jsonl", 3, "malformed JSON")
    assert (r.events_migrated, r.messages_migrated) == (4, 3)
    assert not await export_diffs(repo, SID, folder, tmp_path / "out")


async def test_torn_last_line(tmp_path: Path, migrator: SessionMigrator, repo: Repository) -> None:
    events = basic_events(3) + b'{"ts": "2026-06-01T10:00:09Z", "lvl": "INFO", "event": "llm:req'
    folder = make_session(tmp_path, events=events, transcript=basic_transcript())
    [r] = (await migrator.import_path(tmp_path)).results
    assert _warning(r, "events.jsonl", 4, "torn last line")
    assert r.events_migrated == 4 and r.messages_migrated == 2
    assert not await export_diffs(repo, SID, folder, tmp_path / "out")


async def test_missing_metadata(
    tmp_path: Path, migrator: SessionMigrator, repo: Repository
) -> None:
    folder = make_session(tmp_path, events=basic_events(), transcript=basic_transcript())
    [r] = (await migrator.import_path(tmp_path)).results
    assert r.status is MigrationStatus.COMPLETED
    assert _warning(r, "metadata.json", None, "missing")
    assert (r.events_migrated, r.messages_migrated) == (4, 2)
    assert not await export_diffs(repo, SID, folder, tmp_path / "out")
    assert not (tmp_path / "out" / "metadata.json").exists()


async def test_invalid_utf8(tmp_path: Path, migrator: SessionMigrator, repo: Repository) -> None:
    bad = b'{"ts": "2026-06-01T10:00:03Z", "event": "x", "data": "\xff\xfe"}\n'
    folder = make_session(
        tmp_path,
        metadata={"session_id": SID},
        events=basic_events(2) + bad,
        transcript=b'{"role": "user", "content": "\xc3"}\n' + basic_transcript(),
    )
    (folder / "metadata.json").write_bytes(b'{"session_id": "\xe9"}')
    [r] = (await migrator.import_path(tmp_path)).results
    assert _warning(r, "events.jsonl", 3, "invalid UTF-8")
    assert _warning(r, "transcript.jsonl", 1, "invalid UTF-8")
    assert _warning(r, "metadata.json", None, "invalid UTF-8")
    assert (r.events_migrated, r.messages_migrated) == (3, 3)
    assert not await export_diffs(repo, SID, folder, tmp_path / "out")


async def test_empty_files(tmp_path: Path, migrator: SessionMigrator, repo: Repository) -> None:
    folder = make_session(tmp_path, metadata={"session_id": SID}, events=b"", transcript=b"")
    [r] = (await migrator.import_path(tmp_path)).results
    assert r.status is MigrationStatus.COMPLETED
    assert _warning(r, "events.jsonl", None, "empty file")
    assert _warning(r, "transcript.jsonl", None, "empty file")
    assert not await export_diffs(repo, SID, folder, tmp_path / "out")
    blank = make_session(tmp_path / "b", events=basic_events(1) + b"\n" + basic_events(1))
    [r2] = (await migrator.import_path(tmp_path / "b")).results
    assert _warning(r2, "events.jsonl", 2, "empty line")
    assert not await export_diffs(repo, SID, blank, tmp_path / "out2")


async def test_backup_and_temp_files_reported_not_imported(
    tmp_path: Path, migrator: SessionMigrator
) -> None:
    folder = make_session(tmp_path, metadata={"session_id": SID}, transcript=basic_transcript())
    for name in (
        "transcript.jsonl.backup",
        ".transcript_abc.tmp",
        "events.jsonl.bak-pre-rewind-20260601",
        "metadata.json.backup",
    ):
        (folder / name).write_text("{}")
    [r] = (await migrator.import_path(tmp_path)).results
    assert sorted(r.ignored_files) == sorted(
        [
            ".transcript_abc.tmp",
            "events.jsonl.bak-pre-rewind-20260601",
            "metadata.json.backup",
            "transcript.jsonl.backup",
        ]
    )
    assert _warning(r, "transcript.jsonl.backup", None, "not imported (backup")


async def test_hostile_ids(tmp_path: Path, migrator: SessionMigrator, repo: Repository) -> None:
    good = make_session(
        tmp_path, metadata={"session_id": SID, "parent_id": "../x"}, events=basic_events()
    )
    hostile = SessionSource(session_id="../x", path=good)
    r = await migrator.migrate_session(hostile)
    assert r.status is MigrationStatus.FAILED and "../x" in (r.error or "")
    weird = make_session(tmp_path / "w", "bad id!", events=basic_events())
    batch = await migrator.import_path(tmp_path)
    [ok] = batch.results
    assert ok.status is MigrationStatus.COMPLETED
    assert _warning(ok, "metadata.json", None, "parent_id refused")
    assert "parent_session_id" not in (await repo.chain(SID, limit=1))[0].data
    [bad] = (await migrator.import_path(tmp_path / "w")).results
    assert bad.status is MigrationStatus.FAILED and "bad id!" in (bad.error or "")
    assert weird.exists() and await repo.session_ids() == [SID]


async def test_progress_callback_and_batch_counts(
    tmp_path: Path, migrator: SessionMigrator
) -> None:
    make_session(tmp_path, "a", events=basic_events())
    make_session(tmp_path, "b", transcript=basic_transcript())
    seen: list[tuple[str, int, int]] = []
    batch = await migrator.migrate_batch(
        await migrator.discover_sessions(tmp_path),
        on_progress=lambda r, i, n: seen.append((r.session_id, i, n)),
    )
    assert (batch.total, batch.completed, batch.failed, batch.skipped) == (2, 2, 0, 0)
    assert seen == [("a", 1, 2), ("b", 2, 2)]
    assert all(r.duration is not None and r.source_size_bytes > 0 for r in batch.results)


def test_order_sources_keeps_families_together(tmp_path: Path) -> None:
    """Parents before children, each family depth first; orphans and cycles kept."""
    from amplifier_session_storage.compat.migrator import SessionSource, order_sources

    def src(sid: str, parent: str | None = None) -> SessionSource:
        return SessionSource(session_id=sid, path=tmp_path / "absent", parent_id=parent)

    given = [
        src("a1", "a"), src("b"), src("a"), src("a1x", "a1"), src("b1", "b"),
        src("a2", "a"), src("orphan", "gone"), src("c", "d"), src("d", "c"),
    ]  # fmt: skip
    order = [s.session_id for s in order_sources(given)]
    assert order == ["b", "b1", "a", "a1", "a1x", "a2", "orphan", "c", "d"]
