"""Exporting sessions back to Amplifier's layout, byte for byte.

``export_session`` writes ``transcript.jsonl``, ``events.jsonl`` and ``metadata.json`` of one
session into a folder; ``export_all`` writes every session under
``<root>/projects/<slug>/sessions/<id>/`` (or ``<root>/sessions/<id>/`` for sessions imported
from the older layout). For an imported session whose files were not changed since, the
bytes are exactly those imported. A fork's inherited lines are rendered as the fork tool
wrote them (see ``format.ForkRule``). Files are written to a temporary name and renamed.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from ...core.ids import validate_project_slug, validate_session_id
from ...core.objects import Block, BlockType
from ...errors import InvalidInputError
from ...repository.repo import Repository
from .dedup import BlobReader
from .format import decode_metadata
from .render import ChainRenderer
from .session_info import OwnInfo, own_info

__all__ = ["ExportResult", "export_all", "export_path", "export_session", "render_lines"]


@dataclass
class ExportResult:
    """What ``export_session`` wrote: file name -> bytes, and the line counts."""

    session_id: str
    path: Path
    files: dict[str, int] = field(default_factory=dict)
    messages: int = 0
    events: int = 0


async def render_lines(
    repo: Repository,
    session_id: str,
    blocks: list[Block] | None = None,
    info: OwnInfo | None = None,
) -> AsyncIterator[tuple[BlockType, bytes]]:
    """``(MESSAGE|EVENT, line_with_its_newline)`` for the session's history, in chain order."""
    if info is None:
        info = await own_info(repo, session_id)
    if blocks is None:
        head = await repo.require_head(session_id)
        blocks = await repo.history(head)
    renderer = await ChainRenderer.create(
        repo, BlobReader(repo.read_blob), blocks, session_id, info.rule
    )
    for pos, b in enumerate(blocks):
        if b.block_type is BlockType.MESSAGE or b.block_type is BlockType.EVENT:
            rendered = await renderer.line(pos)
            if rendered is not None:  # None: an inherited line the fork tool did not copy
                line, nl = rendered
                yield b.block_type, (line + b"\n" if nl else line)


def _write_atomic(path: Path, chunks: list[bytes]) -> int:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    n = 0
    with open(tmp, "wb") as fh:
        for c in chunks:
            fh.write(c)
            n += len(c)
    os.replace(tmp, path)
    return n


async def export_session(repo: Repository, session_id: str, dest_dir: Path | str) -> ExportResult:
    """Write the session's Amplifier files into ``dest_dir`` (created if needed).

    metadata.json is written when the session has one, transcript.jsonl when it was
    imported with one or has messages (or was saved through SessionStore), events.jsonl
    when it was imported with one or has events.
    """
    validate_session_id(session_id)
    head = await repo.require_head(session_id)
    info = await own_info(repo, session_id, head)
    blocks = await repo.history(head)
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    result = ExportResult(session_id, dest)
    transcript: list[bytes] = []
    ev_tmp = dest / f".events.jsonl.{os.getpid()}.tmp"
    ev_fh: IO[bytes] | None = None
    ev_bytes = 0
    try:
        async for kind, line in render_lines(repo, session_id, blocks, info):
            if kind is BlockType.MESSAGE:
                transcript.append(line)
                result.messages += 1
            else:
                if ev_fh is None:
                    ev_fh = open(ev_tmp, "wb")  # noqa: SIM115 - closed below
                ev_fh.write(line)
                ev_bytes += len(line)
                result.events += 1
        state = info.state or {}
        ev_state = state.get("events") or {}
        if ev_fh is None and ev_state.get("present"):
            ev_fh = open(ev_tmp, "wb")  # noqa: SIM115 - an empty events.jsonl was imported
        if ev_fh is not None:
            ev_fh.close()
            ev_fh = None
            os.replace(ev_tmp, dest / "events.jsonl")
            result.files["events.jsonl"] = ev_bytes
    finally:
        if ev_fh is not None:
            ev_fh.close()
            ev_tmp.unlink(missing_ok=True)
    tr_state = (info.state or {}).get("transcript")
    if transcript or not isinstance(tr_state, dict) or tr_state.get("present"):
        result.files["transcript.jsonl"] = _write_atomic(dest / "transcript.jsonl", transcript)
    meta = decode_metadata(info.metadata, info.metadata_format) if info.has_metadata else None
    if meta is not None:
        result.files["metadata.json"] = _write_atomic(dest / "metadata.json", [meta])
    return result


async def _location(repo: Repository, session_id: str) -> tuple[str | None, str | None]:
    """``(layout, project_slug)`` the session was imported from (or its catalog slug)."""
    info = await own_info(repo, session_id)
    state: dict[str, Any] = info.state or {}
    slug = state.get("project_slug")
    if slug is None:
        doc = await repo.catalog.get(session_id) or {}
        slug = doc.get("project_slug")
    try:
        slug = validate_project_slug(slug) if slug is not None else None
    except InvalidInputError:
        slug = None
    layout = state.get("layout")
    return (layout if isinstance(layout, str) else None), slug


async def export_path(repo: Repository, session_id: str, root: Path | str) -> Path:
    """Where ``export_all`` puts a session under ``root``: ``sessions/<id>`` for the older
    layout, else ``projects/<slug>/sessions/<id>`` (slug ``default`` when unknown)."""
    layout, slug = await _location(repo, session_id)
    root = Path(root)
    if layout == "sessions":
        return root / "sessions" / session_id
    return root / "projects" / (slug or "default") / "sessions" / session_id


async def export_all(
    repo: Repository, root: Path | str, *, project_filter: str | None = None
) -> list[ExportResult]:
    """Export every session (optionally one project's) under ``root`` in Amplifier's layout."""
    results = []
    for sid in sorted(await repo.session_ids()):
        if project_filter is not None and (await _location(repo, sid))[1] != project_filter:
            continue
        results.append(await export_session(repo, sid, await export_path(repo, sid, root)))
    return results
