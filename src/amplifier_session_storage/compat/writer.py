"""BlockWriter: builds the blocks of one session, chained on the writer's own last block.

The writer needs no storage: it chains each block onto the previous one it made, so ids are
known at once. When the storage finds that the session's head has moved (another device or
process appended first), it rebuilds the blocks on the new head instead of losing them.
"""

from __future__ import annotations

import time
from typing import Any

from ..core.ids import ObjectId, validate_name, validate_project_slug, validate_session_id
from ..core.objects import Block, BlockType
from ..errors import InvalidInputError

__all__ = ["VISIBILITIES", "BlockWriter"]

VISIBILITIES = ("private", "team", "org", "public")
ROLES = ("user", "assistant", "tool", "system", "developer")


class BlockWriter:
    """Makes the blocks of ``session_id`` for ``user_id`` on ``device_id``."""

    def __init__(
        self, session_id: str, user_id: str, device_id: str, *, head: Block | None = None
    ) -> None:
        self.session_id = validate_session_id(session_id)
        if not isinstance(user_id, str) or not user_id:
            raise InvalidInputError("user_id must be a non-empty string")
        if not isinstance(device_id, str):
            raise InvalidInputError("device_id must be a string")
        self.user_id = user_id
        self.device_id = device_id
        self._parent: ObjectId | None = head.id if head else None
        self._sequence = head.sequence if head else 0
        self._ids: dict[int, ObjectId] = {}
        if head is not None:
            self._ids[head.sequence] = head.id

    @property
    def sequence(self) -> int:
        """The sequence of the last block this writer made (0 before the first)."""
        return self._sequence

    def advance(self, block: Block) -> None:
        """Continue after ``block`` (e.g. the block the storage actually committed)."""
        self._parent, self._sequence = block.id, block.sequence
        self._ids[block.sequence] = block.id

    def _make(
        self,
        block_type: BlockType,
        data: Any,
        parents: tuple[ObjectId, ...] | None = None,
        sequence: int | None = None,
    ) -> Block:
        if parents is None:
            parents = (self._parent,) if self._parent is not None else ()
        seq = self._sequence + 1 if sequence is None else sequence
        block = Block(
            block_type,
            self.session_id,
            parents,
            seq,
            time.time_ns(),
            self.device_id,
            self.user_id,
            data,
        )
        self.advance(block)
        return block

    def create_session(
        self,
        project_slug: str,
        name: str | None = None,
        description: str | None = None,
        bundle: str | None = None,
        model: str | None = None,
        visibility: str = "private",
        org_id: str | None = None,
        team_ids: list[str] | None = None,
        tags: list[str] | None = None,
        parent_session_id: str | None = None,
    ) -> Block:
        """The SESSION_CREATED block (the session's root)."""
        validate_project_slug(project_slug)
        _check_visibility(visibility, org_id, team_ids)
        if parent_session_id is not None:
            validate_session_id(parent_session_id)
        data: dict[str, Any] = {
            "project_slug": project_slug,
            "name": name,
            "description": description,
            "bundle": bundle,
            "model": model,
            "visibility": visibility,
            "org_id": org_id,
            "team_ids": list(team_ids or []),
            "tags": list(tags or []),
            "parent_session_id": parent_session_id,
        }
        self._parent, self._sequence = None, 0
        return self._make(BlockType.SESSION_CREATED, data, parents=(), sequence=1)

    def update_session(
        self,
        name: str | None = None,
        description: str | None = None,
        visibility: str | None = None,
        team_ids: list[str] | None = None,
        tags: list[str] | None = None,
    ) -> Block:
        """A SESSION_UPDATED block holding only the fields given."""
        if visibility is not None and visibility not in VISIBILITIES:
            raise InvalidInputError(f"visibility must be one of {VISIBILITIES}, got {visibility!r}")
        for t in team_ids or []:
            validate_name(t, "team id")
        fields = {
            "name": name,
            "description": description,
            "visibility": visibility,
            "team_ids": list(team_ids) if team_ids is not None else None,
            "tags": list(tags) if tags is not None else None,
        }
        data = {k: v for k, v in fields.items() if v is not None}
        if not data:
            raise InvalidInputError("update_session needs at least one field to change")
        return self._make(BlockType.SESSION_UPDATED, data)

    def add_message(
        self,
        role: str,
        content: Any,
        turn: int,
        tool_calls: list[dict[str, Any]] | None = None,
        tool_call_id: str | None = None,
    ) -> Block:
        """A MESSAGE block: ``{"role", "content", "turn"[, "tool_calls"][, "tool_call_id"]}``."""
        if role not in ROLES:
            raise InvalidInputError(f"role must be one of {ROLES}, got {role!r}")
        if not isinstance(turn, int) or turn < 0:
            raise InvalidInputError(f"turn must be a non-negative int, got {turn!r}")
        data: dict[str, Any] = {"role": role, "content": content, "turn": turn}
        if tool_calls is not None:
            data["tool_calls"] = tool_calls
        if tool_call_id is not None:
            data["tool_call_id"] = tool_call_id
        return self._make(BlockType.MESSAGE, data)

    def add_event(
        self, event_id: str, event_type: str, data: Any, turn: int | None = None
    ) -> list[Block]:
        """An EVENT block. Large data is cut into content-defined chunks inside the object
        store, so one block always suffices; the list return type is the seed's."""
        if not isinstance(event_id, str) or not isinstance(event_type, str) or not event_type:
            raise InvalidInputError("event_id and event_type must be strings")
        payload = {"event_id": event_id, "event_type": event_type, "data": data, "turn": turn}
        return [self._make(BlockType.EVENT, payload)]

    def rewind(self, target_sequence: int, reason: str | None = None) -> Block:
        """A REWIND to ``target_sequence``; the storage keeps the abandoned head reachable."""
        if not isinstance(target_sequence, int) or not 0 < target_sequence <= self._sequence:
            raise InvalidInputError(
                f"target_sequence must be in 1..{self._sequence}, got {target_sequence!r}"
            )
        target = self._ids.get(target_sequence)
        head = self._parent
        parents = tuple(p for p in (target, head) if p is not None)
        data = {
            "target": target.hex() if target else None,
            "target_sequence": target_sequence,
            "abandoned_head": head.hex() if head else None,
            "reason": reason,
        }
        block = self._make(BlockType.REWIND, data, parents=parents, sequence=target_sequence + 1)
        return block

    def fork(
        self, source: Block, name: str | None = None, metadata: dict[str, Any] | None = None
    ) -> Block:
        """The FORK block that starts this writer's session at ``source`` (any session's block)."""
        meta = dict(metadata or {})
        if name is not None:
            meta["name"] = name
        data = {"source_session_id": source.session_id, "metadata": meta}
        return self._make(BlockType.FORK, data, parents=(source.id,), sequence=source.sequence + 1)

    def delete_session(self) -> Block:
        """A SESSION_DELETED block (the storage then drops the ref; the reflog keeps it)."""
        return self._make(BlockType.SESSION_DELETED, {"deleted": True})


def _check_visibility(visibility: str, org_id: str | None, team_ids: list[str] | None) -> None:
    if visibility not in VISIBILITIES:
        raise InvalidInputError(f"visibility must be one of {VISIBILITIES}, got {visibility!r}")
    if visibility in ("team", "org") and not org_id:
        raise InvalidInputError(f"visibility {visibility!r} needs an org_id")
    if visibility == "team" and not team_ids:
        raise InvalidInputError("visibility 'team' needs at least one team id")
    for t in team_ids or []:
        validate_name(t, "team id")
    if org_id is not None:
        validate_name(org_id, "org id")
