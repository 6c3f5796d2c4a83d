"""Structural deduplication of Amplifier lines: each text stored once, whatever carries it.

The same text shows up in many representations: a transcript message, every later
``llm:request`` (which repeats the whole conversation), ``llm:response``,
``content_block:end``, ``tool:pre``/``tool:post``, ``thinking:*``... A line is therefore
stored as a **skeleton** -- its text with holes -- plus the content-addressed objects that
fill the holes, named in the block's ``links``:

* every long JSON string (``STR_MIN`` characters or more, quotes included) is a **string
  blob**: the decoded string's UTF-8 bytes, re-encoded on export with the escaping the line
  used (``json.dumps(s)`` or ``json.dumps(s, ensure_ascii=False)``: the hole's kind says
  which, checked when the blob is made), or the token's exact text when neither reproduces
  it. A text written raw in the transcript and ``\\u``-escaped in events is one blob;
* a sub-value seen again (an object at depth >= 2, or any value below ``MAX_DEPTH``) whose
  skeleton is ``NODE_MIN`` characters or more is a **node**: its own skeleton and the ids of
  what fills its holes, stored as chunk objects;
* an array (at depth <= ``MAX_DEPTH``, ``RUN_MIN`` characters or more) is remembered as
  **runs** -- its elements but the last, and all of them. A later array that starts with a
  remembered run refers to it as a node and only spells out the rest: ``llm:request`` bodies
  grow by a few messages per call (the last one changes: ``cache_control`` moves), so each
  call stores only its new messages, and the unchanged ``tools`` array is one node.

Blob and node contents are cut by ``core.objects.encode_blob`` (a blob of 2 KiB or less is
one chunk object; equal contents give equal ids). Payload formats, the keep-alive rule for
links and the choice of thresholds are specified in docs/design-amplifier.md.

Everything is cut on the original text at positions the strict JSON scan found, and every
reuse of a stored piece is decided by exact comparison with the text it stands for, so the
export is byte-identical by construction; the encoder checks each line's cut before
accepting it and falls back to the whole line text when anything is off.
"""

from __future__ import annotations

import json
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from json.decoder import JSONDecoder
from json.scanner import make_scanner
from typing import Any, cast

from ...core.codec import pack, unpack
from ...core.ids import ID_BYTES, ObjectId
from ...core.objects import encode_blob
from ...errors import CorruptObjectError
from .format import RESERVED, format_ts, line_ts, message_value

__all__ = [
    "BlobCache",
    "BlobReader",
    "EventCodec",
    "Fill",
    "decode_event_text",
    "has_blobs",
    "splice",
]


LARGE_LINE = 4096  # lines at least this long are walked structurally (nodes, runs)
STR_MIN = 256  # string tokens at least this long become blobs
NODE_MIN = 256  # a reused sub-value whose skeleton is this long becomes a node
RUN_MIN = 1024  # arrays at least this long are remembered as runs
MEMO_MIN = 4096  # sub-values remembered for reuse: from this long...
MEMO_MAX = 256 << 10  # ...up to this long
MAX_DEPTH = 3  # objects and arrays are walked this deep (event -> data -> raw -> messages)
KEY_LEN = 128  # remembered texts are indexed by this many leading characters (<= STR_MIN)
RUNS_PER_KEY = 128
MEMOS_PER_KEY = 8

# Hole kinds: the character standing for a hole in a skeleton.
H_LEGACY = "\x00"  # raw text with "\x00S"/"\x00P" id placeholders (payloads of 2026-11)
H_ASCII = "\x01"  # string blob: decoded UTF-8, written as json.dumps(s)
H_UTF8 = "\x02"  # string blob: decoded UTF-8, written as json.dumps(s, ensure_ascii=False)
H_RAW = "\x03"  # the exact text of the value
H_NODE = "\x04"  # a node: its own skeleton and fills
H_JSON_A = "\x05"  # a string whose decoded value is a node's text (JSON in a string), json.dumps
H_JSON_U = "\x06"  # the same, written with ensure_ascii=False
H_TS = "\x07"  # the block's own time, formatted like the line's "ts" (payload "tsd": digits)
SID_TOKEN = "\x00S"
PID_TOKEN = "\x00P"
NODE_TAG = "n"
NODE_VERSION = 1

_HOLE_RE = re.compile("[\x00-\x06]")
_DUMPS_U = json.JSONEncoder(ensure_ascii=False).encode
_DUMPS_A = json.JSONEncoder().encode
_scan_once: Any = cast(Any, make_scanner)(JSONDecoder())
_loads = JSONDecoder().decode
_scanstring: Any = getattr(json.decoder, "scanstring")  # noqa: B009 - the C scanner, untyped
_ws: Any = re.compile(r"[ \t\n\r]*").match
_TOP_KEYS = frozenset(("event", "ts", "lvl"))
_WS = " \t\n\r"
_AFTER_RUN = frozenset(",] \t\n\r")
# A string token (valid JSON: the scan is only used inside strictly parsed values).
_STR: Any = re.compile(r'"[^"\\]*+(?:\\.[^"\\]*+)*+"', re.S).match


def _next_pattern(str_min: int) -> Any:
    """Skips everything up to the next string that is long or has an escape early on."""
    return re.compile(r'(?:[^"]++|"[^"\\]{0,%d}+")*+' % (str_min - 3)).match  # noqa: UP031


class Fill:
    """What fills one hole: its kind, the chunk ids of its content and, for a node, the
    fills of the node's own holes (``kids``)."""

    __slots__ = ("ids", "kids", "kind")

    def __init__(self, kind: str, ids: tuple[ObjectId, ...], kids: tuple[Fill, ...] = ()) -> None:
        self.kind = kind
        self.ids = ids
        self.kids = kids


Hole = tuple[int, int, Fill]
_TS_FILL = Fill("\x07", ())


# Remembered cuts keep their holes flat -- (start, end, fill, start, end, fill, ...) relative
# to the remembered text -- so that the cyclic GC has fewer objects to visit.
Flat = tuple[Any, ...]


def _flat(holes: Sequence[Hole], base: int, lo: int, hi: int) -> Flat:
    """The holes within ``[lo, hi)``, relative to ``base``, flat."""
    out: list[Any] = []
    for a, b, f in holes:
        if a >= lo and b <= hi:
            out += (a - base, b - base, f)
    return tuple(out)


def _unflat(flat: Flat, base: int) -> list[Hole]:
    return [(base + flat[i], base + flat[i + 1], flat[i + 2]) for i in range(0, len(flat), 3)]


class _Memo:
    """A sub-value's exact text and how it was cut (flat holes relative to its start)."""

    __slots__ = ("fill", "holes", "skel", "text")

    def __init__(self, text: str, holes: Flat, skel: int) -> None:
        self.text = text
        self.holes = holes
        self.skel = skel
        self.fill: Fill | None = None


class _Run:
    """A run of array elements: the run it extends (or none) and the text after it (``tail``,
    holes relative to its start); ``length`` from the first element's start. Runs form a
    tree: ``children`` are the runs that extend this one."""

    __slots__ = ("children", "fill", "holes", "length", "prev", "skel", "tail")

    def __init__(self, prev: _Run | None, tail: str, holes: Flat, length: int, skel: int) -> None:
        self.prev = prev
        self.tail = tail
        self.holes = holes
        self.length = length
        self.skel = skel
        self.fill: Fill | None = None
        self.children: list[_Run] | None = None


def _skeleton(text: str, flat: Flat) -> tuple[str, list[Fill]]:
    parts: list[str] = []
    kids: list[Fill] = []
    pos = 0
    for i in range(0, len(flat), 3):
        fill = flat[i + 2]
        parts.append(text[pos : flat[i]])
        parts.append(fill.kind)
        kids.append(fill)
        pos = flat[i + 1]
    parts.append(text[pos:])
    return "".join(parts), kids


def _skel_len(length: int, flat: Flat) -> int:
    return int(length - sum(flat[i + 1] - flat[i] - 1 for i in range(0, len(flat), 3)))


class BlobCache:
    """Blobs, nodes and runs known so far, and the chunk objects still to be stored.

    Shared by every session a migrator imports, so a text seen before (in this session or
    another) costs a comparison. Everything remembered is bounded by ``max_chars`` (all is
    forgotten when it is exceeded). ``take()`` hands the pending chunk objects to the batch
    that stores them; ``reset()`` forgets everything after a failed batch.
    """

    def __init__(
        self,
        max_chars: int = 192 << 20,
        *,
        str_min: int = STR_MIN,
        node_min: int = NODE_MIN,
        run_min: int = RUN_MIN,
        memo_min: int = MEMO_MIN,
        decoded: bool = True,
    ) -> None:
        if str_min < KEY_LEN:
            raise ValueError(f"str_min must be at least {KEY_LEN}")
        self.str_min = str_min
        self.node_min = node_min
        self.run_min = run_min
        self.memo_min = memo_min
        self.decoded = decoded
        self.next_match: Any = _next_pattern(str_min)
        self.strings: dict[str, list[tuple[str, Fill]]] = {}
        self.memos: dict[str, list[_Memo]] = {}
        self.runs: dict[str, list[_Run]] = {}
        self.values: dict[str, tuple[ObjectId, ...]] = {}  # decoded string -> its blob
        self._chars = 0
        self._max = max_chars
        self._stored: set[ObjectId] = set()
        self.pending: dict[ObjectId, bytes] = {}
        self.pending_bytes = 0

    # ---- chunk objects
    def chunk_ids(self, data: bytes) -> tuple[ObjectId, ...]:
        out = []
        for cid, canonical in encode_blob(data):
            out.append(cid)
            if cid not in self._stored and cid not in self.pending:
                self.pending[cid] = canonical
                self.pending_bytes += len(canonical)
        return tuple(out)

    def take(self) -> list[tuple[ObjectId, bytes]]:
        items = list(self.pending.items())
        if len(self._stored) > 4_000_000:
            self._stored.clear()
        self._stored.update(self.pending)
        self.pending = {}
        self.pending_bytes = 0
        return items

    def reset(self) -> None:
        self.forget()
        self._stored.clear()
        self.pending = {}
        self.pending_bytes = 0

    def forget(self) -> None:
        self.strings.clear()
        self.memos.clear()
        self.runs.clear()
        self.values.clear()
        self._chars = 0

    def _account(self, n: int) -> None:
        self._chars += n
        if self._chars > self._max:
            self.forget()

    # ---- fills
    def string_fill(self, raw: str, value: str) -> Fill:
        """The blob for the string token ``raw`` (decoded: ``value``), remembered."""
        kind = H_RAW
        data = b""
        if self.decoded:
            if _DUMPS_A(value) == raw:
                kind = H_ASCII
            elif _DUMPS_U(value) == raw:
                kind = H_UTF8
            if kind != H_RAW:
                try:
                    data = value.encode("utf-8")
                except UnicodeEncodeError:  # a lone surrogate (from a \\ud8xx escape)
                    kind = H_RAW
        fill: Fill | None = None
        if kind != H_RAW and value[:1] in "{[" and len(value) >= self.str_min:
            node = self.json_fill(value)
            if node is not None:
                fill = Fill(H_JSON_A if kind == H_ASCII else H_JSON_U, node.ids, node.kids)
        if fill is None:
            if kind == H_RAW:
                data = raw.encode("utf-8")
                fill = Fill(kind, self.chunk_ids(data))
            else:
                ids = self.values.get(value)
                if ids is None:
                    ids = self.values[value] = self.chunk_ids(data)
                    self._account(len(value))
                fill = Fill(kind, ids)
        bucket = self.strings.setdefault(raw[:KEY_LEN], [])
        if len(bucket) >= MEMOS_PER_KEY:
            del bucket[0]
        bucket.append((raw, fill))
        self._account(len(raw))
        return fill

    def json_fill(self, value: str) -> Fill | None:
        """The node of a string's decoded value when it is a JSON document holding long
        strings (a tool result serialized into a transcript message or an ``llm:request``:
        the same text as the ``tool:post`` result), else None."""
        bucket = self.memos.get(value[:KEY_LEN])
        if bucket is not None:
            for m in bucket:
                if m.text == value:
                    return self.memo_node(m) if m.holes else None
        walk = _Walk(value, self)
        try:
            i = _ws(value, 0).end()
            end = walk.value(i, 1)
            if _ws(value, end).end() != len(value):
                return None
        except (ValueError, IndexError, StopIteration, RecursionError):
            return None
        if not walk.holes:
            return None
        flat = _flat(walk.holes, 0, 0, len(value))
        memo = _Memo(value, flat, _skel_len(len(value), flat))
        bucket = self.memos.setdefault(value[:KEY_LEN], [])
        if len(bucket) >= MEMOS_PER_KEY:
            del bucket[0]
        bucket.append(memo)
        self._account(len(value))
        return self.memo_node(memo)

    def node_fill(self, skeleton: str, kids: Sequence[Fill]) -> Fill:
        content = pack(
            [
                NODE_TAG,
                NODE_VERSION,
                skeleton,
                [len(k.ids) for k in kids],
                b"".join([i for k in kids for i in k.ids]),
            ]
        )
        return Fill(H_NODE, self.chunk_ids(content), tuple(kids))

    def memo_node(self, memo: _Memo) -> Fill:
        if memo.fill is None:
            skeleton, kids = _skeleton(memo.text, memo.holes)
            memo.fill = self.node_fill(skeleton, kids)
        return memo.fill

    def run_node(self, run: _Run) -> Fill:
        """The node of ``run`` (made now, with those of the runs it extends, if needed)."""
        if run.fill is not None:
            return run.fill
        chain: list[_Run] = []
        r: _Run | None = run
        while r is not None and r.fill is None:
            chain.append(r)
            r = r.prev
        for r in reversed(chain):
            skeleton, kids = _skeleton(r.tail, r.holes)
            if r.prev is not None:
                assert r.prev.fill is not None
                skeleton = H_NODE + skeleton
                kids.insert(0, r.prev.fill)
            r.fill = self.node_fill(skeleton, kids)
        assert run.fill is not None
        return run.fill

    # ---- remembering
    def remember_memo(self, text: str, holes: Flat, skel: int) -> None:
        bucket = self.memos.setdefault(text[:KEY_LEN], [])
        if len(bucket) >= MEMOS_PER_KEY:
            del bucket[0]
        bucket.append(_Memo(text, holes, skel))
        self._account(len(text))

    def remember_run(self, key: str, run: _Run) -> None:
        """Add ``run`` under the run it extends, or as a root indexed by ``key``."""
        if run.prev is None:
            siblings = self.runs.setdefault(key, [])
        else:
            if run.prev.children is None:
                run.prev.children = []
            siblings = run.prev.children
        siblings.append(run)
        if len(siblings) > RUNS_PER_KEY:
            del siblings[0]
        self._account(len(run.tail))


class _Walk:
    """One line's walk: the holes found and what the top-level object says on the way."""

    __slots__ = ("c", "event", "holes", "lvl", "runs", "s", "ts")

    def __init__(self, s: str, cache: BlobCache) -> None:
        self.s = s
        self.c = cache
        self.holes: list[Hole] = []
        self.event: Any = None
        self.lvl: Any = None
        self.ts: Any = None
        self.runs = 0  # arrays matched or remembered as runs so far

    def value(self, i: int, depth: int) -> int:
        c = self.s[i]
        if c == '"':
            return self.string(i)
        if c == "{":
            return self.obj(i, depth) if depth <= MAX_DEPTH else self.flat(i)
        if c == "[":
            return self.arr(i, depth) if depth <= MAX_DEPTH else self.flat(i)
        return cast(int, _scan_once(self.s, i)[1])

    def string(self, i: int) -> int:
        s = self.s
        j = s.find('"', i + 1, i + KEY_LEN)
        if j < 0 or s[j - 1] == "\\":  # no end in the first KEY_LEN: maybe a known long one
            bucket = self.c.strings.get(s[i : i + KEY_LEN])
            if bucket is not None:
                for raw, fill in bucket:
                    if s.startswith(raw, i):
                        end = i + len(raw)
                        self.holes.append((i, end, fill))
                        return end
        value, end = _scanstring(s, i + 1, True)
        if end - i >= self.c.str_min:
            self.holes.append((i, end, self.c.string_fill(s[i:end], value)))
        return cast(int, end)

    def obj(self, i: int, depth: int) -> int:
        s = self.s
        if depth >= 2:
            end = self.memo_hit(i)
            if end:
                return end
        start, k, runs = i, len(self.holes), self.runs
        deep = depth + 1
        i += 1
        c = s[i]
        if c in _WS:
            i = _ws(s, i).end()
            c = s[i]
        if c == "}":
            return i + 1
        while True:
            if c != '"':
                raise ValueError(f"expected a key at {i}")
            key, i = _scanstring(s, i + 1, True)
            c = s[i]
            if c in _WS:
                i = _ws(s, i).end()
                c = s[i]
            if c != ":":
                raise ValueError(f"expected ':' at {i}")
            i += 1
            c = s[i]
            if c in _WS:  # one space (json.dumps), rarely more
                i += 1
                c = s[i]
                if c in _WS:
                    i = _ws(s, i).end()
                    c = s[i]
            if c == '"':
                if depth == 0 and key in _TOP_KEYS:
                    value, i = _scanstring(s, i + 1, True)
                    if key == "event":
                        self.event = value
                    elif key == "ts":
                        self.ts = value
                    else:
                        self.lvl = value
                else:
                    i = self.string(i)
            elif c == "{":
                i = self.obj(i, deep) if deep <= MAX_DEPTH else self.flat(i)
            elif c == "[":
                i = self.arr(i, deep) if deep <= MAX_DEPTH else self.flat(i)
            else:
                i = _scan_once(s, i)[1]
            c = s[i]
            if c in _WS:
                i = _ws(s, i).end()
                c = s[i]
            if c == ",":
                i += 1
                c = s[i]
                if c in _WS:
                    i += 1
                    c = s[i]
                    if c in _WS:
                        i = _ws(s, i).end()
                        c = s[i]
            elif c == "}":
                break
            else:
                raise ValueError(f"expected ',' or '}}' at {i}")
        end = i + 1
        if depth >= 2 and self.runs == runs:  # a value holding runs is never seen again
            self.remember(start, end, k)
        return end

    def arr(self, i: int, depth: int) -> int:
        s = self.s
        e0: int = _ws(s, i + 1).end()
        if s[e0] == "]":
            return e0 + 1
        k = len(self.holes)
        matched = self.match_run(e0)
        j: int = e0
        ends: list[int] = []
        if matched is not None:
            self.runs += 1
            self.use_run(matched, e0)
            j = _ws(s, e0 + matched.length).end()
            if s[j] == "]":
                return j + 1
            j = _ws(s, j + 1).end()  # run_matches saw the ','
        while True:
            j = self.value(j, depth + 1)
            ends.append(j)
            j = _ws(s, j).end()
            c = s[j]
            if c == ",":
                j = _ws(s, j + 1).end()
            elif c == "]":
                break
            else:
                raise ValueError(f"expected ',' or ']' at {j}")
        if ends[-1] - e0 >= self.c.run_min:
            self.runs += 1
            self.remember_runs(e0, ends, matched, k)
        return j + 1

    def match_run(self, e0: int) -> _Run | None:
        """The longest remembered run the array starting at ``e0`` begins with: down the
        tree from a matching root, each step comparing one run's tail."""
        s = self.s
        roots = self.c.runs.get(s[e0 : e0 + KEY_LEN])
        if not roots:
            return None
        n = len(s)
        best: _Run | None = None
        level: list[_Run] | None = roots
        while level:
            for run in reversed(level):  # the newest first: usually the previous call's
                end = e0 + run.length
                if end < n and s.startswith(run.tail, end - len(run.tail)):
                    if s[end] in _AFTER_RUN and s[_ws(s, end).end()] in ",]":
                        best = run
                    level = run.children
                    break
            else:
                break
        return best

    def use_run(self, run: _Run, e0: int) -> None:
        if run.fill is None and run.prev is None and run.skel < self.c.node_min:
            self.holes.extend(_unflat(run.holes, e0))
        else:
            self.holes.append((e0, e0 + run.length, self.c.run_node(run)))

    def remember_runs(self, e0: int, ends: list[int], matched: _Run | None, k: int) -> None:
        """Remember the array's elements but the last, and all of them, as runs."""
        holes = self.holes[k:]
        prev = matched
        start = e0 + (matched.length if matched is not None else 0)
        cuts = [ends[-2], ends[-1]] if len(ends) >= 2 else [ends[-1]]
        key = self.s[e0 : e0 + KEY_LEN]
        for end in cuts:
            rel = _flat(holes, start, start, end)
            run = _Run(prev, self.s[start:end], rel, end - e0, _skel_len(end - start, rel))
            self.c.remember_run(key, run)
            prev, start = run, end

    def memo_hit(self, i: int) -> int:
        s = self.s
        bucket = self.c.memos.get(s[i : i + KEY_LEN])
        if bucket is None:
            return 0
        for m in bucket:
            if s.startswith(m.text, i):
                end = i + len(m.text)
                if m.fill is None and m.skel >= self.c.node_min:
                    self.c.memo_node(m)
                if m.fill is not None:
                    self.holes.append((i, end, m.fill))
                else:
                    self.holes.extend(_unflat(m.holes, i))
                return end
        return 0

    def remember(self, start: int, end: int, k: int) -> None:
        n = end - start
        if n < self.c.memo_min or n > MEMO_MAX:
            return
        rel = _flat(self.holes[k:], start, start, end)
        self.c.remember_memo(self.s[start:end], rel, _skel_len(n, rel))

    def flat(self, i: int) -> int:
        """A value below MAX_DEPTH: strictly scanned, then searched for long strings."""
        end = self.memo_hit(i)
        if end:
            return end
        k = len(self.holes)
        end = _scan_once(self.s, i)[1]
        if end - i >= self.c.str_min:
            self.scan(i, end)
            self.remember(i, end, k)
        return cast(int, end)

    def scan(self, pos: int, end: int) -> None:
        _scan(self.c, self.s, pos, end, self.holes)


def _scan(cache: BlobCache, s: str, pos: int, end: int, holes: list[Hole]) -> None:
    """Holes for the long strings in ``s[pos:end]`` (already validated as JSON)."""
    nxt = cache.next_match
    strings = cache.strings
    str_min = cache.str_min
    while True:
        pos = nxt(s, pos, end).end()
        if pos >= end:
            return
        bucket = strings.get(s[pos : pos + KEY_LEN])
        if bucket is not None:
            for raw, fill in bucket:
                if s.startswith(raw, pos):
                    e = pos + len(raw)
                    holes.append((pos, e, fill))
                    break
            else:
                e = 0
            if e:
                pos = e
                continue
        e = _STR(s, pos, end).end()
        if e - pos >= str_min:
            value = _scanstring(s, pos + 1, True)[0]
            holes.append((pos, e, cache.string_fill(s[pos:e], value)))
        pos = e


class EventCodec:
    """Encodes the events.jsonl and transcript.jsonl lines of one session's import.

    ``linked`` holds the fills (by ids) that blocks already appended on this chain name in
    their links; a node's fills are linked once per chain (see docs/design-amplifier.md).
    ``inherited``: the ids the chain's earlier blocks (a fork's parent's) name in their links.
    """

    def __init__(
        self,
        cache: BlobCache,
        session_id: str,
        parent_id: str | None,
        inherited: set[ObjectId] | None = None,
    ) -> None:
        self.cache = cache
        self.session_id = session_id
        self.parent_id = parent_id
        self.linked: set[tuple[ObjectId, ...]] = set()
        self.inherited = inherited or set()

    def encode(
        self, line: bytes, nl: bool
    ) -> tuple[dict[str, Any], tuple[ObjectId, ...], str | None, int | None]:
        """``(payload, links, problem, ts_ns)`` for one line (``problem`` None when fine),
        for a block appended right away (see :meth:`cut` for one appended later)."""
        payload, links, fills, problem, ts_ns = self.cut(line, nl)
        return payload, self.link(fills, links), problem, ts_ns

    def cut(
        self, line: bytes, nl: bool
    ) -> tuple[dict[str, Any], list[ObjectId], list[Fill], str | None, int | None]:
        """``(payload, hole_links, fills, problem, ts_ns)``: the line cut, not yet linked.
        :meth:`link` gives the block's links once the blocks before it are appended (links
        depend on what they name)."""
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            payload: dict[str, Any] = {"bytes": line}
            if not nl:
                payload["nl"] = False
            return payload, [], [], f"invalid UTF-8 at byte {exc.start}", None
        problem: str | None = None
        holes: list[Hole] = []
        event: Any = None
        lvl: Any = None
        ts: Any = None
        try:
            if len(text) >= LARGE_LINE:
                walk = _Walk(text, self.cache)
                i = _ws(text, 0).end()
                if text[i] != "{":
                    raise ValueError("not a JSON object")
                end = walk.obj(i, 0)
                if _ws(text, end).end() != len(text):
                    raise ValueError(f"extra data after the object at {end}")
                holes, event, lvl, ts = walk.holes, walk.event, walk.lvl, walk.ts
            else:
                value = _loads(text)
                if type(value) is not dict:
                    raise ValueError("not a JSON object")
                get = value.get
                event, lvl, ts = get("event"), get("lvl"), get("ts")
                if len(text) >= self.cache.str_min:
                    _scan(self.cache, text, 0, len(text), holes)
        except (IndexError, StopIteration, RecursionError) as exc:
            problem = f"malformed JSON (truncated: {type(exc).__name__})"
            holes = []
        except ValueError as exc:
            problem = "empty line" if not text.strip() else f"malformed JSON ({exc})"
            holes = []
        if not nl:
            problem = f"torn last line (no newline){': ' + problem if problem else ''}"
        payload = {"event_type": event if isinstance(event, str) else None}
        if isinstance(lvl, str) and lvl != "INFO":
            payload["lvl"] = lvl
        ts_ns, digits = line_ts(ts)
        if digits is not None and problem is None:
            # The time is the block's own (the importer stamps the block with it): the line
            # keeps only how it was written. Hooks-logging writes "ts" first.
            end = 8 + len(ts)
            if text.startswith('{"ts": "') and text.startswith('"', end) and text[8:end] == ts:
                payload["tsd"] = digits
                if not holes:  # the usual small event: nothing else to cut
                    payload["line"] = text[:8] + H_TS + text[end:]
                    if not nl:
                        payload["nl"] = False
                    return payload, [], [], problem, ts_ns
                holes.insert(0, (8, end, _TS_FILL))
        links: list[ObjectId] = []
        fills: list[Fill] = []
        cut = _tile(text, holes) if holes else None
        if cut is None:
            payload.pop("tsd", None)
            payload["line"] = text  # nothing to cut (or a cut that does not tile the line)
        else:
            skeleton, counts, links = cut
            payload["line"] = skeleton
            if counts:
                payload["blobs"] = tuple(counts)
            fills = [f for _, _, f in holes if f is not _TS_FILL]
        if not nl:
            payload["nl"] = False
        return payload, links, fills, problem, ts_ns

    def link(self, fills: Sequence[Fill], links: list[ObjectId]) -> tuple[ObjectId, ...]:
        """The links of the block to append next: ``links`` (the ids of its holes) plus the
        keep-alive ids, the fills inside its nodes that no block before it on this chain
        names (an earlier block naming a node also names everything below it). Call it in
        the order the blocks are appended."""
        linked = self.linked
        inherited = self.inherited
        stack: list[Fill] = []
        for fill in fills:
            if fill.ids not in linked:
                linked.add(fill.ids)
                if fill.kids:
                    stack.append(fill)
        while stack:
            for kid in stack.pop().kids:
                if kid.ids not in linked:
                    linked.add(kid.ids)
                    # An id an earlier block of the chain names needs no repeating; a node's
                    # own fills are still checked (its ids say nothing about them).
                    if not inherited or not all(i in inherited for i in kid.ids):
                        links.extend(kid.ids)
                    if kid.kids:
                        stack.append(kid)
        return tuple(links)

    # ---- transcript.jsonl
    def encode_message(
        self, payload: dict[str, Any], line: bytes
    ) -> tuple[dict[str, Any], tuple[ObjectId, ...]]:
        """The MESSAGE payload of a transcript line holding long strings: ``{"role": ...,
        "__line__": {"line": skeleton, "blobs": [...]}}`` (cut as events are); else the
        payload of ``format.encode_message`` unchanged."""
        if len(line) < self.cache.str_min:
            return payload, ()
        fmt = payload.get(RESERVED)
        if fmt is not None and (not isinstance(fmt, dict) or "text" in fmt or "bytes" in fmt):
            return payload, ()  # not strictly valid JSON, or not UTF-8: kept as it is
        text = line.decode("utf-8")
        holes: list[Hole] = []
        _scan(self.cache, text, 0, len(text), holes)
        cut = _tile(text, holes) if holes else None
        if cut is None:
            return payload, ()
        skeleton, counts, links = cut
        out: dict[str, Any] = {}
        role = payload.get("role")
        if isinstance(role, str):
            out["role"] = role
        out[RESERVED] = {"line": skeleton, "blobs": tuple(counts)}
        if fmt and fmt.get("nl") is False:
            out[RESERVED]["nl"] = False
        return out, self.link([f for _, _, f in holes], links)


def _tile(text: str, holes: list[Hole]) -> tuple[str, list[int], list[ObjectId]] | None:
    """``(skeleton, ids per hole, links)`` of ``text`` cut at ``holes``; None when the holes
    do not tile it (out of order, overlapping)."""
    parts: list[str] = []
    counts: list[int] = []
    links: list[ObjectId] = []
    pos = 0
    for a, b, fill in holes:
        if a < pos or b > len(text) or not (fill.ids or fill is _TS_FILL):
            return None
        parts.append(text[pos:a])
        parts.append(fill.kind)
        if fill is not _TS_FILL:
            counts.append(len(fill.ids))
            links.extend(fill.ids)
        pos = b
    parts.append(text[pos:])
    skeleton = "".join(parts)
    # The holes tile the line (in order, no overlap, each one character of the skeleton:
    # a strictly valid JSON line holds no raw control character), so the skeleton with the
    # cut texts back in is the line; the fills stand for exactly those texts (reused only
    # after an exact comparison; string blobs checked when made).
    if len(skeleton) + sum(b - a - 1 for a, b, _ in holes) != len(text):
        return None
    return skeleton, counts, links


def has_blobs(payload: Any) -> bool:
    """Whether a MESSAGE payload is a skeleton with blobs (rendering needs the store)."""
    if not isinstance(payload, dict):
        return False
    fmt = payload.get(RESERVED)
    return isinstance(fmt, dict) and "line" in fmt


def splice(skeleton: str, texts: Sequence[str]) -> str:
    """The skeleton with its holes (any kind) filled by ``texts``, in order."""
    if not texts:
        return skeleton
    parts = _HOLE_RE.split(skeleton)
    if len(parts) != len(texts) + 1:
        raise ValueError(f"skeleton has {len(parts) - 1} holes for {len(texts)} blobs")
    out = [parts[0]]
    for text, part in zip(texts, parts[1:], strict=True):
        out.append(text)
        out.append(part)
    return "".join(out)


def _substitutions(sid: str, pid: str | None) -> list[tuple[str, str]]:
    subs = [(sid, SID_TOKEN)]
    if pid and pid != sid:
        subs.append((pid, PID_TOKEN))
    subs.sort(key=lambda p: -len(p[0]))  # the longer first: one id may contain the other
    return subs


def restore_ids(text: str, sid: str, pid: str | None) -> str:
    """Undo the id placeholders of a legacy raw blob (the inverse order of insertion)."""
    if H_LEGACY not in text:
        return text
    for value, token in reversed(_substitutions(sid, pid)):
        if value:
            text = text.replace(token, value)
    return text


def decode_event_text(
    skeleton: str, blobs: Sequence[str], session_id: str, parent_id: str | None
) -> str:
    """Rebuild a legacy line from its skeleton and raw blob texts (placeholders restored)."""
    return splice(skeleton, [restore_ids(b, session_id, parent_id) for b in blobs])


def parse_node(data: bytes) -> tuple[str, list[tuple[str, tuple[ObjectId, ...]]]]:
    """``(skeleton, [(kind, ids) per hole])`` of a node's content."""
    v = unpack(data, "node")
    if (
        not isinstance(v, list)
        or len(v) != 5
        or v[0] != NODE_TAG
        or v[1] != NODE_VERSION
        or not isinstance(v[2], str)
        or not isinstance(v[3], list)
        or not isinstance(v[4], bytes)
    ):
        raise CorruptObjectError("not an amplifier node")
    skeleton, counts, ids = v[2], v[3], v[4]
    kinds = _HOLE_RE.findall(skeleton)
    if len(kinds) != len(counts) or not all(isinstance(n, int) and n > 0 for n in counts):
        raise CorruptObjectError("amplifier node: holes and counts differ")
    if sum(counts) * ID_BYTES != len(ids) or H_LEGACY in kinds:
        raise CorruptObjectError("amplifier node: malformed ids")
    kids: list[tuple[str, tuple[ObjectId, ...]]] = []
    pos = 0
    for kind, n in zip(kinds, counts, strict=True):
        end = pos + n * ID_BYTES
        kids.append(
            (kind, tuple(ObjectId(ids[p : p + ID_BYTES]) for p in range(pos, end, ID_BYTES)))
        )
        pos = end
    return skeleton, kids


class BlobReader:
    """Reads blob and node texts back for export, with an LRU cache of texts (requests
    repeat them; a run's text is the start of the next run's)."""

    def __init__(
        self, read_blob: Callable[[Sequence[ObjectId]], Awaitable[bytes]], max_chars: int = 64 << 20
    ) -> None:
        self._read = read_blob
        self._cache: OrderedDict[tuple[str, tuple[ObjectId, ...]], str] = OrderedDict()
        self._chars = 0
        self._max = max_chars

    def _get(self, key: tuple[str, tuple[ObjectId, ...]]) -> str | None:
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
        return hit

    def _put(self, key: tuple[str, tuple[ObjectId, ...]], text: str) -> None:
        if key in self._cache:
            return
        self._cache[key] = text
        self._chars += len(text)
        while self._chars > self._max and len(self._cache) > 1:
            _, old = self._cache.popitem(last=False)
            self._chars -= len(old)

    async def _decoded(self, ids: tuple[ObjectId, ...]) -> str:
        key = ("s", ids)
        hit = self._get(key)
        if hit is None:
            hit = (await self._read(ids)).decode("utf-8")
            self._put(key, hit)
        return hit

    async def text(self, ids: tuple[ObjectId, ...]) -> str:
        """A blob's content as text."""
        return await self._decoded(ids)

    async def fill_text(self, kind: str, ids: tuple[ObjectId, ...]) -> str:
        """The exact text a hole of ``kind`` filled by ``ids`` stands for."""
        if kind == H_NODE:
            return await self._node_text(ids)
        if kind in (H_ASCII, H_UTF8):
            key = (kind, ids)
            hit = self._get(key)
            if hit is None:
                value = await self._decoded(ids)
                hit = _DUMPS_A(value) if kind == H_ASCII else _DUMPS_U(value)
                self._put(key, hit)
            return hit
        if kind in (H_RAW, H_LEGACY):
            return await self._decoded(ids)
        if kind in (H_JSON_A, H_JSON_U):
            key = (kind, ids)
            hit = self._get(key)
            if hit is None:
                value = await self._node_text(ids)
                hit = _DUMPS_A(value) if kind == H_JSON_A else _DUMPS_U(value)
                self._put(key, hit)
            return hit
        raise CorruptObjectError(f"unknown hole kind {kind!r}")

    async def _node_text(self, ids: tuple[ObjectId, ...]) -> str:
        key = (H_NODE, ids)
        hit = self._get(key)
        if hit is not None:
            return hit
        # Without recursion: a run refers to the run before it, which may be long ago.
        done: dict[tuple[ObjectId, ...], str] = {}
        parsed: dict[tuple[ObjectId, ...], tuple[str, list[tuple[str, tuple[ObjectId, ...]]]]] = {}
        stack = [ids]
        while stack:
            cur = stack[-1]
            if cur in done:
                stack.pop()
                continue
            cached = self._get((H_NODE, cur))
            if cached is not None:
                done[cur] = cached
                stack.pop()
                continue
            if cur not in parsed:
                parsed[cur] = parse_node(await self._read(cur))
            skeleton, kids = parsed[cur]
            missing = []
            for kind, k in kids:
                if kind == H_NODE and k not in done:
                    kid_text = self._get((H_NODE, k))
                    if kid_text is None:
                        missing.append(k)
                    else:
                        done[k] = kid_text
            if missing:
                if len(stack) > 1_000_000:
                    raise CorruptObjectError("amplifier node: references too deep")
                stack.extend(missing)
                continue
            texts = [
                done[k] if kind == H_NODE else await self.fill_text(kind, k) for kind, k in kids
            ]
            text = splice(skeleton, texts)
            done[cur] = text
            self._put((H_NODE, cur), text)
            stack.pop()
        return done[ids]

    async def event_text(
        self,
        payload: dict[str, Any],
        links: Sequence[ObjectId],
        session_id: str,
        timestamp_ns: int | None = None,
    ) -> str | None:
        """The original line text of an EVENT payload (None if the line is not UTF-8);
        ``timestamp_ns``: the block's time (for a payload with ``"tsd"``)."""
        if "line" not in payload:
            return None
        skeleton = str(payload["line"])
        digits = payload.get("tsd")
        if digits is not None:
            if timestamp_ns is None or not isinstance(digits, int) or H_TS not in skeleton:
                raise CorruptObjectError("event payload: a time hole without its time")
            skeleton = skeleton.replace(H_TS, format_ts(timestamp_ns, digits), 1)
        counts = payload.get("blobs") or []
        if not counts:
            return skeleton
        kinds = _HOLE_RE.findall(skeleton)
        if len(kinds) != len(counts):
            raise CorruptObjectError("event payload: holes and counts differ")
        pid = payload.get("pid")
        texts: list[str] = []
        pos = 0
        for kind, n in zip(kinds, counts, strict=True):
            ids = tuple(links[pos : pos + n])
            pos += n
            text = await self.fill_text(kind, ids)
            if kind == H_LEGACY:
                text = restore_ids(text, session_id, pid)
            texts.append(text)
        return splice(skeleton, texts)

    async def message_text(self, payload: dict[str, Any], links: Sequence[ObjectId]) -> str:
        """The transcript line (without newline) of a MESSAGE payload holding blobs."""
        fmt = payload[RESERVED]
        return await self._splice(str(fmt["line"]), fmt.get("blobs") or [], links)

    async def _splice(self, skeleton: str, counts: Sequence[int], links: Sequence[ObjectId]) -> str:
        kinds = _HOLE_RE.findall(skeleton)
        if len(kinds) != len(counts):
            raise CorruptObjectError("payload: holes and counts differ")
        texts: list[str] = []
        pos = 0
        for kind, n in zip(kinds, counts, strict=True):
            texts.append(await self.fill_text(kind, tuple(links[pos : pos + n])))
            pos += n
        return splice(skeleton, texts)

    async def message_value(self, payload: Any, links: Sequence[ObjectId]) -> dict[str, Any] | None:
        """The message as the application sees it (None for a line that is not one)."""
        if not has_blobs(payload):
            return message_value(payload)
        value = json.loads(await self.message_text(payload, links))
        return value if isinstance(value, dict) else None
