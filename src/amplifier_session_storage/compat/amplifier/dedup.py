"""Structural deduplication of events.jsonl lines.

``llm:request`` lines carry the whole conversation so far, so a session's events grow
quadratically; ``session:config`` repeats a ~500 KB configuration in every session. A large
line is therefore cut at its big sub-values (each element of a list such as
``data.raw.messages`` / ``tools``, long strings such as ``data.raw.system``, whole objects
below a few levels): each becomes a **blob** stored as content-defined chunk objects
(``core.objects.encode_blob``) that the EVENT block names in its ``links``. The same
message repeated in every later request is then stored once.

The cut is made on the original text (the span of each sub-value as the JSON scanner found
it), so no re-serialization is involved and export is byte-identical by construction; the
encoder still rebuilds every line from its parts and compares before accepting it.

EVENT payload (a dict):

* ``"line"``: the line's text with each blob replaced by one NUL character (valid JSON never
  holds a raw NUL), or the whole text when the line is small or not valid JSON;
* ``"blobs"``: how many chunk ids of the block's ``links`` each blob takes, in order;
* ``"pid"``: the parent session id, when a blob held it (see below);
* ``"bytes"``: the raw line instead of ``"line"`` when it is not valid UTF-8;
* ``"nl": false`` when the line has no trailing newline (a torn last line);
* ``"event_type"`` and ``"lvl"`` (only when not ``INFO``) for readers.

Inside blob text the session's own id and its parent's id are replaced by ``"\\0S"`` and
``"\\0P"`` (restored on export from the block's session and ``"pid"``), so events a fork
copied with a rewritten ``session_id`` still share their blobs.
"""

from __future__ import annotations

import json
import re
from collections import OrderedDict
from collections.abc import Sequence
from json.decoder import JSONDecoder
from json.scanner import make_scanner
from typing import Any, cast

from ...core.ids import ObjectId
from ...core.objects import encode_blob
from .format import parse_ts_ns

__all__ = ["BlobCache", "EventCodec", "decode_event_text", "find_holes"]

LARGE_LINE = 4096  # lines at least this long are cut into blobs
BLOB_MIN = 512  # sub-values at least this long (characters) become blobs
MAX_DEPTH = 4  # objects are descended this deep (event -> data -> raw -> ...)
KEY_LEN = 256  # known blobs are indexed by this many leading characters (<= BLOB_MIN)
HOLE = "\x00"
SID_TOKEN = "\x00S"
PID_TOKEN = "\x00P"

_scan_once: Any = cast(Any, make_scanner)(JSONDecoder())
_scanstring: Any = getattr(json.decoder, "scanstring")  # noqa: B009 - the C scanner, untyped
_ws: Any = re.compile(r"[ \t\n\r]*").match
_STARTS = frozenset('"{[')


Hole = tuple[int, int, "str | None", "tuple[ObjectId, ...] | None"]
Known = dict[str, list[tuple[str, tuple[ObjectId, ...]]]]


class _Walk:
    """One line's walk: the holes found and what the top-level object says on the way.

    ``known`` indexes blobs seen before by their first KEY_LEN characters: a sub-value that
    starts with a known blob's exact text *is* that blob (an object, array or string ends at
    its own closing character, and the blob was validated when first scanned), so repeated
    messages cost a memory comparison instead of a parse.
    """

    __slots__ = ("event", "holes", "known", "lvl", "s", "ts")

    def __init__(self, s: str, known: Known | None) -> None:
        self.s = s
        self.known = known
        self.holes: list[Hole] = []
        self.event: Any = None
        self.lvl: Any = None
        self.ts: Any = None

    def leaf(self, i: int) -> tuple[Any, int]:
        s = self.s
        if s[i] in _STARTS:
            if self.known is not None:
                cands = self.known.get(s[i : i + KEY_LEN])
                if cands is not None:
                    for text, ids in cands:
                        if s.startswith(text, i):
                            end = i + len(text)
                            self.holes.append((i, end, text, ids))
                            return None, end
            value, end = _scan_once(s, i)
            if end - i >= BLOB_MIN:
                self.holes.append((i, end, None, None))
            return value, end
        return _scan_once(s, i)  # type: ignore[no-any-return]

    def obj(self, i: int, depth: int) -> int:
        s = self.s
        i = _ws(s, i + 1).end()
        if s[i] == "}":
            return i + 1
        while True:
            if s[i] != '"':
                raise ValueError(f"expected a key at {i}")
            key, i = _scanstring(s, i + 1, True)
            i = _ws(s, i).end()
            if s[i] != ":":
                raise ValueError(f"expected ':' at {i}")
            i = _ws(s, i + 1).end()
            c = s[i]
            if c == "{" and depth < MAX_DEPTH:
                i = self.obj(i, depth + 1)
            elif c == "[" and depth < MAX_DEPTH:
                i = self.arr(i)
            else:
                value, i = self.leaf(i)
                if depth == 0:
                    if key == "event":
                        self.event = value
                    elif key == "ts":
                        self.ts = value
                    elif key == "lvl":
                        self.lvl = value
            i = _ws(s, i).end()
            c = s[i]
            if c == ",":
                i = _ws(s, i + 1).end()
            elif c == "}":
                return i + 1
            else:
                raise ValueError(f"expected ',' or '}}' at {i}")

    def arr(self, i: int) -> int:
        s = self.s
        i = _ws(s, i + 1).end()
        if s[i] == "]":
            return i + 1
        while True:
            _, i = self.leaf(i)
            i = _ws(s, i).end()
            c = s[i]
            if c == ",":
                i = _ws(s, i + 1).end()
            elif c == "]":
                return i + 1
            else:
                raise ValueError(f"expected ',' or ']' at {i}")


def find_holes(text: str, known: Known | None = None) -> _Walk:
    """Walk a JSON object line: its big sub-values (``holes``), ``event``, ``ts``, ``lvl``.

    Raises ValueError when the text is not one valid JSON object (strict: no raw control
    characters, nothing after the value but whitespace).
    """
    walk = _Walk(text, known)
    try:
        i = _ws(text, 0).end()
        if text[i] != "{":
            raise ValueError("not a JSON object")
        end = walk.obj(i, 0)
    except (IndexError, StopIteration) as exc:
        raise ValueError(f"truncated JSON ({type(exc).__name__})") from exc
    if _ws(text, end).end() != len(text):
        raise ValueError(f"extra data after the object at {end}")
    return walk


class BlobCache:
    """Blob text -> chunk ids, remembering which chunk objects still have to be stored.

    Shared by every session a migrator imports, so a blob seen before (in this session or
    another) costs one lookup. ``known`` indexes blob texts (as they appear in lines) for
    the walk. ``take()`` hands the pending chunk objects to the batch that stores them;
    ``reset()`` forgets everything after a failed batch.
    """

    def __init__(self, max_chars: int = 128 << 20) -> None:
        self._ids: dict[str, tuple[ObjectId, ...]] = {}
        self.known: Known = {}
        self._chars = 0
        self._max = max_chars
        self._stored: set[ObjectId] = set()
        self.pending: dict[ObjectId, bytes] = {}
        self.pending_bytes = 0

    def ids(self, text: str, raw: str | None = None) -> tuple[ObjectId, ...]:
        """Chunk ids of the blob ``text``; ``raw``: the text as it appears in lines, to index
        (only when it needed no placeholder, so it means the same in every session)."""
        ids = self._ids.get(text)
        if ids is None:
            out = []
            for cid, canonical in encode_blob(text.encode("utf-8")):
                out.append(cid)
                if cid not in self._stored and cid not in self.pending:
                    self.pending[cid] = canonical
                    self.pending_bytes += len(canonical)
            ids = tuple(out)
            if self._chars + len(text) > self._max:
                self._ids.clear()
                self.known.clear()
                self._chars = 0
            self._ids[text] = ids
            self._chars += len(text)
        if raw is not None:
            bucket = self.known.setdefault(raw[:KEY_LEN], [])
            if len(bucket) >= 8:
                del bucket[0]
            bucket.append((raw, ids))
        return ids

    def take(self) -> list[tuple[ObjectId, bytes]]:
        items = list(self.pending.items())
        if len(self._stored) > 4_000_000:
            self._stored.clear()
        self._stored.update(self.pending)
        self.pending = {}
        self.pending_bytes = 0
        return items

    def reset(self) -> None:
        self._ids.clear()
        self.known.clear()
        self._chars = 0
        self._stored.clear()
        self.pending = {}
        self.pending_bytes = 0


def _substitutions(sid: str, pid: str | None) -> list[tuple[str, str]]:
    subs = [(sid, SID_TOKEN)]
    if pid and pid != sid:
        subs.append((pid, PID_TOKEN))
    subs.sort(key=lambda p: -len(p[0]))  # the longer first: one id may contain the other
    return subs


def restore_ids(text: str, sid: str, pid: str | None) -> str:
    """Undo the placeholders of :class:`EventCodec` (the inverse order of their insertion)."""
    if HOLE not in text:
        return text
    for value, token in reversed(_substitutions(sid, pid)):
        if value:
            text = text.replace(token, value)
    return text


class EventCodec:
    """Encodes the events.jsonl lines of one session into EVENT payloads."""

    def __init__(self, cache: BlobCache, session_id: str, parent_id: str | None) -> None:
        self.cache = cache
        self.session_id = session_id
        self.parent_id = parent_id
        self._subs = _substitutions(session_id, parent_id)

    def encode(
        self, line: bytes, nl: bool
    ) -> tuple[dict[str, Any], tuple[ObjectId, ...], str | None, int | None]:
        """``(payload, links, problem, ts_ns)`` for one line (``problem`` None when fine)."""
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            payload: dict[str, Any] = {"bytes": line}
            if not nl:
                payload["nl"] = False
            return payload, (), f"invalid UTF-8 at byte {exc.start}", None
        problem: str | None = None
        holes: list[Hole] = []
        event: Any = None
        lvl: Any = None
        ts: Any = None
        try:
            if len(text) >= LARGE_LINE:
                walk = find_holes(text, self.cache.known)
                holes, event, lvl, ts = walk.holes, walk.event, walk.lvl, walk.ts
            else:
                value = json.loads(text)
                if not isinstance(value, dict):
                    raise ValueError("not a JSON object")
                event, lvl, ts = value.get("event"), value.get("lvl"), value.get("ts")
        except ValueError as exc:
            problem = "empty line" if not text.strip() else f"malformed JSON ({exc})"
            holes = []
        if not nl:
            problem = f"torn last line (no newline){': ' + problem if problem else ''}"
        payload = {"event_type": event if isinstance(event, str) else None}
        if isinstance(lvl, str) and lvl != "INFO":
            payload["lvl"] = lvl
        links: tuple[ObjectId, ...] = ()
        if holes:
            payload, links = self._cut(text, holes, payload)
        else:
            payload["line"] = text
        if not nl:
            payload["nl"] = False
        return payload, links, problem, parse_ts_ns(ts)

    def _cut(
        self, text: str, holes: list[Hole], payload: dict[str, Any]
    ) -> tuple[dict[str, Any], tuple[ObjectId, ...]]:
        parts: list[str] = []
        blobs: list[str] = []
        counts: list[int] = []
        links: list[ObjectId] = []
        used_pid = False
        pos = 0
        substituted: list[tuple[str, str]] = []
        for a, b, known, ids in holes:
            parts.append(text[pos:a])
            pos = b
            if known is not None and ids is not None:
                blobs.append(known)
                counts.append(len(ids))
                links.extend(ids)
                continue
            blob = raw = text[a:b]
            for value, token in self._subs:
                if value in blob:
                    blob = blob.replace(value, token)
                    used_pid = used_pid or token == PID_TOKEN
            if blob is not raw:
                substituted.append((blob, raw))
            ids = self.cache.ids(blob, raw if blob is raw else None)
            blobs.append(raw)
            counts.append(len(ids))
            links.extend(ids)
        parts.append(text[pos:])
        skeleton = HOLE.join(parts)
        pid = self.parent_id if used_pid else None
        # Verify: the stored form must give back exactly the original line -- the skeleton
        # with the blob texts, and each blob's placeholders restored.
        if splice(skeleton, blobs) != text or any(
            restore_ids(blob, self.session_id, pid) != raw for blob, raw in substituted
        ):
            payload["line"] = text
            return payload, ()
        payload["line"] = skeleton
        payload["blobs"] = counts
        if pid is not None:
            payload["pid"] = pid
        return payload, tuple(links)


def splice(skeleton: str, texts: Sequence[str]) -> str:
    """The skeleton with its holes filled by ``texts``, in order."""
    if not texts:
        return skeleton
    parts = skeleton.split(HOLE)
    if len(parts) != len(texts) + 1:
        raise ValueError(f"skeleton has {len(parts) - 1} holes for {len(texts)} blobs")
    out = [parts[0]]
    for text, part in zip(texts, parts[1:], strict=True):
        out.append(text)
        out.append(part)
    return "".join(out)


def decode_event_text(
    skeleton: str, blobs: Sequence[str], session_id: str, parent_id: str | None
) -> str:
    """Rebuild a line from its skeleton and stored blob texts (placeholders restored)."""
    return splice(skeleton, [restore_ids(b, session_id, parent_id) for b in blobs])


class BlobReader:
    """Reads blob texts back for export, with a small LRU cache (requests repeat blobs)."""

    def __init__(self, read_blob: Any, max_chars: int = 64 << 20) -> None:
        self._read = read_blob
        self._cache: OrderedDict[tuple[ObjectId, ...], str] = OrderedDict()
        self._chars = 0
        self._max = max_chars

    async def text(self, ids: tuple[ObjectId, ...]) -> str:
        hit = self._cache.get(ids)
        if hit is not None:
            self._cache.move_to_end(ids)
            return hit
        data: bytes = await self._read(ids)
        text = data.decode("utf-8")
        self._cache[ids] = text
        self._chars += len(text)
        while self._chars > self._max and self._cache:
            _, old = self._cache.popitem(last=False)
            self._chars -= len(old)
        return text

    async def event_text(
        self, payload: dict[str, Any], links: Sequence[ObjectId], session_id: str
    ) -> str | None:
        """The original line text of an EVENT payload (None if the line is not UTF-8)."""
        if "line" not in payload:
            return None
        skeleton = str(payload["line"])
        counts = payload.get("blobs") or []
        if not counts:
            return skeleton
        blobs: list[str] = []
        pos = 0
        for n in counts:
            blobs.append(await self.text(tuple(links[pos : pos + n])))
            pos += n
        return decode_event_text(skeleton, blobs, session_id, payload.get("pid"))
