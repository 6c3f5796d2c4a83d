"""SessionMigrator: Amplifier session folders into the repository (seed API, done right).

Finds sessions in both real layouts -- ``projects/<slug>/sessions/<id>/`` and the older
``sessions/<id>/`` -- and imports ``metadata.json``, ``transcript.jsonl`` and
``events.jsonl`` with :class:`~.amplifier.importer.SessionImporter`: every line kept with
its order, timestamps and bytes (export gives the same files back), messages and events
interleaved in one chain, sub-sessions linked to their parent, forks sharing their parent's
blocks up to the fork point. Backup, temporary and ``.bak-pre-*`` files are reported, not
imported. A re-run skips what is already in (by content) and picks up lines appended since.
A bad line never stops an import: the result names the file, line and problem.
"""

from __future__ import annotations

import contextlib
import gc
import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from ..core.ids import validate_session_id
from ..errors import InvalidInputError, MigrationError, StorageError
from ..repository.repo import Repository
from .amplifier.dedup import BlobCache
from .amplifier.format import parse_ts_ns
from .amplifier.importer import ImportWarning, SessionFiles, SessionImporter

__all__ = [
    "MigrationBatch",
    "MigrationResult",
    "MigrationStatus",
    "MigrationWarning",
    "SessionMigrator",
    "SessionSource",
]

MigrationWarning = ImportWarning
SESSION_FILES = ("metadata.json", "transcript.jsonl", "events.jsonl")
_IGNORED = re.compile(r"(\.backup$|\.tmp$|\.bak-pre-[a-z]+-|^config\.md$|^profile\.(md|toml)$)")


class MigrationStatus(StrEnum):
    """Where one session's migration stands."""

    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass
class SessionSource:
    """One Amplifier session folder found on disk (files that are absent are None)."""

    session_id: str
    path: Path
    project_slug: str | None = None
    created: datetime | None = None
    updated: datetime | None = None
    message_count: int = 0
    event_count: int = 0
    events_file: Path | None = None
    transcript_file: Path | None = None
    metadata_file: Path | None = None
    state_file: Path | None = None  # seed API attribute; Amplifier never wrote state.json
    total_size_bytes: int = 0
    layout: str = "projects"
    parent_id: str | None = None
    forked_from_turn: int | None = None
    ignored_files: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        if not self.path.is_dir():
            return
        size = 0
        for name, attr in zip(
            SESSION_FILES, ("metadata_file", "transcript_file", "events_file"), strict=True
        ):
            p = self.path / name
            if p.is_file():
                if getattr(self, attr) is None:
                    setattr(self, attr, p)
                size += p.stat().st_size
        if not self.total_size_bytes:
            self.total_size_bytes = size
        if not self.ignored_files:
            self.ignored_files = sorted(
                p.name for p in self.path.iterdir() if p.name not in SESSION_FILES
            )
        if self.metadata_file is not None and self.parent_id is None:
            self._read_metadata(self.metadata_file)

    def _read_metadata(self, path: Path) -> None:
        try:
            doc = json.loads(path.read_bytes())
        except (OSError, ValueError):
            return
        if not isinstance(doc, dict):
            return
        if isinstance(doc.get("parent_id"), str):
            self.parent_id = doc["parent_id"]
        turn = doc.get("forked_from_turn")
        self.forked_from_turn = turn if isinstance(turn, int) else None
        for key, attr in (("created", "created"), ("last_updated", "updated")):
            ns = parse_ts_ns(doc.get(key))
            if ns is not None:
                setattr(self, attr, datetime.fromtimestamp(ns / 1e9, tz=UTC))


@dataclass
class MigrationResult:
    """The outcome of migrating one session."""

    session_id: str
    status: MigrationStatus
    blocks_created: int = 0
    messages_migrated: int = 0
    events_migrated: int = 0
    started_at: datetime | None = None
    completed_at: datetime | None = None
    error_message: str | None = None
    error_details: dict[str, Any] = field(default_factory=dict)
    source_path: str | None = None
    source_size_bytes: int = 0
    bytes_read: int = 0
    warnings: list[ImportWarning] = field(default_factory=list)
    ignored_files: list[str] = field(default_factory=list)
    kind: str = "session"
    forked_from: str | None = None
    fork_point: str | None = None
    rewound: bool = False

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.completed_at:
            return (self.completed_at - self.started_at).total_seconds()
        return None

    @property
    def duration(self) -> float | None:
        """Seconds the migration took."""
        return self.duration_seconds

    @property
    def error(self) -> str | None:
        return self.error_message

    def to_dict(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "status": self.status.value,
            "blocks_created": self.blocks_created,
            "messages_migrated": self.messages_migrated,
            "events_migrated": self.events_migrated,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "completed_at": self.completed_at.isoformat() if self.completed_at else None,
            "duration_seconds": self.duration_seconds,
            "error_message": self.error_message,
            "error_details": self.error_details,
            "source_path": self.source_path,
            "source_size_bytes": self.source_size_bytes,
            "warnings": [
                {"file": w.file, "line": w.line, "problem": w.problem} for w in self.warnings
            ],
            "ignored_files": list(self.ignored_files),
            "kind": self.kind,
            "forked_from": self.forked_from,
        }


@dataclass
class MigrationBatch:
    """The outcome of migrating several sessions."""

    total_sessions: int = 0
    completed: int = 0
    failed: int = 0
    skipped: int = 0
    results: list[MigrationResult] = field(default_factory=list)
    started_at: datetime | None = None
    completed_at: datetime | None = None

    @property
    def total(self) -> int:
        return self.total_sessions

    @property
    def success_rate(self) -> float:
        return 0.0 if not self.total_sessions else self.completed / self.total_sessions * 100

    def add_result(self, result: MigrationResult) -> None:
        self.results.append(result)
        if result.status is MigrationStatus.COMPLETED:
            self.completed += 1
        elif result.status is MigrationStatus.FAILED:
            self.failed += 1
        elif result.status is MigrationStatus.SKIPPED:
            self.skipped += 1


ProgressCallback = Callable[[MigrationResult, int, int], Any]


class SessionMigrator:
    """Imports Amplifier session folders into ``storage`` (a repository-backed BlockStorage
    such as LocalBlockStorage, or a Repository) as ``user_id`` on ``device_id``."""

    def __init__(self, storage: Any, user_id: str, device_id: str | None = None) -> None:
        if not isinstance(user_id, str) or not user_id:
            raise InvalidInputError("user_id must be a non-empty string")
        self.storage = storage
        self.user_id = user_id
        self.device_id = device_id
        self._repo: Repository | None = None
        self._importer: SessionImporter | None = None
        self._cache = BlobCache()

    async def repository(self) -> Repository:
        """The repository the migrator writes to, as ``user_id`` on ``device_id``."""
        if self._repo is None:
            if isinstance(self.storage, Repository):
                base = self.storage
            elif hasattr(self.storage, "repository"):
                base = await self.storage.repository()
            else:
                raise InvalidInputError("SessionMigrator needs a repository-backed storage")
            self._repo = Repository(
                base.objects,
                base.refs,
                base.catalog,
                user_id=self.user_id,
                device_id=self.device_id or base.device_id,
            )
        return self._repo

    # ------------------------------------------------------------------ discovery
    async def discover_sessions(
        self, sessions_path: Path | str, project_filter: str | None = None
    ) -> list[SessionSource]:
        """Session folders under ``sessions_path``: an ``~/.amplifier`` folder, its
        ``projects`` or ``sessions`` folder, one project's ``sessions`` folder, or a single
        session folder. Parents come before their sub-sessions and forks."""
        root = Path(sessions_path).expanduser()
        found: list[SessionSource] = []
        for folder, slug, layout in _session_dirs(root):
            if project_filter is not None and slug != project_filter:
                continue
            found.append(
                SessionSource(session_id=folder.name, path=folder, project_slug=slug, layout=layout)
            )
        return order_sources(found)

    # ------------------------------------------------------------------ migration
    async def migrate_session(
        self, source: SessionSource, skip_if_exists: bool = True
    ) -> MigrationResult:
        """Import one session; with ``skip_if_exists`` an unchanged session is SKIPPED (and a
        grown one only gets its new lines), without it every stored line is re-verified."""
        result = MigrationResult(
            session_id=source.session_id,
            status=MigrationStatus.PENDING,
            source_path=str(source.path),
            source_size_bytes=source.total_size_bytes,
            ignored_files=list(source.ignored_files),
        )
        result.started_at = datetime.now(UTC)
        result.warnings.extend(
            ImportWarning(name, None, f"not imported ({_why_ignored(name)})")
            for name in source.ignored_files
        )
        try:
            validate_session_id(source.session_id)
            if not source.path.is_dir():
                raise MigrationError("session folder not found", str(source.path))
            if not (source.events_file or source.transcript_file or source.metadata_file):
                raise MigrationError(
                    "no session files (metadata.json, transcript.jsonl, events.jsonl)",
                    str(source.path),
                )
            if self._importer is None:
                self._importer = SessionImporter(await self.repository(), self._cache)
            result.status = MigrationStatus.IN_PROGRESS
            files = SessionFiles(
                source.session_id,
                source.path,
                source.project_slug,
                source.layout,
                source.metadata_file,
                source.transcript_file,
                source.events_file,
            )
            out = await self._importer.import_session(files, verify=not skip_if_exists)
        except (StorageError, OSError) as exc:
            result.status = MigrationStatus.FAILED
            where = "" if isinstance(exc, MigrationError) else f"{source.path}: "
            result.error_message = f"{where}{exc}"
            result.error_details = {"type": type(exc).__name__}
        else:
            skipped = out.skipped and skip_if_exists
            result.status = MigrationStatus.SKIPPED if skipped else MigrationStatus.COMPLETED
            result.blocks_created = out.blocks
            result.messages_migrated = out.messages
            result.events_migrated = out.events
            result.bytes_read = out.bytes_read
            result.warnings.extend(out.warnings)
            result.kind = out.kind
            result.forked_from = out.forked_from
            result.fork_point = out.fork_point.hex() if out.fork_point else None
            result.rewound = out.rewound
        result.completed_at = datetime.now(UTC)
        return result

    async def migrate_batch(
        self,
        sources: Sequence[SessionSource],
        skip_if_exists: bool = True,
        on_progress: ProgressCallback | None = None,
    ) -> MigrationBatch:
        """Migrate ``sources`` (parents first); ``on_progress(result, index, total)``."""
        ordered = order_sources(list(sources))
        batch = MigrationBatch(total_sessions=len(ordered), started_at=datetime.now(UTC))
        with _bulk_gc():
            for i, source in enumerate(ordered, 1):
                result = await self.migrate_session(source, skip_if_exists)
                batch.add_result(result)
                if on_progress is not None:
                    on_progress(result, i, len(ordered))
        batch.completed_at = datetime.now(UTC)
        return batch

    async def import_path(
        self,
        path: Path | str,
        project_filter: str | None = None,
        skip_if_exists: bool = True,
        on_progress: ProgressCallback | None = None,
    ) -> MigrationBatch:
        """Discover and migrate in one call (what ``sessctl import`` runs)."""
        sources = await self.discover_sessions(path, project_filter)
        return await self.migrate_batch(sources, skip_if_exists, on_progress)


_BULK_GC_USERS = 0
_BULK_GC_SAVED: tuple[int, int, int] | None = None


@contextlib.contextmanager
def _bulk_gc() -> Iterator[None]:
    """Fewer cyclic-GC passes while batches import (process-wide, restored when the last
    batch ends). An import keeps hundreds of thousands of long-lived objects -- the
    repository's block cache, the blob cache's indexes -- that every collection of the
    older generations walks again (about a tenth of the import's time with the default
    700-allocation threshold), while it makes almost no reference cycles; garbage is
    still collected, every 50,000 allocations."""
    global _BULK_GC_USERS, _BULK_GC_SAVED
    if _BULK_GC_USERS == 0:
        _BULK_GC_SAVED = gc.get_threshold()
        gc.set_threshold(max(_BULK_GC_SAVED[0], 50_000), *_BULK_GC_SAVED[1:])
    _BULK_GC_USERS += 1
    try:
        yield
    finally:
        _BULK_GC_USERS -= 1
        if _BULK_GC_USERS == 0 and _BULK_GC_SAVED is not None:
            gc.set_threshold(*_BULK_GC_SAVED)
            _BULK_GC_SAVED = None


def _why_ignored(name: str) -> str:
    if _IGNORED.search(name):
        return "backup, temporary or legacy profile file"
    return "not a session file"


def _is_session_dir(p: Path) -> bool:
    return p.is_dir() and any((p / name).is_file() for name in SESSION_FILES)


def _children(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return []


def _session_dirs(root: Path) -> list[tuple[Path, str | None, str]]:
    """``(folder, project_slug, layout)`` of every session folder under ``root``."""
    if _is_session_dir(root):
        parent = root.parent
        if parent.name == "sessions" and parent.parent.parent.name == "projects":
            return [(root, parent.parent.name, "projects")]
        return [(root, None, "sessions" if parent.name == "sessions" else "folder")]
    out: list[tuple[Path, str | None, str]] = []
    if root.name == "sessions" and root.parent.parent.name == "projects":
        return [(d, root.parent.name, "projects") for d in _children(root) if _is_session_dir(d)]
    if root.parent.name == "projects":  # one project's folder
        return [
            (d, root.name, "projects") for d in _children(root / "sessions") if _is_session_dir(d)
        ]
    projects = root if root.name == "projects" else root / "projects"
    for proj in _children(projects):
        out += [
            (d, proj.name, "projects") for d in _children(proj / "sessions") if _is_session_dir(d)
        ]
    legacy = root if root.name == "sessions" else root / "sessions"
    out += [(d, None, "sessions") for d in _children(legacy) if _is_session_dir(d)]
    return out


def order_sources(sources: list[SessionSource]) -> list[SessionSource]:
    """Parents before their sub-sessions and forks, each family together: depth first
    (a session, then its children and their descendants, in discovery order). Related
    sessions share the most text, and what is written together is packed together."""
    by_id = {s.session_id: s for s in sources}
    children: dict[str, list[SessionSource]] = {}
    roots: list[SessionSource] = []
    for s in sources:
        parent = s.parent_id
        if parent is not None and parent in by_id and parent != s.session_id:
            children.setdefault(parent, []).append(s)
        else:
            roots.append(s)
    out: list[SessionSource] = []
    done: set[str] = set()

    def visit(s: SessionSource) -> None:
        stack = [s]
        while stack:
            cur = stack.pop()
            if cur.session_id in done:
                continue
            done.add(cur.session_id)
            out.append(cur)
            stack.extend(reversed(children.get(cur.session_id, [])))

    for s in roots:
        visit(s)
    for s in sources:  # a parent cycle has no root: keep its members, in discovery order
        visit(s)
    return out
