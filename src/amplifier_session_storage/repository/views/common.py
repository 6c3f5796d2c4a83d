"""Shared by the views: opening a local store, JSON-ready values, one-line summaries."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ...core.ids import ObjectId
from ...core.objects import Block, BlockType, ChunkedPayload
from ...errors import NotFoundError
from ..repo import Repository

__all__ = [
    "GC_STATE_FILE",
    "block_summary",
    "human_size",
    "init_store",
    "iso_time",
    "jsonable",
    "message_text",
    "new_session_id",
    "one_line",
    "open_store",
]

GC_STATE_FILE = "gc-state.json"
SUMMARY_WIDTH = 72


def init_store(root: Path | str) -> tuple[dict[str, Any], bool]:
    """Create the local repository at ``root`` if needed: (its config, whether it was new)."""
    from ..local import init_local, read_repo_config

    path = Path(root).expanduser()
    existed = path.exists() and read_repo_config(path) is not None
    return init_local(path), not existed


async def open_store(root: Path | str, *, user_id: str = "", fsync: bool = True) -> Repository:
    """Open the existing local repository at ``root`` (NotFoundError when there is none)."""
    from ..local import open_local, read_repo_config

    path = Path(root).expanduser()
    if not path.is_dir() or read_repo_config(path) is None:
        raise NotFoundError(f"no repository at {path} (run `sessctl init`)")
    return await open_local(path, user_id=user_id, fsync=fsync, create=False)


def new_session_id() -> str:
    """A fresh session id (a UUID, as Amplifier uses)."""
    return str(uuid.uuid4())


def jsonable(value: Any) -> Any:
    """``value`` with bytes as hex, tuples as lists and chunk references spelled out."""
    if isinstance(value, ObjectId | bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, ChunkedPayload):
        return {"chunked_size": value.size, "chunks": [c.hex() for c in value.chunk_ids]}
    return value


def iso_time(timestamp_ns: int) -> str:
    """A UTC timestamp as ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (stable whatever the local zone)."""
    return datetime.fromtimestamp(timestamp_ns / 1e9, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def one_line(text: str, width: int = SUMMARY_WIDTH) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def message_text(content: Any) -> str:
    """The readable text of a message's content (a string or a list of content parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for p in content:
            if isinstance(p, dict):
                text = p.get("text") or p.get("content") or f"[{p.get('type', 'part')}]"
                parts.append(message_text(text))
            else:
                parts.append(message_text(p))
        return " ".join(parts)
    return json.dumps(jsonable(content), ensure_ascii=False) if content is not None else ""


def human_size(n: int) -> str:
    """``1536 -> "1.5 KB"``."""
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("KB", "MB", "GB", "TB"):
        value /= 1024
        if value < 1024 or unit == "TB":
            break
    return f"{value:.1f} {unit}"


_STORED: Any = object()


def block_summary(block: Block, data: Any = _STORED) -> str:
    """One line saying what ``block`` records (FORK, REWIND and MERGE in capitals);
    ``data``: its payload as shown (a ``PayloadRender``'s), else ``block.data``."""
    t = block.block_type
    if data is _STORED:
        data = block.data
    d = data if isinstance(data, dict) else {}
    if isinstance(data, ChunkedPayload):
        kind = "message" if t is BlockType.MESSAGE else t.value
        return f"{kind} (large: {human_size(data.size)} in {len(data.chunk_ids)} chunks)"
    if t is BlockType.MESSAGE:
        return one_line(f"{d.get('role', '?')}: {message_text(d.get('content'))}")
    if t is BlockType.EVENT:
        kind = d.get("event_type") or d.get("event") or "?"
        if "data" not in d:
            return one_line(f"event {kind}")
        size = len(json.dumps(jsonable(d["data"]), ensure_ascii=False))
        return one_line(f"event {kind} ({human_size(size)})")
    if t is BlockType.EVENT_CHUNK:
        return f"event chunk {d.get('chunk_index', '?')} of {d.get('event_id', '?')}"
    if t is BlockType.SESSION_CREATED:
        what = d.get("name") or d.get("project_slug") or ""
        return one_line(f"created session{' ' + str(what) if what else ''}")
    if t is BlockType.SESSION_UPDATED:
        return one_line("updated " + ", ".join(f"{k}={v}" for k, v in d.items()))
    if t is BlockType.SESSION_DELETED:
        return "deleted"
    if t is BlockType.FORK:
        return f"FORK from {d.get('source_session_id', '?')}@{block.sequence - 1}"
    if t is BlockType.REWIND:
        reason = f": {d['reason']}" if d.get("reason") else ""
        return one_line(f"REWIND to {d.get('target_sequence', '?')}{reason}")
    if t is BlockType.MERGE:
        reason = f": {d['reason']}" if d.get("reason") else ""
        return one_line(f"MERGE {str(d.get('merged_head', '?'))[:12]}{reason}")
    return t.value  # pragma: no cover - every type is handled above
