"""Comparing stored blocks with a session's files, line by line.

Used to find how much of the files a session already holds (a re-run after the files
changed) and where a fork's copied lines stop matching its parent's blocks (the fork point).
A stored block matches a line when the renderer gives the line's exact bytes; for a new
fork, when the parent's line rewritten by one of the fork rule's ways gives the fork's line
(the way found is recorded in the rule, so export writes the same bytes).
"""

from __future__ import annotations

from ...core.objects import BlockType
from .format import ForkRule
from .reading import EventSource, Msg
from .render import ChainRenderer

__all__ = ["common_prefix"]

_MESSAGE, _EVENT = BlockType.MESSAGE, BlockType.EVENT


async def _matches(
    r: ChainRenderer, pos: int, line: bytes, nl: bool, new_rule: ForkRule | None
) -> bool:
    if new_rule is None:
        return await r.line(pos) == (line, nl)
    parts = await r.parts(pos)
    if parts is None or parts[0] is None or not parts[2] or not nl:
        return False
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return False
    if r.blocks[pos].block_type is _EVENT:
        return new_rule.match_event(parts[0], text)
    return new_rule.match_message(parts[0], text)


async def common_prefix(
    r: ChainRenderer,
    msgs: list[Msg],
    reader: EventSource,
    verified_msgs: int = 0,
    verified_events: int = 0,
    new_rule: ForkRule | None = None,
) -> tuple[int, int, int, bool]:
    """``(last_matched_index, messages, events, all_matched)`` of the renderer's blocks
    against the files. The first ``verified_*`` messages / events are known to match (by the
    import state's hashes); lines accepted from ``reader`` advance it. With ``new_rule`` the
    blocks are a parent's and the files a new fork's."""
    mi = ei = 0
    last = -1
    for pos, b in enumerate(r.blocks):
        t = b.block_type
        if t is _MESSAGE:
            if mi >= verified_msgs and (
                mi >= len(msgs) or not await _matches(r, pos, msgs[mi].line, msgs[mi].nl, new_rule)
            ):
                return last, mi, ei, False
            mi += 1
        elif t is _EVENT:
            if ei >= verified_events:
                item = reader.next()
                if item is None:
                    return last, mi, ei, False
                if not await _matches(r, pos, item[0], item[1], new_rule):
                    reader.push(item)
                    return last, mi, ei, False
                reader.accept(item[0], item[1])
            ei += 1
        else:
            continue
        last = pos
    return last, mi, ei, True
