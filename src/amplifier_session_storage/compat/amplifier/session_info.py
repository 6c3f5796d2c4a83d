"""What a session's own newest blocks say about it: import state, metadata.json, fork rule.

Metadata-carrying blocks are SESSION_CREATED and SESSION_UPDATED (their payload) and FORK
(``data["metadata"]``). The keys this package uses in them:

* ``"metadata"`` / ``"metadata_format"``: the Amplifier metadata.json (see :mod:`.format`);
* ``"amplifier_import"``: the import state written at the end of every import batch::

      {"version": 1, "done": bool, "kind": "session"|"sub"|"fork", "layout": str,
       "project_slug": str|None, "imported_ns": int,
       "fork_rule": {"session_id", "parent_session_id", "events": [[mode, n]...],
                     "messages": [[mode, n]...]} | None,
       "events": {"present", "offset", "lines", "hash", "torn", "size", "hash_all"},
       "transcript": {"present", "size", "hash_all", "lines", "imported"},
       "metadata": {"present", "hash_all"},
       "chain": {"messages": int, "events": int}}

  ``offset``/``lines``/``hash``: bytes, count and BLAKE3 of the complete lines imported;
  ``torn``: length of an unterminated last line imported after them (0 if none);
  ``size``/``hash_all``: the whole file as last imported (None while in progress);
  ``chain``: MESSAGE and EVENT blocks on the live chain when the state was written.

The walk covers the session's own blocks only (it stops at the first inherited block: a
fork's blocks before its fork point belong to the parent), newest first, and usually ends
at the head: every completed import writes its state and metadata in its last block.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...core.ids import ObjectId
from ...core.objects import Block, BlockType, ChunkedPayload
from ...repository.repo import Repository
from .format import ForkRule

__all__ = ["IMPORT_KEY", "OwnInfo", "meta_data", "own_info"]

IMPORT_KEY = "amplifier_import"
_META_TYPES = {BlockType.SESSION_CREATED, BlockType.SESSION_UPDATED, BlockType.FORK}


def meta_data(block: Block) -> dict[str, Any] | None:
    """The metadata-carrying dict of a (resolved) block, or None."""
    data = block.data
    if not isinstance(data, dict):
        return None
    if block.block_type is BlockType.FORK:
        inner = data.get("metadata")
        return inner if isinstance(inner, dict) else None
    if block.block_type in (BlockType.SESSION_CREATED, BlockType.SESSION_UPDATED):
        return data
    return None


@dataclass
class OwnInfo:
    """The newest facts recorded by a session's own blocks."""

    head: ObjectId | None = None
    state: dict[str, Any] | None = None
    state_block: ObjectId | None = None
    has_metadata: bool = False
    metadata: dict[str, Any] | None = None
    metadata_format: dict[str, Any] | None = None
    rule: ForkRule | None = None
    root: Block | None = None  # own SESSION_CREATED / FORK, if the walk reached it
    summary: dict[str, Any] | None = None  # the root's metadata-carrying dict

    @property
    def fork_source(self) -> str | None:
        root = self.root
        if root is not None and root.block_type is BlockType.FORK and isinstance(root.data, dict):
            src = root.data.get("source_session_id")
            return src if isinstance(src, str) else None
        return None


async def own_info(
    repo: Repository, session_id: str, head: ObjectId | None = None, *, to_root: bool = False
) -> OwnInfo:
    """Walk the session's own blocks from ``head`` (default: its ref) back as far as needed."""
    info = OwnInfo(head=head if head is not None else await repo.head(session_id))
    async for b in repo.walk(info.head):
        if b.session_id != session_id:
            break
        if b.block_type in _META_TYPES:
            if isinstance(b.data, ChunkedPayload):
                b = await repo.get_block(b.id, resolve=True)
            data = meta_data(b)
            if data is not None:
                _absorb(info, b, data)
            if b.block_type in (BlockType.SESSION_CREATED, BlockType.FORK):
                info.root = b
                info.summary = data
                break
        if not to_root and info.state is not None and info.has_metadata:
            break
    return info


def _absorb(info: OwnInfo, block: Block, data: dict[str, Any]) -> None:
    if info.state is None and isinstance(data.get(IMPORT_KEY), dict):
        info.state = data[IMPORT_KEY]
        info.state_block = block.id
        if info.rule is None:
            info.rule = ForkRule.from_data(info.state.get("fork_rule"))
    if info.rule is None and "fork_rule" in data:
        info.rule = ForkRule.from_data(data.get("fork_rule"))
    if not info.has_metadata and "metadata_format" in data:
        info.has_metadata = True
        doc, fmt = data.get("metadata"), data.get("metadata_format")
        info.metadata = doc if isinstance(doc, dict) else None
        info.metadata_format = fmt if isinstance(fmt, dict) else None
