"""SessionStateReader: the seed's way to turn a list of blocks into session state."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..core.objects import Block
from ..repository.state import fold, linearize

__all__ = ["SessionStateReader"]


class SessionStateReader:
    """Computes ``(metadata, messages, event_summaries)`` from blocks (any order).

    The newest block's first-parent chain is used, so blocks abandoned by a rewind do not
    appear, and blocks written after a rewind do.
    """

    def compute_current_state(
        self, blocks: Sequence[Block]
    ) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
        state = fold(linearize(blocks))
        summaries = [
            {
                "event_id": e.get("event_id"),
                "event_type": e.get("event_type"),
                "turn": e.get("turn"),
            }
            for e in state.events
        ]
        return state.metadata, state.messages, summaries
