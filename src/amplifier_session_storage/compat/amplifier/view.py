"""What readers show for the blocks of an imported session (docs/design-amplifier.md §3-§4).

The importer stores what export needs to give the files back byte for byte: a transcript
line holding a long string as a skeleton with blobs (``{"role", "__line__": {"line",
"blobs"}}``), every events.jsonl line as a skeleton (``{"event_type", "line", ...}``). That
is not what the application wrote. :class:`PayloadRenderer` gives a block's payload as
readers want it -- the :data:`~amplifier_session_storage.repository.state.PayloadRender`
that the CLI views, SessionTool and SessionStateReader hand to the format-agnostic
repository:

* MESSAGE: the message dict, as ``SessionStore.load`` returns it. A skeleton is rendered
  from its blobs; the serializer flags of ``"__line__"`` (``ascii``, ``nl``) are dropped; a
  line stored as text is parsed. A payload without ``"__line__"`` (any message not imported)
  comes back as it is, and so does a line that is no JSON object (``{"__line__": {"text" |
  "bytes"}}``; a skeleton of one comes back as ``{"__line__": {"text": line}}``).
* EVENT: the events.jsonl line parsed (``{"ts", "lvl", "schema", "event", ..., "data"}``), or
  ``{"event_type", "line": text}`` for a line that is not a JSON object. A non-UTF-8 line
  (``"bytes"``) and any payload not in the import's shape come back as they are.
* other blocks, and payloads not yet resolved (``ChunkedPayload``): ``block.data``.

A payload that has the import's shape but does not hold together raises
:class:`CorruptObjectError` (a missing blob: :class:`NotFoundError`), never a bare
KeyError or TypeError.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable
from typing import Any

from ...core.objects import Block, BlockType, ChunkedPayload
from ...errors import CorruptObjectError, InvalidInputError, StorageError
from ...repository.repo import Repository
from .dedup import BlobReader
from .format import RESERVED, message_value

__all__ = ["PayloadRenderer", "is_skeleton_message", "plain_message"]

_SKELETON_KEYS = frozenset({"line", "blobs", "nl"})
_FLAG_KEYS = frozenset({"ascii", "nl"})
_WHOLE_KEYS = frozenset({"text", "bytes", "nl"})
_EVENT_KEYS = frozenset({"event_type", "lvl", "line", "blobs", "tsd", "nl", "pid"})


def _format_of(payload: Any) -> dict[str, Any] | None:
    """The ``"__line__"`` dict of an imported MESSAGE payload (None: not one)."""
    if not isinstance(payload, dict):
        return None
    fmt = payload.get(RESERVED)
    return fmt if isinstance(fmt, dict) else None


def is_skeleton_message(payload: Any) -> bool:
    """Whether a MESSAGE payload is a skeleton whose texts are in blobs (needs the store)."""
    fmt = _format_of(payload)
    return fmt is not None and "line" in fmt


def plain_message(payload: Any) -> Any:
    """The message a MESSAGE payload that needs no store stands for (see the module doc);
    InvalidInputError for a skeleton (:meth:`PayloadRenderer.message` renders those)."""
    fmt = _format_of(payload)
    if fmt is None:
        return payload
    if "line" in fmt:
        raise InvalidInputError(
            "an imported message stored as a skeleton with blobs needs the store to render"
        )
    if ("text" in fmt or "bytes" in fmt) and fmt.keys() <= _WHOLE_KEYS:
        value = message_value(payload)
        return payload if value is None else value
    if fmt.keys() <= _FLAG_KEYS:
        return {k: v for k, v in payload.items() if k != RESERVED}
    return payload  # not a shape the importer writes: shown as stored


def _counts(value: Any, links: int, what: str) -> None:
    if value is None:
        return
    if not isinstance(value, list) or not all(type(n) is int and n > 0 for n in value):
        raise CorruptObjectError(f"{what}: malformed blob counts {value!r:.80}")
    if sum(value) > links:
        raise CorruptObjectError(f"{what}: names {sum(value)} blob ids, the block links {links}")


async def _guarded(what: str, call: Awaitable[str | None]) -> str | None:
    """``await call``, with decoding failures of stored data as CorruptObjectError."""
    try:
        return await call
    except StorageError:
        raise
    except (ValueError, TypeError, KeyError, IndexError) as exc:  # undecodable stored data
        raise CorruptObjectError(f"{what}: cannot render ({exc})") from exc


class PayloadRenderer:
    """Renders the payloads of imported blocks for readers (``await renderer(block)``).

    ``messages`` / ``events``: which block types to render (the others come back as
    stored). One renderer caches blob texts (LRU), so reuse it for the blocks of one read.
    """

    def __init__(
        self,
        repo: Repository,
        *,
        messages: bool = True,
        events: bool = True,
        blobs: BlobReader | None = None,
    ) -> None:
        self.repo = repo
        self.messages = messages
        self.events = events
        self.blobs = blobs or BlobReader(repo.read_blob)

    async def __call__(self, block: Block) -> Any:
        data = block.data
        if isinstance(data, ChunkedPayload):
            return data
        if block.block_type is BlockType.MESSAGE and self.messages:
            return await self.message(block)
        if block.block_type is BlockType.EVENT and self.events:
            return await self.event(block)
        return data

    async def message(self, block: Block) -> Any:
        """The message of a MESSAGE block (see the module doc)."""
        payload = block.data
        if not is_skeleton_message(payload):
            return plain_message(payload)
        what = f"message block {block.block_id}"
        fmt = payload[RESERVED]
        if not fmt.keys() <= _SKELETON_KEYS or not isinstance(fmt["line"], str):
            raise CorruptObjectError(f"{what}: malformed skeleton")
        _counts(fmt.get("blobs"), len(block.links), what)
        text = await _guarded(what, self.blobs.message_text(payload, block.links)) or ""
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise CorruptObjectError(f"{what}: the rendered line is not JSON") from exc
        return value if isinstance(value, dict) else {RESERVED: {"text": text}}

    async def event(self, block: Block) -> Any:
        """The events.jsonl line of an EVENT block, parsed (see the module doc)."""
        payload = block.data
        if not (
            isinstance(payload, dict)
            and "line" in payload
            and "event_type" in payload
            and payload.keys() <= _EVENT_KEYS
        ):
            return payload  # a native event, or a line that is not UTF-8 ("bytes")
        what = f"event block {block.block_id}"
        tsd, pid = payload.get("tsd"), payload.get("pid")
        if (
            not isinstance(payload["line"], str)
            or (tsd is not None and (type(tsd) is not int or not 0 <= tsd <= 9))
            or (pid is not None and not isinstance(pid, str))
        ):
            raise CorruptObjectError(f"{what}: malformed skeleton")
        _counts(payload.get("blobs"), len(block.links), what)
        text = await _guarded(
            what,
            self.blobs.event_text(payload, block.links, block.session_id, block.timestamp_ns),
        )
        text = text or ""
        try:
            value = json.loads(text)
        except ValueError:
            value = None  # stored whole: the line was never JSON
        if isinstance(value, dict):
            return value
        return {"event_type": payload["event_type"], "line": text}
