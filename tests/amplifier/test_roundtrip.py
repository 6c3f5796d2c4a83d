"""Import -> export gives back every file byte for byte; repeated content is stored once."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import ModuleType

import pytest
from amp_helpers import FILES, export_diffs, session_dirs, stored_bytes

from amplifier_session_storage.compat.amplifier import export_all
from amplifier_session_storage.compat.migrator import MigrationStatus, SessionMigrator
from amplifier_session_storage.core.objects import BlockType
from amplifier_session_storage.repository import Repository

PROJECT = "-home-u-app"


def _session(root: Path, sid: str, **files: Path | bytes) -> Path:
    """A session folder ``root/projects/<slug>/sessions/<sid>`` holding the given files."""
    folder = root / "projects" / PROJECT / "sessions" / sid
    folder.mkdir(parents=True)
    for name, src in files.items():
        target = (
            folder
            / {
                "metadata": "metadata.json",
                "transcript": "transcript.jsonl",
                "events": "events.jsonl",
            }[name]
        )
        target.write_bytes(src if isinstance(src, bytes) else src.read_bytes())
    return folder


def _sample_tree(samples: Path, root: Path) -> None:
    """Arrange every shared sample file as session folders (copies in a temp dir only)."""
    for name in ("context-intelligence-63cc3feb", "context-intelligence-d094c4f8"):
        src = samples / name
        if src.is_dir():
            _session(root, name, metadata=src / "metadata.json", events=src / "events.jsonl")
    fresh = samples / "freshell-fixtures"
    if fresh.is_dir():
        _session(
            root,
            "interactive",
            metadata=fresh / "interactive.metadata.json",
            transcript=fresh / "transcript.jsonl",
            events=fresh / "events/normal-turn.jsonl",
        )
        _session(
            root,
            "interactive-x_subagent",
            metadata=fresh / "subagent.metadata.json",
            events=fresh / "events/steering-injection.jsonl",
        )
        for ev in sorted((fresh / "events").glob("*.jsonl")):
            _session(root, f"fixture-{ev.stem}", events=ev)
    partial = samples / "transcript-2026-09-partial" / "transcript.jsonl"
    if partial.is_file():
        _session(root, "transcript-2026-09", transcript=partial)


async def _migrate_all(repo: Repository, root: Path) -> list[str]:
    migrator = SessionMigrator(repo, user_id="tester")
    batch = await migrator.import_path(root)
    assert batch.failed == 0, [r.error for r in batch.results if r.error]
    return [r.session_id for r in batch.results]


async def test_samples_round_trip_byte_identical(
    samples_dir: Path, tmp_path: Path, repo: Repository
) -> None:
    root = tmp_path / "amplifier"
    _sample_tree(samples_dir, root)
    folders = session_dirs(root)
    if not folders:
        pytest.skip(f"no sample files found in {samples_dir}")
    await _migrate_all(repo, root)
    diffs: list[str] = []
    for folder in folders:
        diffs += await export_diffs(repo, folder.name, folder, tmp_path / "out" / folder.name)
    assert not diffs


async def test_sample_resume_append_picked_up(
    samples_dir: Path, tmp_path: Path, repo: Repository
) -> None:
    events = samples_dir / "freshell-fixtures" / "events"
    if not (events / "resume-append.jsonl").is_file():
        pytest.skip(f"freshell fixtures not found in {samples_dir}")
    root = tmp_path / "amplifier"
    folder = _session(root, "resumed", events=events / "normal-turn.jsonl")
    migrator = SessionMigrator(repo, user_id="tester")
    first = await migrator.import_path(root)
    assert first.completed == 1
    appended = (events / "resume-append.jsonl").read_bytes()
    with open(folder / "events.jsonl", "ab") as fh:
        fh.write(appended)
    second = await migrator.import_path(root)
    [result] = second.results
    assert result.status is MigrationStatus.COMPLETED
    assert result.events_migrated == appended.count(b"\n")
    assert result.messages_migrated == 0
    assert not await export_diffs(repo, "resumed", folder, tmp_path / "out")


@pytest.mark.parametrize(
    ("layout", "ensure_ascii", "torn"),
    [("projects", True, True), ("legacy", False, False)],
)
async def test_generated_sessions_round_trip(
    generator: ModuleType,
    tmp_path: Path,
    repo: Repository,
    layout: str,
    ensure_ascii: bool,
    torn: bool,
) -> None:
    root = tmp_path / "amplifier"
    summary = generator.generate(
        root, 14, 12_000_000, seed=7, layout=layout, torn=torn, ensure_ascii=ensure_ascii
    )
    await _migrate_all(repo, root)
    diffs: list[str] = []
    for folder in session_dirs(root):
        diffs += await export_diffs(repo, folder.name, folder, tmp_path / "out" / folder.name)
    assert not diffs
    assert len(session_dirs(root)) == summary.sessions


async def test_export_all_recreates_the_tree(
    generator: ModuleType, tmp_path: Path, repo: Repository
) -> None:
    root = tmp_path / "amplifier"
    generator.generate(root, 6, 3_000_000, seed=11)
    await _migrate_all(repo, root)
    out = tmp_path / "exported"
    results = await export_all(repo, out)
    assert len(results) == len(session_dirs(root))
    slug = session_dirs(root)[0].parent.parent.name
    only = await export_all(repo, tmp_path / "one-project", project_filter=slug)
    assert only and all(r.path.parent.parent.name == slug for r in only)
    for folder in session_dirs(root):
        twin = out / folder.relative_to(root)
        for name in FILES:
            assert (folder / name).exists() == (twin / name).exists(), (folder, name)
            if (folder / name).exists():
                assert (folder / name).read_bytes() == (twin / name).read_bytes(), (folder, name)


async def test_dedup_twenty_turn_session(
    generator: ModuleType, tmp_path: Path, repo: Repository
) -> None:
    """llm:request repeats the whole conversation: stored size must be a fraction of raw."""
    root = tmp_path / "amplifier"
    summary = generator.generate(root, 1, 30_000_000, seed=1)
    [record] = summary.records
    assert record.turns >= 20 and record.llm_requests >= 60
    raw = sum((record.path / n).stat().st_size for n in FILES if (record.path / n).exists())
    await _migrate_all(repo, root)
    stored = await stored_bytes(repo)
    # Measured: 6.6% (2.0 MB of 30.2 MB) with the generator of 2026-11; 25% leaves room.
    assert stored < 0.25 * raw, f"stored {stored:,} bytes for {raw:,} raw"
    assert not await export_diffs(repo, record.session_id, record.path, tmp_path / "out")


async def test_repeated_messages_share_blobs(
    generator: ModuleType, tmp_path: Path, repo: Repository
) -> None:
    root = tmp_path / "amplifier"
    summary = generator.generate(root, 1, 3_000_000, seed=2)
    [record] = summary.records
    await _migrate_all(repo, root)
    requests = [
        b
        for b in await repo.chain(record.session_id)
        if b.block_type is BlockType.EVENT and b.data.get("event_type") == "llm:request"
    ]
    assert len(requests) >= 3
    # Each later request carries the earlier conversation: it names it as one run (a node
    # hole right after "messages": [) and spells out only the messages added since, so its
    # skeleton and links do not grow with the conversation.
    later = requests[2:]
    assert all('"messages": [\x04' in str(b.data["line"]) for b in later)
    assert max(len(b.links) for b in later) <= 2 * min(len(b.links) for b in later) + 16
    assert max(len(str(b.data["line"])) for b in later) < 8192


async def test_copied_tree_is_independent(tmp_path: Path, repo: Repository) -> None:
    """Export never writes into the source tree (a destination of its own)."""
    root = tmp_path / "amplifier"
    folder = _session(root, "s1", events=b'{"event": "x", "ts": "2026-01-01T00:00:00Z"}\n')
    await _migrate_all(repo, root)
    shutil.rmtree(root)
    out = tmp_path / "out"
    await export_all(repo, out)
    assert (out / folder.relative_to(root) / "events.jsonl").read_bytes() == (
        b'{"event": "x", "ts": "2026-01-01T00:00:00Z"}\n'
    )
