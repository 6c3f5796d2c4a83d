"""The importer's harder paths: batches, a killed import, forks rewound, mixed use."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from amp_helpers import export_diffs, session_dirs

from amplifier_session_storage.compat.amplifier import (
    SessionFiles,
    SessionImporter,
    own_info,
)
from amplifier_session_storage.compat.migrator import SessionMigrator
from amplifier_session_storage.compat.session_store import SessionStore
from amplifier_session_storage.core.objects import BlockType
from amplifier_session_storage.repository import Repository


def files_of(folder: Path) -> SessionFiles:
    return SessionFiles(
        folder.name,
        folder,
        folder.parent.parent.name,
        "projects",
        folder / "metadata.json",
        folder / "transcript.jsonl",
        folder / "events.jsonl",
    )


@pytest.fixture
def one_session(generator: ModuleType, tmp_path: Path) -> Path:
    summary = generator.generate(tmp_path / "amp", 1, 2_000_000, seed=4)
    return Path(summary.records[0].path)


async def test_small_batches_write_progress_blocks(
    one_session: Path, repo: Repository, tmp_path: Path
) -> None:
    importer = SessionImporter(repo, batch_blocks=7)
    out = await importer.import_session(files_of(one_session))
    chain = await repo.chain(one_session.name)
    progress = [b for b in chain if b.block_type is BlockType.SESSION_UPDATED]
    assert len(progress) >= out.events // 7
    assert progress[-1].data["amplifier_import"]["done"] is True
    assert not any(b.data["amplifier_import"]["done"] for b in progress[:-1])
    assert not await export_diffs(repo, one_session.name, one_session, tmp_path / "out")


async def test_killed_import_resumes_without_duplicates(
    one_session: Path, repo: Repository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = 0
    real = Repository.append_many

    async def dying(self: Repository, *args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise KeyboardInterrupt  # the process is killed mid-import
        return await real(self, *args, **kwargs)

    monkeypatch.setattr(Repository, "append_many", dying)
    with pytest.raises(KeyboardInterrupt):
        await SessionImporter(repo, batch_blocks=10).import_session(files_of(one_session))
    monkeypatch.setattr(Repository, "append_many", real)
    partial = len(
        [b for b in await repo.chain(one_session.name) if b.block_type is BlockType.EVENT]
    )
    assert 0 < partial < 40
    out = await SessionImporter(repo, batch_blocks=10).import_session(files_of(one_session))
    assert not out.rewound
    lines = (one_session / "events.jsonl").read_bytes().count(b"\n")
    assert partial + out.events == lines
    assert not await export_diffs(repo, one_session.name, one_session, tmp_path / "out")


async def test_fork_rewound_below_its_fork_point(
    generator: ModuleType, tmp_path: Path, repo: Repository
) -> None:
    root = tmp_path / "amp"
    summary = generator.generate(root, 12, 30_000_000, seed=3)
    fork = next(r for r in summary.records if r.kind == "fork")
    migrator = SessionMigrator(repo, user_id="tester")
    await migrator.import_path(root)
    folder = Path(fork.path)
    # Amplifier rewinds the fork to its first turn: both files cut inside the copied part.
    transcript = (folder / "transcript.jsonl").read_bytes().split(b"\n")
    (folder / "transcript.jsonl").write_bytes(b"\n".join(transcript[:1]) + b"\n")
    events = (folder / "events.jsonl").read_bytes().split(b"\n")
    (folder / "events.jsonl").write_bytes(b"\n".join(events[:3]) + b"\n")
    batch = await migrator.import_path(root)
    result = next(r for r in batch.results if r.session_id == fork.session_id)
    assert result.rewound
    info = await own_info(repo, fork.session_id)
    assert info.rule is not None  # still known after the FORK block left the live chain
    assert not await export_diffs(repo, fork.session_id, folder, tmp_path / "out")
    again = await migrator.import_path(root)
    assert again.skipped == len(session_dirs(root))


async def test_session_store_on_an_imported_session(
    one_session: Path, repo: Repository, tmp_path: Path
) -> None:
    await SessionImporter(repo).import_session(files_of(one_session))
    store = SessionStore(repo)
    transcript, meta = await store.load(one_session.name)
    assert len(transcript) == (one_session / "transcript.jsonl").read_bytes().count(b"\n")
    await store.save(one_session.name, [*transcript, {"role": "user", "content": "one more"}], meta)
    await SessionImporter(repo).import_session(files_of(one_session))  # files win again
    out = tmp_path / "out"
    assert not await export_diffs(repo, one_session.name, one_session, out)
    chain = await repo.chain(one_session.name)
    rewind = next(b for b in reversed(chain) if b.block_type is BlockType.REWIND)
    kept = [
        b.data.get("content")
        async for b in repo.walk(rewind.parents[1], limit=3)
        if b.block_type is BlockType.MESSAGE
    ]
    assert "one more" in kept  # the message saved in between is still reachable
