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
from ...core.objects import BlockType, object_kind
from ...errors import InvalidInputError, NotFoundError, SessionNotFoundError
from ..repo import Repository
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


async def show_block(repo: Repository, oid: ObjectId) -> dict[str, Any]:
    """A block (payload resolved) or a chunk, as a JSON-ready dict."""
    canonical = await repo.read_object(oid)
    if object_kind(canonical) != "b":
        return {"kind": "chunk", "id": oid.hex(), "size": len(canonical)}
    b = await repo.get_block(oid)
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
        "summary": block_summary(b),
        "data": jsonable(b.data),
    }


async def session_summary(repo: Repository, session_id: str) -> dict[str, Any]:
    """A session as of its head: metadata, counts and the last messages."""
    state = await repo.materialize(session_id)
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
            one_line(f"{m.get('role', '?')}: {message_text(m.get('content'))}")
            for m in state.messages[-5:]
        ],
    }


async def show(repo: Repository, spec: str, *, raw: bool = False) -> dict[str, Any]:
    """What ``spec`` names: a session summary (bare SESSION), a block or a chunk; with
    ``raw`` the stored object decoded as it is (for a session: its head block)."""
    target = await resolve_target(repo, spec)
    if raw:
        return {"id": target.oid.hex(), "object": await raw_object(repo, target.oid)}
    if target.is_session and target.session_id is not None:
        return await session_summary(repo, target.session_id)
    return await show_block(repo, target.oid)


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


async def _messages_at(repo: Repository, oid: ObjectId) -> list[tuple[ObjectId, Any]]:
    return [(b.id, b.data) for b in await repo.history(oid) if b.block_type is BlockType.MESSAGE]


def _key(data: Any) -> str:
    return json.dumps(jsonable(data), sort_keys=True, ensure_ascii=False)


async def diff_heads(repo: Repository, a: str, b: str) -> MessageDiff:
    """The messages of ``a`` and ``b`` (each ``SESSION[@REV]`` or a block id) compared:
    a shared prefix and suffix by block id or equal content, then a sequence diff."""
    ta, tb = await resolve_target(repo, a), await resolve_target(repo, b)
    ma, mb = await _messages_at(repo, ta.oid), await _messages_at(repo, tb.oid)

    def same(x: tuple[ObjectId, Any], y: tuple[ObjectId, Any]) -> bool:
        return x[0] == y[0] or _key(x[1]) == _key(y[1])

    lo = 0
    while lo < min(len(ma), len(mb)) and same(ma[lo], mb[lo]):
        lo += 1
    ea, eb = len(ma), len(mb)
    while ea > lo and eb > lo and same(ma[ea - 1], mb[eb - 1]):
        ea, eb = ea - 1, eb - 1
    result = MessageDiff(a, b, ta.oid.hex(), tb.oid.hex(), lo + (len(ma) - ea))
    matcher = difflib.SequenceMatcher(
        None, [_key(d) for _, d in ma[lo:ea]], [_key(d) for _, d in mb[lo:eb]], autojunk=False
    )

    def item(i: int, m: tuple[ObjectId, Any]) -> dict[str, Any]:
        d = m[1] if isinstance(m[1], dict) else {"content": m[1]}
        return {
            "index": i,
            "block_id": m[0].hex(),
            "role": d.get("role"),
            "text": message_text(d.get("content")),
            "message": jsonable(d),
        }

    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            result.common += i2 - i1
            continue
        result.removed += [item(lo + i, ma[lo + i]) for i in range(i1, i2)]
        result.added += [item(lo + j, mb[lo + j]) for j in range(j1, j2)]
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
