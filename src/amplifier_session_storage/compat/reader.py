"""SessionStateReader: the seed's way to turn a list of blocks into session state."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..core.objects import Block, BlockType
from ..errors import InvalidInputError
from ..repository.repo import Repository
from ..repository.state import SessionState, fold, linearize

# compat.amplifier (the Amplifier format) is imported on first use: ``import
# amplifier_session_storage`` stays light.

__all__ = ["SessionStateReader"]

State = tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]


class SessionStateReader:
    """Computes ``(metadata, messages, event_summaries)`` from blocks (any order).

    The newest block's first-parent chain is used, so blocks abandoned by a rewind do not
    appear, and blocks written after a rewind do.

    Messages of sessions imported from Amplifier folders are returned as the application
    wrote them (``compat.amplifier.view``). One that holds a long string is stored as a
    skeleton whose texts are in the store: rendering it needs ``storage`` (a Repository or
    a repository-backed BlockStorage) and :meth:`compute_current_state_async`; the
    synchronous :meth:`compute_current_state` refuses such blocks (InvalidInputError)
    rather than return the skeleton. Event summaries need no rendering: an imported event's
    payload keeps its ``event_type``.
    """

    def __init__(self, storage: Any = None) -> None:
        self.storage = storage

    def compute_current_state(self, blocks: Sequence[Block]) -> State:
        return _plain_state(linearize(blocks))

    async def compute_current_state_async(self, blocks: Sequence[Block]) -> State:
        """:meth:`compute_current_state`, rendering imported messages from the store."""
        from .amplifier.view import PayloadRenderer, is_skeleton_message

        chain = linearize(blocks)
        if not any(
            b.block_type is BlockType.MESSAGE and is_skeleton_message(b.data) for b in chain
        ):
            return _plain_state(chain)
        render = PayloadRenderer(await self._repository(), events=False)
        return _result(fold(chain, payloads=[await render(b) for b in chain]))

    async def _repository(self) -> Repository:
        storage = self.storage
        if isinstance(storage, Repository):
            return storage
        if hasattr(storage, "repository"):
            repo = await storage.repository()
            if isinstance(repo, Repository):
                return repo
        raise InvalidInputError(
            "rendering imported messages needs SessionStateReader(storage): a Repository or "
            "a repository-backed BlockStorage"
        )


def _plain_state(chain: list[Block]) -> State:
    """The state of ``chain``, whose messages need no store to render."""
    from .amplifier.view import is_skeleton_message, plain_message

    payloads: list[Any] = []
    for b in chain:
        if b.block_type is BlockType.MESSAGE and is_skeleton_message(b.data):
            raise InvalidInputError(
                f"block {b.block_id} is an imported message stored as a skeleton with "
                "blobs: use `await SessionStateReader(storage)"
                ".compute_current_state_async(blocks)` to render it"
            )
        payloads.append(plain_message(b.data) if b.block_type is BlockType.MESSAGE else b.data)
    return _result(fold(chain, payloads=payloads))


def _result(state: SessionState) -> State:
    summaries = [
        {
            "event_id": e.get("event_id"),
            "event_type": e.get("event_type"),
            "turn": e.get("turn"),
        }
        for e in state.events
    ]
    return state.metadata, state.messages, summaries
