"""Import a tree of Amplifier sessions into the local repository, with a summary.

``import_tree`` is what ``sessctl import`` and ``sessctl archive`` run: discover, migrate
(parents before forks and sub-sessions), and measure bytes in versus bytes stored. With
``verify`` every imported session is exported again and compared byte for byte with its
source files; with ``compact`` the object store is repacked into one segment pack
afterwards, with the cold-storage settings (``stores.segpack.ARCHIVE_LEVEL``,
``ARCHIVE_SEGMENT_BYTES``).
"""

from __future__ import annotations

import filecmp
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...compat.config import StorageConfig
from ...compat.storage import LocalBlockStorage
from ...stores.segpack import ARCHIVE_LEVEL, ARCHIVE_SEGMENT_BYTES
from .exporter import export_session

__all__ = ["ArchiveSummary", "import_tree", "stored_bytes"]

SESSION_FILES = ("transcript.jsonl", "events.jsonl", "metadata.json")


@dataclass
class ArchiveSummary:
    """What an import or archive did."""

    sessions: int = 0
    completed: int = 0
    skipped: int = 0
    failed: int = 0
    bytes_in: int = 0
    stored_before: int = 0
    stored_after: int = 0
    verified: int = 0
    mismatches: list[str] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    repacked_objects: int | None = None

    @property
    def stored_added(self) -> int:
        return self.stored_after - self.stored_before

    @property
    def ratio(self) -> float:
        """Bytes in per byte added to the store (higher is better)."""
        return self.bytes_in / self.stored_added if self.stored_added > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "sessions": self.sessions,
            "completed": self.completed,
            "skipped": self.skipped,
            "failed": self.failed,
            "bytes_in": self.bytes_in,
            "stored_before": self.stored_before,
            "stored_after": self.stored_after,
            "stored_added": self.stored_added,
            "ratio": round(self.ratio, 3),
            "verified": self.verified,
            "mismatches": self.mismatches,
            "failures": self.failures,
            "warnings": self.warnings,
            "repacked_objects": self.repacked_objects,
        }


def stored_bytes(root: Path) -> int:
    """Apparent bytes of the repository's objects (loose files and packs)."""
    total = 0
    for dirpath, _, files in os.walk(Path(root) / "objects"):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except FileNotFoundError:
                continue
    return total


Progress = Callable[[int, int, str], None]


async def import_tree(
    store_root: Path,
    source: Path,
    *,
    user_id: str,
    project_filter: str | None = None,
    skip_if_exists: bool = True,
    verify: bool = False,
    compact: bool = False,
    on_progress: Progress | None = None,
) -> ArchiveSummary:
    """Import every Amplifier session under ``source`` into the repository at ``store_root``."""
    from ..migrator import MigrationStatus, SessionMigrator

    summary = ArchiveSummary(stored_before=stored_bytes(store_root))
    storage = LocalBlockStorage(StorageConfig(user_id=user_id, local_path=store_root))
    try:
        migrator = SessionMigrator(storage, user_id=user_id)
        sources = await migrator.discover_sessions(Path(source), project_filter)
        summary.sessions = len(sources)
        summary.bytes_in = sum(s.total_size_bytes for s in sources)

        def progress(result: Any, index: int, total: int) -> None:
            if on_progress is not None:
                on_progress(index, total, result.session_id)

        batch = await migrator.migrate_batch(sources, skip_if_exists, progress)
        summary.completed, summary.skipped, summary.failed = (
            batch.completed,
            batch.skipped,
            batch.failed,
        )
        for r in batch.results:
            if r.status is MigrationStatus.FAILED:
                summary.failures.append(
                    {"session_id": r.session_id, "path": r.source_path, "error": r.error_message}
                )
            summary.warnings.extend(str(w) for w in r.warnings)
        repo = await storage.repository()
        if verify:
            by_id = {s.session_id: s for s in sources}
            with tempfile.TemporaryDirectory(prefix="sessctl-verify-") as tmp:
                for r in batch.results:
                    src = by_id.get(r.session_id)
                    if r.status is MigrationStatus.FAILED or src is None:
                        continue
                    out = Path(tmp) / r.session_id
                    await export_session(repo, r.session_id, out)
                    same = all(
                        filecmp.cmp(src.path / name, out / name, shallow=False)
                        for name in SESSION_FILES
                        if (src.path / name).is_file()
                    )
                    if same:
                        summary.verified += 1
                    else:
                        summary.mismatches.append(r.session_id)
        if compact:
            repack = getattr(repo.objects, "repack", None)
            if repack is not None:  # the cold-storage profile: see stores.segpack
                summary.repacked_objects = await repack(
                    level=ARCHIVE_LEVEL, segment_bytes=ARCHIVE_SEGMENT_BYTES
                )
    finally:
        await storage.close()
    summary.stored_after = stored_bytes(store_root)
    return summary
