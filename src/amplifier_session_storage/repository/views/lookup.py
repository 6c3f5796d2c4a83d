"""Naming and looking at things: SESSION[@REV] and id prefixes, show, diff, status."""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...core.codec import unpack
from ...core.ids import ObjectId, is_hex_prefix
from ...core.objects import Block, BlockType, object_kind
from ...errors import InvalidInputError, NotFoundError, SessionNotFoundError
from ..repo import Repository
from ..state import PayloadRender, fold
from .common import block_summary, iso_time, jsonable, message_text, one_line

__all__ = [
    "MessageDiff",
    "StoreStatus",
    "Target",
    "diff_heads",
    "raw_object",
    "read_verified",
    "resolve_target",
    "session_summary",
    "show",
    "show_block",
    "split_rev",
    "store_status",
]


@dataclass
class Target:
    """What a ``SESSION``, ``SESSION@REV`` or hex prefix names."""

    oid: ObjectId
    session_id: str | None = None  # set for SESSION and SESSION@REV
    is_session: bool = False  # a bare SESSION: its head, shown as a session summary


def split_rev(spec: str) -> tuple[str, str | None]:
    """``"s@5" -> ("s", "5")``; ``"s" -> ("s", None)`` (the last ``@`` separates)."""
    if "@" not in spec:
        return spec, None
    sid, rev = spec.rsplit("@", 1)
    if not sid or not rev:
        raise InvalidInputError(f"not SESSION@REV: {spec!r}")
    return sid, rev


async def resolve_target(repo: Repository, spec: str) -> Target:
    """Resolve ``SESSION`` (its head), ``SESSION@REV`` (sequence, HEAD~N, hex) or an object
    id prefix (4+ hex digits, unique in the store)."""
    if not spec:
        raise InvalidInputError("empty session or object name")
    try:
        head = await repo.head(spec)
    except InvalidInputError:
        head = None  # not a valid session id: may still be SESSION@REV or an id
    if head is not None:
        return Target(head, spec, True)
    if "@" in spec:
        sid, rev = split_rev(spec)
        return Target(await repo.resolve_rev(sid, rev), sid)
    if is_hex_prefix(spec.lower()) and len(spec) >= 4:
        try:
            return Target(await repo.find_object(spec))
        except NotFoundError:
            raise NotFoundError(f"no session or object named {spec!r}") from None
    raise SessionNotFoundError(spec)


async def raw_object(repo: Repository, oid: ObjectId) -> Any:
    """The object's verified canonical bytes decoded (bytes as hex): what is stored."""
    return jsonable(unpack(await repo.read_object(oid), oid.hex()))


async def show_block(
    repo: Repository, oid: ObjectId, render: PayloadRender | None = None
) -> dict[str, Any]:
    """A block (payload resolved, and rendered by ``render`` when given) or a chunk, as a
    JSON-ready dict."""
    canonical = await repo.read_object(oid)
    if object_kind(canonical) != "b":
        return {"kind": "chunk", "id": oid.hex(), "size": len(canonical)}
    b = await repo.get_block(oid)
    data = b.data if render is None else await render(b)
    return {
        "kind": "block",
        "id": b.block_id,
        "type": b.block_type.value,
        "session_id": b.session_id,
        "sequence": b.sequence,
        "timestamp_ns": b.timestamp_ns,
        "time": iso_time(b.timestamp_ns),
        "parents": [p.hex() for p in b.parents],
        "links": [x.hex() for x in b.links],
        "user_id": b.user_id,
        "device_id": b.device_id,
        "size": b.size_bytes,
        "summary": block_summary(b, data),
        "data": jsonable(data),
    }


async def session_summary(
    repo: Repository, session_id: str, render: PayloadRender | None = None
) -> dict[str, Any]:
    """A session as of its head: metadata, counts and the last messages (those rendered
    by ``render`` when given; nothing else is)."""
    blocks = await repo.history(await repo.require_head(session_id))
    state = fold(blocks, session_id)
    last = state.messages[-5:]
    if render is not None:
        tail = [b for b in blocks if b.block_type is BlockType.MESSAGE][-5:]
        shown = [await render(b) for b in tail]
        last = [d if isinstance(d, dict) else {"content": d} for d in shown]
    return {
        "kind": "session",
        "session_id": state.session_id,
        "head": state.head.hex() if state.head else None,
        "sequence": state.sequence,
        "blocks": state.blocks,
        "messages": len(state.messages),
        "events": len(state.events),
        "deleted": state.deleted,
        "metadata": jsonable(state.metadata),
        "last_messages": [
            one_line(f"{m.get('role', '?')}: {message_text(m.get('content'))}") for m in last
        ],
    }


async def show(
    repo: Repository, spec: str, *, raw: bool = False, render: PayloadRender | None = None
) -> dict[str, Any]:
    """What ``spec`` names: a session summary (bare SESSION), a block or a chunk; with
    ``raw`` the stored object decoded as it is (for a session: its head block).
    ``render``: what a block's payload shows (e.g. an imported message's text)."""
    target = await resolve_target(repo, spec)
    if raw:
        return {"id": target.oid.hex(), "object": await raw_object(repo, target.oid)}
    if target.is_session and target.session_id is not None:
        return await session_summary(repo, target.session_id, render)
    return await show_block(repo, target.oid, render)


async def read_verified(repo: Repository, spec: str) -> bytes:
    """The canonical bytes of the object ``spec`` names, verified against its id."""
    return await repo.read_object((await resolve_target(repo, spec)).oid)


@dataclass
class MessageDiff:
    """Messages removed from ``a`` and added in ``b`` (each with its index and block id)."""

    a: str
    b: str
    a_head: str
    b_head: str
    common: int
    removed: list[dict[str, Any]] = field(default_factory=list)
    added: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "a": self.a,
            "b": self.b,
            "a_head": self.a_head,
            "b_head": self.b_head,
            "common": self.common,
            "removed": self.removed,
            "added": self.added,
        }


class _Messages:
    """The messages of one head; payloads rendered (and keyed) on first use only, so a
    prefix shared by block id is never rendered."""

    def __init__(self, blocks: list[Block], render: PayloadRender | None) -> None:
        self.blocks = [b for b in blocks if b.block_type is BlockType.MESSAGE]
        self.render = render
        self._data: dict[int, Any] = {}
        self._keys: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self.blocks)

    async def data(self, i: int) -> Any:
        if i not in self._data:
            b = self.blocks[i]
            self._data[i] = b.data if self.render is None else await self.render(b)
        return self._data[i]

    async def key(self, i: int) -> str:
        if i not in self._keys:
            self._keys[i] = json.dumps(
                jsonable(await self.data(i)), sort_keys=True, ensure_ascii=False
            )
        return self._keys[i]

    async def item(self, i: int) -> dict[str, Any]:
        data = await self.data(i)
        d = data if isinstance(data, dict) else {"content": data}
        return {
            "index": i,
            "block_id": self.blocks[i].block_id,
            "role": d.get("role"),
            "text": message_text(d.get("content")),
            "message": jsonable(d),
        }


async def diff_heads(
    repo: Repository, a: str, b: str, render: PayloadRender | None = None
) -> MessageDiff:
    """The messages of ``a`` and ``b`` (each ``SESSION[@REV]`` or a block id) compared:
    a shared prefix and suffix by block id or equal content, then a sequence diff.
    ``render``: what a message block's payload shows (compared and reported)."""
    ta, tb = await resolve_target(repo, a), await resolve_target(repo, b)
    ma = _Messages(await repo.history(ta.oid), render)
    mb = _Messages(await repo.history(tb.oid), render)

    async def same(i: int, j: int) -> bool:
        return ma.blocks[i].id == mb.blocks[j].id or await ma.key(i) == await mb.key(j)

    lo = 0
    while lo < min(len(ma), len(mb)) and await same(lo, lo):
        lo += 1
    ea, eb = len(ma), len(mb)
    while ea > lo and eb > lo and await same(ea - 1, eb - 1):
        ea, eb = ea - 1, eb - 1
    result = MessageDiff(a, b, ta.oid.hex(), tb.oid.hex(), lo + (len(ma) - ea))
    matcher = difflib.SequenceMatcher(
        None,
        [await ma.key(i) for i in range(lo, ea)],
        [await mb.key(j) for j in range(lo, eb)],
        autojunk=False,
    )
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            result.common += i2 - i1
            continue
        result.removed += [await ma.item(lo + i) for i in range(i1, i2)]
        result.added += [await mb.item(lo + j) for j in range(j1, j2)]
    return result


@dataclass
class StoreStatus:
    """How big the store is."""

    path: str
    objects: int
    bytes_on_disk: int
    sessions: int

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "objects": self.objects,
            "bytes_on_disk": self.bytes_on_disk,
            "sessions": self.sessions,
        }


def _disk_usage(root: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(root):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                continue  # removed while we looked
    return total


async def store_status(
    repo: Repository, root: Path | str, progress: Callable[[int], None] | None = None
) -> StoreStatus:
    """Objects, sessions and bytes on disk; ``progress(n)`` is called as objects are counted."""
    n = 0
    async for _ in repo.objects.list():
        n += 1
        if progress is not None and n % 10_000 == 0:
            progress(n)
    if progress is not None:
        progress(n)
    sessions = len(await repo.session_ids())
    path = Path(root).expanduser()
    return StoreStatus(str(path), n, _disk_usage(path), sessions)
