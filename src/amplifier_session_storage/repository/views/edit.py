"""Turns, and the fork / rewind verbs that take a block, a sequence or a turn."""

from __future__ import annotations

from typing import Any

from ...core.ids import ObjectId
from ...core.objects import Block, BlockType, ChunkedPayload
from ...errors import InvalidInputError, NotFoundError
from ..repo import Repository
from .common import new_session_id

__all__ = ["fork_session", "rewind_session", "turn_end"]


def _turn_of(data: Any, users: int) -> int:
    if isinstance(data, dict) and isinstance(data.get("turn"), int):
        return int(data["turn"])
    return users


async def turn_end(repo: Repository, session_id: str, turn: int) -> ObjectId:
    """The block after which turn ``turn`` ends (turn 0: before the first turn starts).

    A message's turn is its ``turn`` field, else the count of user messages so far. Turn N
    ends right before the first message of a later turn, or at the head for the last turn;
    a REWIND there changes nothing itself, so the block it rewound to is returned.
    """
    if turn < 0:
        raise InvalidInputError("a turn number is >= 0")
    chain = await repo.chain(session_id, resolve=False)
    users, last, seen, end = 0, 0, turn == 0, len(chain) - 1
    for i, b in enumerate(chain):
        if b.block_type is not BlockType.MESSAGE:
            continue
        data = b.data
        if isinstance(data, ChunkedPayload):
            data = (await repo.get_block(b.id)).data
        if isinstance(data, dict) and data.get("role") == "user":
            users += 1
        t = _turn_of(data, users)
        last = max(last, t)
        if t > turn and i > 0:
            end = i - 1
            seen = True
            break
        seen = seen or t == turn
    if not seen or end < 0:
        raise NotFoundError(f"session {session_id!r} has no turn {turn} (last turn: {last})")
    while end > 0 and chain[end].block_type is BlockType.REWIND:
        end -= 1
    return chain[end].id


async def _point(
    repo: Repository, session_id: str, rev: str | None, turn: int | None
) -> ObjectId | None:
    if rev is not None and turn is not None:
        raise InvalidInputError("give a block/sequence or a turn, not both")
    if turn is not None:
        return await turn_end(repo, session_id, turn)
    if rev is not None:
        return await repo.resolve_rev(session_id, rev)
    return None


async def fork_session(
    repo: Repository,
    source: str,
    *,
    at: str | None = None,
    turn: int | None = None,
    new_id: str | None = None,
    name: str | None = None,
    timestamp_ns: int | None = None,
) -> Block:
    """Fork ``source`` at a block (``SEQ``, ``HEAD~N``, hex prefix), after turn ``turn``, or
    at its head; the new session is ``new_id`` (default a UUID) named ``name``."""
    point = await _point(repo, source, at, turn)
    return await repo.fork(
        source,
        new_id or new_session_id(),
        at=point,
        metadata={"name": name} if name else None,
        timestamp_ns=timestamp_ns,
    )


async def rewind_session(
    repo: Repository,
    session_id: str,
    *,
    to: str | None = None,
    turn: int | None = None,
    reason: str | None = None,
    timestamp_ns: int | None = None,
) -> Block:
    """Rewind to a block (``SEQ``, ``HEAD~N``, hex prefix) or to the end of turn ``turn``."""
    point = await _point(repo, session_id, to, turn)
    if point is None:
        raise InvalidInputError("say where to rewind to: a block/sequence or a turn")
    return await repo.rewind(session_id, point, reason, timestamp_ns=timestamp_ns)
