"""Rendering a chain of blocks back to the exact lines of a session's files.

A block of the viewing session is rendered as it was imported (its exact bytes). A block of
another session -- a fork's inherited history -- is rendered as that session wrote it, then
rewritten by every fork rule between it and the viewer: the FORK blocks later in the chain,
in chain order (so a fork of a fork gets both rewrites, as its files did). The rule of a
fork whose FORK block is no longer on the chain (rewound below its fork point) comes from
its import state and applies from its first block on.
"""

from __future__ import annotations

from typing import Any

from ...core.objects import Block, BlockType, ChunkedPayload
from ...repository.repo import Repository
from .dedup import BlobReader, has_blobs
from .format import RESERVED, ForkRule, render_message
from .session_info import meta_data

__all__ = ["ChainRenderer"]

_MESSAGE, _EVENT, _FORK = BlockType.MESSAGE, BlockType.EVENT, BlockType.FORK
Parts = tuple[str | None, bytes | None, bool]


class ChainRenderer:
    """The lines of ``blocks`` (oldest first) as session ``viewer`` has them in its files."""

    def __init__(
        self,
        repo: Repository,
        blobs: BlobReader,
        blocks: list[Block],
        rules: list[tuple[int, ForkRule]],
    ) -> None:
        self.repo = repo
        self.blobs = blobs
        self.blocks = blocks
        self.rules = rules
        self.index: list[int] = []  # each block's index among the blocks of its kind
        counts = {_MESSAGE: 0, _EVENT: 0}
        for b in blocks:
            n = counts.get(b.block_type, 0)
            self.index.append(n)
            if b.block_type in counts:
                counts[b.block_type] = n + 1

    @classmethod
    async def create(
        cls,
        repo: Repository,
        blobs: BlobReader,
        blocks: list[Block],
        viewer: str,
        viewer_rule: ForkRule | None,
    ) -> ChainRenderer:
        rules: list[tuple[int, ForkRule]] = []
        first_own = len(blocks)
        viewer_forked = False
        for pos, b in enumerate(blocks):
            if b.session_id == viewer and first_own == len(blocks):
                first_own = pos
            if b.block_type is _FORK:
                if isinstance(b.data, ChunkedPayload):
                    b = await repo.get_block(b.id, resolve=True)
                rule = ForkRule.from_data((meta_data(b) or {}).get("fork_rule"))
                if rule is not None:
                    rules.append((pos, rule))
                    viewer_forked = viewer_forked or b.session_id == viewer
        if viewer_rule is not None and not viewer_forked:
            rules.append((first_own, viewer_rule))
            rules.sort(key=lambda r: r[0])
        return cls(repo, blobs, blocks, rules)

    async def payload(self, pos: int) -> Any:
        b = self.blocks[pos]
        if isinstance(b.data, ChunkedPayload):
            return (await self.repo.get_block(b.id, resolve=True)).data
        return b.data

    async def own_parts(self, pos: int) -> Parts | None:
        """``(text, raw_bytes, had_newline)`` of the line as its own session imported it."""
        b = self.blocks[pos]
        payload = await self.payload(pos)
        if b.block_type is _MESSAGE:
            if has_blobs(payload):
                nl = bool(payload[RESERVED].get("nl", True))
                return await self.blobs.message_text(payload, b.links), None, nl
            rendered = render_message(payload)
            if rendered is None:
                return None
            line, nl = rendered
            try:
                return line.decode("utf-8"), None, nl
            except UnicodeDecodeError:
                return None, line, nl
        if b.block_type is _EVENT and isinstance(payload, dict):
            nl = bool(payload.get("nl", True))
            if "bytes" in payload:
                return None, bytes(payload["bytes"]), nl
            text = await self.blobs.event_text(payload, b.links, b.session_id, b.timestamp_ns)
            return None if text is None else (text, None, nl)
        return None

    async def parts(self, pos: int) -> Parts | None:
        """The line as the viewer's files have it (None: the fork tools did not copy it)."""
        parts = await self.own_parts(pos)
        if parts is None:
            return None
        later = [rule for at, rule in self.rules if at > pos]
        if not later:
            return parts
        text, _, nl = parts
        if text is None or not nl:
            return None  # unterminated or not UTF-8: a fork tool never copies such a line
        is_event = self.blocks[pos].block_type is _EVENT
        index = self.index[pos]
        for rule in later:
            out = rule.render_event(text, index) if is_event else rule.render_message(text, index)
            if out is None:
                return None
            text = out
        return text, None, True

    async def line(self, pos: int) -> tuple[bytes, bool] | None:
        """The exact bytes (without newline) of the viewer's line, and whether it had one."""
        parts = await self.parts(pos)
        if parts is None:
            return None
        text, raw, nl = parts
        return (raw if raw is not None else (text or "").encode("utf-8")), nl
