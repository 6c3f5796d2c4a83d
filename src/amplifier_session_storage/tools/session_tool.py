"""SessionTool: lets an agent list, read, search and analyse sessions, and plan rewinds.

Reads through a :class:`~amplifier_session_storage.compat.storage.RepositoryBlockStorage`
(the local store by default). Sessions imported from Amplifier folders are read as the
application wrote them: messages and event lines rendered from their stored skeletons
(``compat.amplifier.view``). ``rewind_session`` is a dry run unless told otherwise, and a
real rewind writes a REWIND block: nothing is ever deleted.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from ..compat.amplifier.view import PayloadRenderer
from ..compat.config import StorageConfig
from ..compat.storage import LocalBlockStorage, RepositoryBlockStorage
from ..core.ids import validate_project_slug, validate_session_id
from ..core.objects import BlockType
from ..errors import InvalidInputError
from ..repository.repo import Repository
from ..repository.state import SessionState

__all__ = ["SessionTool", "SessionToolConfig"]


@dataclass
class SessionToolConfig:
    """What the tool may see and how much it returns."""

    project_slug: str | None = None
    max_results: int = 50
    max_excerpt_length: int = 500
    user_id: str = "session-tool"
    local_path: str | None = None

    def __post_init__(self) -> None:
        if self.project_slug is not None:
            validate_project_slug(self.project_slug)
        if self.max_results <= 0 or self.max_excerpt_length <= 0:
            raise InvalidInputError("max_results and max_excerpt_length must be positive")


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for block in content:
            if isinstance(block, dict):
                parts.append(str(block.get("text") or block.get("thinking") or ""))
            else:
                parts.append(str(block))
        return " ".join(p for p in parts if p)
    return "" if content is None else str(content)


def _event_type(event: dict[str, Any]) -> str:
    for key in ("event_type", "event"):
        if isinstance(event.get(key), str):
            return str(event[key])
    inner = event.get("record")
    if isinstance(inner, dict) and isinstance(inner.get("event"), str):
        return str(inner["event"])
    return "unknown"


def _is_error(event: dict[str, Any]) -> bool:
    record = event.get("record") if isinstance(event.get("record"), dict) else event
    assert isinstance(record, dict)
    return (
        "error" in _event_type(event)
        or record.get("lvl") == "ERROR"
        or bool(record.get("error"))
        or (isinstance(record.get("data"), dict) and bool(record["data"].get("error")))
    )


class SessionTool:
    """An agent-facing query tool over stored sessions (seed API)."""

    name = "sessions"
    description = "List, read, search and analyse stored Amplifier sessions; plan rewinds."

    def __init__(
        self,
        config: SessionToolConfig | None = None,
        *,
        storage: RepositoryBlockStorage | None = None,
    ) -> None:
        self.config = config or SessionToolConfig()
        self._storage = storage or LocalBlockStorage(
            StorageConfig(user_id=self.config.user_id, local_path=self.config.local_path)
        )

    async def _repo(self) -> Repository:
        return await self._storage.repository()

    async def _state(
        self, session_id: str, *, messages: bool = True, events: bool = True
    ) -> SessionState:
        repo = await self._repo()
        render = PayloadRenderer(repo, messages=messages, events=events)
        return await repo.materialize(session_id, render=render)

    def _excerpt(self, content: Any) -> str:
        text = _text(content)
        n = self.config.max_excerpt_length
        return text if len(text) <= n else text[: n - 1] + "…"

    async def list_sessions(
        self, limit: int | None = None, offset: int = 0
    ) -> list[dict[str, Any]]:
        repo = await self._repo()
        return await repo.list_sessions(
            self.config.project_slug,
            min(limit or self.config.max_results, self.config.max_results),
            offset,
        )

    async def get_session(self, session_id: str, include_messages: bool = True) -> dict[str, Any]:
        validate_session_id(session_id)
        state = await self._state(session_id, events=False)
        out: dict[str, Any] = {
            "session_id": session_id,
            "metadata": state.metadata,
            "message_count": len(state.messages),
            "event_count": len(state.events),
        }
        if include_messages:
            out["messages"] = [
                {"index": i, "role": m.get("role"), "excerpt": self._excerpt(m.get("content"))}
                for i, m in enumerate(state.messages[: self.config.max_results])
            ]
        return out

    async def search_sessions(self, query: str, limit: int | None = None) -> list[dict[str, Any]]:
        """Sessions whose messages contain ``query`` (case-insensitive), with excerpts."""
        if not isinstance(query, str) or not query.strip():
            raise InvalidInputError("query must be a non-empty string")
        needle = query.lower()
        repo = await self._repo()
        hits: list[dict[str, Any]] = []
        cap = min(limit or self.config.max_results, self.config.max_results)
        for summary in await repo.list_sessions(self.config.project_slug, 10_000, 0):
            state = await self._state(summary["session_id"], events=False)
            for i, m in enumerate(state.messages):
                text = _text(m.get("content"))
                pos = text.lower().find(needle)
                if pos >= 0:
                    start = max(0, pos - self.config.max_excerpt_length // 2)
                    hits.append(
                        {
                            "session_id": summary["session_id"],
                            "message_index": i,
                            "role": m.get("role"),
                            "excerpt": self._excerpt(text[start:]),
                        }
                    )
                    if len(hits) >= cap:
                        return hits
        return hits

    async def get_events(
        self,
        session_id: str,
        event_types: list[str] | None = None,
        errors_only: bool = False,
        limit: int = 50,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        validate_session_id(session_id)
        if limit < 0 or offset < 0:
            raise InvalidInputError("limit and offset must be >= 0")
        state = await self._state(session_id, messages=False)
        selected = [
            e
            for e in state.events
            if (not event_types or _event_type(e) in event_types)
            and (not errors_only or _is_error(e))
        ]
        page = selected[offset : offset + min(limit, self.config.max_results)]
        return [
            {"event_type": _event_type(e), "error": _is_error(e), "excerpt": self._excerpt(str(e))}
            for e in page
        ]

    async def analyze_events(self, session_id: str) -> dict[str, Any]:
        validate_session_id(session_id)
        state = await self._state(session_id, messages=False)
        counts = Counter(_event_type(e) for e in state.events)
        return {
            "session_id": session_id,
            "total_events": len(state.events),
            "by_type": dict(counts.most_common()),
            "errors": sum(1 for e in state.events if _is_error(e)),
            "messages": len(state.messages),
        }

    async def rewind_session(
        self,
        session_id: str,
        to_turn: int | None = None,
        to_message: int | None = None,
        dry_run: bool = True,
    ) -> dict[str, Any]:
        """Rewind to the end of turn ``to_turn`` or to keep ``to_message`` messages."""
        validate_session_id(session_id)
        if (to_turn is None) == (to_message is None):
            raise InvalidInputError("give exactly one of to_turn or to_message")
        repo = await self._repo()
        chain = await repo.chain(session_id, resolve=False)
        target = None
        kept = 0
        for b in chain:
            if b.block_type is BlockType.MESSAGE:
                turn = b.data.get("turn") if isinstance(b.data, dict) else None
                if to_message is not None and kept >= to_message:
                    break
                if to_turn is not None and isinstance(turn, int) and turn > to_turn:
                    break
                kept += 1
            target = b
        if target is None:
            raise InvalidInputError("nothing to rewind to")
        total = sum(1 for b in chain if b.block_type is BlockType.MESSAGE)
        result = {
            "session_id": session_id,
            "target_block": target.block_id,
            "target_sequence": target.sequence,
            "messages_kept": kept,
            "messages_removed": total - kept,
            "dry_run": dry_run,
        }
        if not dry_run and target.id != chain[-1].id:
            rewind = await repo.rewind(session_id, target.id, reason="session tool")
            result["rewind_block"] = rewind.block_id
        return result

    async def close(self) -> None:
        await self._storage.close()
