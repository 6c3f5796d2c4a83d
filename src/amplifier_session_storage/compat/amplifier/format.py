"""Line codecs for Amplifier's files: what a block stores so that export is byte-identical.

Every codec keeps the parsed value when the writer's serializer reproduces the original
bytes exactly, and the original text (or bytes) otherwise; the choice is verified line by
line at import. Payload shapes (specified in docs/design-amplifier.md):

* **MESSAGE** (a ``transcript.jsonl`` line): the message dict itself when
  ``json.dumps(msg, ensure_ascii=False)`` reproduces the line (the app-cli serializer). Other
  lines carry the reserved key ``"__line__"``: ``{"ascii": true}`` (the line is
  ``json.dumps(msg)`` instead), ``{"nl": false}`` (no trailing newline: a torn last line),
  or, with no other key, ``{"text": str}`` / ``{"bytes": bytes}`` for a line that no
  serializer reproduces or that is not valid UTF-8. A line holding long strings is stored
  as a skeleton with blobs instead (``{"role", "__line__": {"line", "blobs"}}``, see
  :mod:`.dedup`).
* **metadata.json**: ``"metadata"`` (the parsed document or None) and ``"metadata_format"``:
  ``{"indent": 2, "ascii": bool, "nl": bool}`` or ``{"text": str}`` / ``{"bytes": bytes}``.
* **EVENT** lines: see :mod:`.dedup`.

Also here: the fast timestamp parser (block times come from the files), line iteration over
big files, and the rule that renders a fork's inherited lines as the fork tool rewrote them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any

from ...core.codec import pack
from ...errors import InvalidInputError

__all__ = [
    "EV_ASCII",
    "EV_TEXT",
    "EV_UTF8",
    "MSG_JSON",
    "MSG_SAME",
    "RESERVED",
    "ForkRule",
    "decode_metadata",
    "encode_message",
    "encode_metadata",
    "format_ts",
    "iter_lines",
    "line_ts",
    "message_value",
    "parse_ts_ns",
    "render_message",
    "split_lines",
]

RESERVED = "__line__"
_DUMPS_U = json.JSONEncoder(ensure_ascii=False).encode
_DUMPS_A = json.JSONEncoder().encode
_MINUTES: dict[str, int] = {}
_SCALE: list[int] = [int(10 ** (9 - n)) for n in range(10)]


# ------------------------------------------------------------------------------ timestamps
def parse_ts_ns(ts: object) -> int | None:
    """``2026-06-17T15:35:22.285586437+00:00`` (any precision, ``Z``/offset/naive) -> ns."""
    if not isinstance(ts, str) or len(ts) < 19 or ts[10] not in "T " or ts[16] != ":":
        return None
    base = _MINUTES.get(ts[:16])
    try:
        if base is None:
            base = int(
                datetime(
                    int(ts[0:4]),
                    int(ts[5:7]),
                    int(ts[8:10]),
                    int(ts[11:13]),
                    int(ts[14:16]),
                    tzinfo=UTC,
                ).timestamp()
            )
            if len(_MINUTES) > 100_000:
                _MINUTES.clear()
            _MINUTES[ts[:16]] = base
        sec = int(ts[17:19])
        rest = ts[19:]
        if rest[-6:] == "+00:00" and rest[:1] == ".":  # the usual form: fast path
            digits = rest[1:-6]
            if 0 < len(digits) <= 9 and digits.isascii() and digits.isdigit():
                return (base + sec) * 1_000_000_000 + int(digits) * _SCALE[len(digits)]
        frac = 0
        if rest[:1] in (".", ","):
            j = 1
            while j < len(rest) and rest[j].isdigit():
                j += 1
            frac = int((rest[1:j] + "000000000")[:9]) if j > 1 else 0
            rest = rest[j:]
        offset = 0
        if rest and rest not in ("Z", "z"):
            sign = 1 if rest[0] == "+" else -1 if rest[0] == "-" else 0
            digits = rest[1:].replace(":", "")
            if not sign or len(digits) != 4 or not digits.isdigit():
                return None
            offset = sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
    except ValueError:
        return None
    return (base + sec - offset) * 1_000_000_000 + frac


_MINUTE_TEXT: dict[int, str] = {}


def format_ts(ns: int, digits: int) -> str:
    """``ns`` as ``2026-06-17T15:35:22.285586437+00:00`` with ``digits`` fraction digits
    (0: no fraction): the inverse of :func:`parse_ts_ns` for that form."""
    sec, frac = divmod(ns, 1_000_000_000)
    minute, s = divmod(sec, 60)
    head = _MINUTE_TEXT.get(minute)
    if head is None:
        head = datetime.fromtimestamp(minute * 60, tz=UTC).strftime("%Y-%m-%dT%H:%M")
        if len(_MINUTE_TEXT) > 100_000:
            _MINUTE_TEXT.clear()
        _MINUTE_TEXT[minute] = head
    if digits:
        return f"{head}:{s:02d}.{frac:09d}"[: len(head) + 4 + digits] + "+00:00"
    return f"{head}:{s:02d}+00:00"


_CANONICAL: dict[str, int] = {}  # minute text -> its seconds, -1: not as format_ts writes it


def line_ts(ts: object) -> tuple[int | None, int | None]:
    """``(ns, digits)``: :func:`parse_ts_ns` of ``ts`` and, when :func:`format_ts` gives
    ``ts`` back, its fraction digits (else None). The usual form costs a dict lookup."""
    if not isinstance(ts, str) or len(ts) < 25 or ts[-6:] != "+00:00" or ts[16] != ":":
        return parse_ts_ns(ts), None
    head = ts[:16]
    base = _CANONICAL.get(head)
    if base is None:
        ns = parse_ts_ns(head + ":00+00:00")
        base = ns // 1_000_000_000 if ns is not None and format_ts(ns, 0)[:16] == head else -1
        if len(_CANONICAL) > 100_000:
            _CANONICAL.clear()
        _CANONICAL[head] = base
    sec = ts[17:19]
    if base < 0 or not (sec.isascii() and sec.isdigit()) or sec > "59":
        return parse_ts_ns(ts), None
    if len(ts) == 25:
        return (base + int(sec)) * 1_000_000_000, 0
    digits = ts[20:-6]
    n = len(digits)
    if ts[19] != "." or not 0 < n <= 9 or not (digits.isascii() and digits.isdigit()):
        return parse_ts_ns(ts), None
    return (base + int(sec)) * 1_000_000_000 + int(digits) * _SCALE[n], n


# ------------------------------------------------------------------------------ lines
def split_lines(data: bytes) -> list[tuple[bytes, bool]]:
    """``(line_without_newline, had_newline)`` for every line of a small file."""
    if not data:
        return []
    parts = data.split(b"\n")
    last = parts.pop()
    out = [(p, True) for p in parts]
    if last:
        out.append((last, False))
    return out


def iter_lines(
    fh: IO[bytes], offset: int, bufsize: int = 1 << 23
) -> Iterator[tuple[bytes, bool, int]]:
    """``(line, had_newline, start_offset)`` from ``offset`` to the end of a binary file."""
    fh.seek(offset)
    buf = b""
    pos = offset
    while True:
        piece = fh.read(bufsize)
        if not piece:
            break
        buf = buf + piece if buf else piece
        start = 0
        find = buf.find
        while True:
            j = find(b"\n", start)
            if j < 0:
                break
            yield buf[start:j], True, pos + start
            start = j + 1
        pos += start
        buf = buf[start:]
    if buf:
        yield buf, False, pos


# ------------------------------------------------------------------------------ messages
def _packable(value: Any) -> bool:
    try:
        pack(value)
    except InvalidInputError:
        return False
    return True


def encode_message(line: bytes, nl: bool) -> tuple[dict[str, Any], str | None]:
    """The MESSAGE payload of one transcript line, and the problem to report (or None)."""
    tail: dict[str, Any] = {} if nl else {"nl": False}
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        return {RESERVED: {"bytes": line, **tail}}, f"invalid UTF-8 at byte {exc.start}"
    try:
        msg = json.loads(text)
    except ValueError as exc:
        problem = "empty line" if not text.strip() else f"malformed JSON ({exc})"
        if not nl:
            problem = f"torn last line (no newline): {problem}"
        return {RESERVED: {"text": text, **tail}}, problem
    if not isinstance(msg, dict) or RESERVED in msg or not _packable(msg):
        return {RESERVED: {"text": text, **tail}}, "not a message object (kept as text)"
    if _DUMPS_U(msg) == text:
        fmt = tail
    elif _DUMPS_A(msg) == text:
        fmt = {"ascii": True, **tail}
    else:
        return {RESERVED: {"text": text, **tail}}, None
    if fmt:
        msg[RESERVED] = fmt
    return msg, None if nl else "torn last line (no newline)"


def message_value(payload: Any) -> dict[str, Any] | None:
    """The message as the application sees it (None for a line that is not a message)."""
    if not isinstance(payload, dict):
        return None
    fmt = payload.get(RESERVED)
    if fmt is None:
        return payload
    if "text" in fmt or "bytes" in fmt:
        if "text" not in fmt:
            return None
        try:
            value = json.loads(fmt["text"])
        except ValueError:
            return None
        return value if isinstance(value, dict) else None
    return {k: v for k, v in payload.items() if k != RESERVED}


def render_message(payload: Any) -> tuple[bytes, bool] | None:
    """The exact transcript line of a MESSAGE payload (without newline) and its newline."""
    if not isinstance(payload, dict):
        return None
    fmt = payload.get(RESERVED) or {}
    nl = bool(fmt.get("nl", True))
    if "bytes" in fmt:
        return bytes(fmt["bytes"]), nl
    if "text" in fmt:
        return str(fmt["text"]).encode("utf-8"), nl
    msg = {k: v for k, v in payload.items() if k != RESERVED} if fmt else payload
    dumps = _DUMPS_A if fmt.get("ascii") else _DUMPS_U
    return dumps(msg).encode("utf-8"), nl


def message_ts_ns(msg: dict[str, Any]) -> int | None:
    """A message's own time: top-level ``timestamp`` (older) or ``metadata.timestamp``."""
    ts = msg.get("timestamp")
    if ts is None:
        meta = msg.get("metadata")
        if isinstance(meta, dict):
            ts = meta.get("timestamp")
    return parse_ts_ns(ts)


# ------------------------------------------------------------------------------ metadata
def encode_metadata(data: bytes) -> tuple[dict[str, Any] | None, dict[str, Any], str | None]:
    """``(document_or_None, metadata_format, problem)`` for the bytes of metadata.json."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, {"bytes": data}, f"invalid UTF-8 at byte {exc.start}"
    try:
        doc = json.loads(text)
    except ValueError as exc:
        return None, {"text": text}, f"malformed JSON ({exc})"
    if not isinstance(doc, dict) or not _packable(doc):
        return None, {"text": text}, "not a JSON object (kept as text)"
    for ascii_ in (False, True):
        body = json.dumps(doc, indent=2, ensure_ascii=ascii_)
        for nl in (False, True):
            if (body + "\n" if nl else body) == text:
                return doc, {"indent": 2, "ascii": ascii_, "nl": nl}, None
    return doc, {"text": text}, None


def decode_metadata(doc: Any, fmt: Any) -> bytes | None:
    """The exact bytes of metadata.json (None when the session had none)."""
    if not isinstance(fmt, dict):
        return None
    if "bytes" in fmt:
        return bytes(fmt["bytes"])
    if "text" in fmt:
        return str(fmt["text"]).encode("utf-8")
    body = json.dumps(doc, indent=fmt.get("indent", 2), ensure_ascii=bool(fmt.get("ascii")))
    return (body + "\n" if fmt.get("nl") else body).encode("utf-8")


APP_METADATA_FORMAT: dict[str, Any] = {"indent": 2, "ascii": False, "nl": False}


# ------------------------------------------------------------------------------ forks
EV_TEXT, EV_UTF8, EV_ASCII = 0, 1, 2  # how a fork tool rewrote one copied events line
MSG_SAME, MSG_JSON = 0, 1  # how it wrote one copied transcript line


def _rle_push(runs: list[list[int]], mode: int) -> None:
    if runs and runs[-1][0] == mode:
        runs[-1][1] += 1
    else:
        runs.append([mode, 1])


def _rle_at(runs: list[list[int]], index: int, default: int) -> int:
    for mode, count in runs:
        if index < count:
            return mode
        index -= count
    return default


@dataclass
class ForkRule:
    """How a fork tool rewrote the lines it copied from the parent session.

    Events, per line (``events``: run-length ``[[mode, count], ...]`` over the inherited
    events in chain order):

    * ``EV_TEXT`` (0): text edit -- the first ``"session_id": "<parent>"`` replaced by the
      fork's id and ``, "parent_session_id": "<parent>"`` put before the closing brace;
    * ``EV_UTF8`` (1) / ``EV_ASCII`` (2): amplifier-foundation's way -- parsed, ``session_id``
      set to the fork's id, ``parent_session_id`` set when the event had a session id,
      re-serialized with ``ensure_ascii`` False / True.

    Messages (``messages``, the same encoding): ``MSG_SAME`` (0) the line copied as it is,
    ``MSG_JSON`` (1) parsed and re-serialized with the transcript serializer.
    Torn (unterminated) or unparseable parent lines are never copied.
    """

    session_id: str
    parent_session_id: str
    events: list[list[int]] = field(default_factory=list)
    messages: list[list[int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._old = '"session_id": ' + _DUMPS_A(self.parent_session_id)
        self._new = '"session_id": ' + _DUMPS_A(self.session_id)
        self._tail = ', "parent_session_id": ' + _DUMPS_A(self.parent_session_id) + "}"

    def to_data(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "parent_session_id": self.parent_session_id,
            "events": [list(r) for r in self.events],
            "messages": [list(r) for r in self.messages],
        }

    @classmethod
    def from_data(cls, data: Any) -> ForkRule | None:
        if not isinstance(data, dict):
            return None
        sid, pid = data.get("session_id"), data.get("parent_session_id")
        if not isinstance(sid, str) or not isinstance(pid, str):
            return None
        runs = [data.get("events"), data.get("messages")]
        ok = [
            r
            if isinstance(r, list)
            and all(
                isinstance(x, list) and len(x) == 2 and all(isinstance(v, int) for v in x)
                for x in r
            )
            else []
            for r in runs
        ]
        return cls(sid, pid, ok[0], ok[1])

    # ---- events
    def _event(self, text: str, mode: int) -> str | None:
        if mode == EV_TEXT:
            return text.replace(self._old, self._new, 1)[:-1] + self._tail
        try:
            value = json.loads(text)
        except ValueError:
            return None
        if not isinstance(value, dict):
            return None
        original = value.get("session_id")
        value["session_id"] = self.session_id
        if original:
            value["parent_session_id"] = self.parent_session_id
        return (_DUMPS_U if mode == EV_UTF8 else _DUMPS_A)(value)

    def render_event(self, text: str, index: int) -> str | None:
        """The fork's copy of the parent's ``index``-th event line (None: not copied)."""
        return self._event(text, _rle_at(self.events, index, EV_UTF8))

    def match_event(self, text: str, line: str) -> bool:
        """Whether the parent's next event line ``text`` became the fork's ``line``; records
        the way it was rewritten (the current way is tried first, then the cheapest)."""
        current = self.events[-1][0] if self.events else EV_TEXT
        for mode in dict.fromkeys((current, EV_TEXT, EV_UTF8, EV_ASCII)):
            if self._event(text, mode) == line:
                _rle_push(self.events, mode)
                return True
        return False

    # ---- messages
    @staticmethod
    def _message(text: str, mode: int) -> str | None:
        if mode == MSG_SAME:
            return text
        try:
            value = json.loads(text)
        except ValueError:
            return None
        return _DUMPS_U(value) if isinstance(value, dict) else None

    def render_message(self, text: str, index: int) -> str | None:
        return self._message(text, _rle_at(self.messages, index, MSG_JSON))

    def match_message(self, text: str, line: str) -> bool:
        current = self.messages[-1][0] if self.messages else MSG_SAME
        for mode in dict.fromkeys((current, MSG_SAME, MSG_JSON)):
            if self._message(text, mode) == line:
                _rle_push(self.messages, mode)
                return True
        return False
