"""Folding an ordered chain of blocks into a session's current state.

Pure functions over already-resolved blocks; the repository decides the order (first-parent
chain, with merged branches spliced in by time) and this module decides what each block
type means. ``SessionStateReader`` in the seed API is a thin shell over :func:`fold`.

Payloads are folded as stored. A layer above that knows a storage format (e.g. the
Amplifier import's skeleton messages, ``compat.amplifier.view``) passes what a block shows
as ``payloads``, or a :data:`PayloadRender` to ``Repository.materialize``: this module
never interprets a format.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..core.ids import ObjectId
from ..core.objects import Block, BlockType, ChunkedPayload
from ..errors import InvalidInputError

__all__ = ["PayloadRender", "SessionState", "fold", "linearize"]

PayloadRender = Callable[[Block], Awaitable[Any]]
"""What a block shows readers: its payload as the application wrote it (``block.data``
when nothing needs rendering). Given by a layer above the repository."""


@dataclass
class SessionState:
    """A session as of its head: metadata, messages and events, in order."""

    session_id: str
    metadata: dict[str, Any] = field(default_factory=dict)
    messages: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    deleted: bool = False
    head: ObjectId | None = None
    sequence: int = 0
    blocks: int = 0


def _as_dict(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else {"value": value}


def fold(
    blocks: Iterable[Block],
    session_id: str | None = None,
    *,
    payloads: Sequence[Any] | None = None,
) -> SessionState:
    """Apply ``blocks`` (oldest first, payloads resolved) to an empty state; ``payloads``
    (one per block, in order) replace the blocks' own ``data`` when given."""
    state = SessionState(session_id or "")
    pending_chunks: dict[str, list[Any]] = {}
    last: Block | None = None
    pairs: Iterator[tuple[Block, Any]]
    if payloads is None:
        pairs = ((b, b.data) for b in blocks)
    else:
        seq = list(blocks)
        if len(seq) != len(payloads):
            raise InvalidInputError(f"{len(payloads)} payloads for {len(seq)} blocks")
        pairs = zip(seq, payloads, strict=True)
    for b, data in pairs:
        last = b
        state.blocks += 1
        if isinstance(data, ChunkedPayload):
            raise ValueError(f"block {b.block_id} has an unresolved payload")
        t = b.block_type
        if t is BlockType.MESSAGE:
            state.messages.append(data if isinstance(data, dict) else {"content": data})
        elif t is BlockType.EVENT:
            state.events.append(_as_dict(data))
        elif t is BlockType.EVENT_CHUNK:
            d = _as_dict(data)
            key = str(d.get("event_id", ""))
            parts = pending_chunks.setdefault(key, [])
            parts.append(d.get("data"))
            total = d.get("total_chunks", d.get("parts", 1))
            if isinstance(total, int) and len(parts) >= total:
                joined: Any = "".join(p for p in parts if isinstance(p, str))
                state.events.append(
                    {
                        "event_id": key,
                        "event_type": d.get("event_type"),
                        "data": joined,
                        "turn": d.get("turn"),
                    }
                )
                del pending_chunks[key]
        elif t is BlockType.SESSION_CREATED:
            state.metadata = _as_dict(data)
            state.metadata.setdefault("created_ns", b.timestamp_ns)
            state.deleted = False
        elif t is BlockType.SESSION_UPDATED:
            state.metadata.update(_as_dict(data))
        elif t is BlockType.SESSION_DELETED:
            state.deleted = True
        elif t is BlockType.FORK:
            d = _as_dict(data)
            meta = d.get("metadata")
            if isinstance(meta, dict):
                state.metadata.update(meta)
            state.metadata["forked_from"] = {
                "session_id": d.get("source_session_id"),
                "block_id": b.parent_block_id,
                "sequence": b.sequence - 1,
            }
            state.metadata["created_ns"] = b.timestamp_ns
            state.deleted = False
        # REWIND and MERGE change nothing themselves: the chain already reflects them.
    if last is not None:
        state.session_id = session_id or last.session_id
        state.head = last.id
        state.sequence = last.sequence
    if state.session_id:
        state.metadata["session_id"] = state.session_id
    return state


def linearize(blocks: Sequence[Block]) -> list[Block]:
    """Order an arbitrary set of blocks as the chain its newest block sees.

    For the seed's ``compute_current_state(blocks)``: the head is the block with the
    highest sequence (the last one on ties); its first-parent chain inside ``blocks`` is
    returned oldest first, so blocks abandoned by a rewind are left out. Blocks without
    parent links (written by other tools) fall back to sequence order.
    """
    if not blocks:
        return []
    by_id = {b.id: b for b in blocks}
    head = max(enumerate(blocks), key=lambda ib: (ib[1].sequence, ib[0]))[1]
    chain: list[Block] = []
    cur: Block | None = head
    while cur is not None:
        chain.append(cur)
        cur = by_id.get(cur.parents[0]) if cur.parents else None
    if len(chain) == 1 and len(blocks) > 1:
        return sorted(blocks, key=lambda b: b.sequence)
    chain.reverse()
    return chain
