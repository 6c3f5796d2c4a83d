"""Reading a session folder's files for import: small files whole, events.jsonl streamed."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from blake3 import blake3

from .format import encode_message, iter_lines, message_ts_ns, parse_ts_ns, split_lines

__all__ = [
    "EventSource",
    "ImportWarning",
    "Msg",
    "first_ts",
    "hash_bytes",
    "hash_prefix",
    "parse_messages",
    "read_file",
]


@dataclass(frozen=True)
class ImportWarning:
    """A problem in one file (``line`` is 1-based, None for the whole file)."""

    file: str
    line: int | None
    problem: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.problem}"


@dataclass(slots=True)
class Msg:
    """One transcript line: its MESSAGE payload, bytes, time and role."""

    payload: dict[str, Any]
    line: bytes
    nl: bool
    ts_ns: int | None
    role: str | None


class EventSource:
    """events.jsonl read line by line from an offset, with one line of push-back and the
    running hash / offset / count of the complete lines accepted so far."""

    def __init__(self, path: Path | None, offset: int, lines: int, hasher: Any) -> None:
        self.fh: IO[bytes] | None = open(path, "rb") if path is not None else None  # noqa: SIM115
        self._it: Iterator[tuple[bytes, bool, int]] = (
            iter_lines(self.fh, offset) if self.fh is not None else iter(())
        )
        self._pushed: tuple[bytes, bool, int] | None = None
        self.offset, self.lines, self.hasher = offset, lines, hasher
        self.torn = b""
        self.bytes_read = 0

    def next(self) -> tuple[bytes, bool, int] | None:
        if self._pushed is not None:
            item, self._pushed = self._pushed, None
            return item
        return next(self._it, None)

    def push(self, item: tuple[bytes, bool, int]) -> None:
        self._pushed = item

    def accept(self, line: bytes, nl: bool) -> None:
        if nl:
            self.hasher.update(line)
            self.hasher.update(b"\n")
            self.offset += len(line) + 1
            self.lines += 1
        else:
            self.torn = line
        self.bytes_read += len(line) + nl

    def close(self) -> None:
        if self.fh is not None:
            self.fh.close()


def read_file(path: Path | None, name: str, warn: Any) -> bytes | None:
    if path is None:
        return None
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        warn(ImportWarning(name, None, f"unreadable ({exc.strerror or exc})"))
        return None


def hash_bytes(data: bytes | None) -> str | None:
    return None if data is None else blake3(data).hexdigest()


def hash_prefix(path: Path, length: int) -> tuple[Any, bool]:
    """A hasher over the first ``length`` bytes of the file; False if the file is shorter."""
    h = blake3()
    with open(path, "rb") as fh:
        left = length
        while left > 0:
            piece = fh.read(min(left, 1 << 23))
            if not piece:
                return h, False
            h.update(piece)
            left -= len(piece)
    return h, True


def parse_messages(data: bytes | None, warn: Any) -> list[Msg]:
    """One entry per transcript line (problems reported through ``warn``)."""
    msgs: list[Msg] = []
    for n, (line, nl) in enumerate(split_lines(data or b""), 1):
        payload, problem = encode_message(line, nl)
        if problem:
            warn(ImportWarning("transcript.jsonl", n, problem))
        value = payload if "__line__" not in payload or len(payload) > 1 else {}
        role = value.get("role")
        msgs.append(
            Msg(payload, line, nl, message_ts_ns(value), role if isinstance(role, str) else None)
        )
    return msgs


# ------------------------------------------------------------------ the import


def first_ts(path: Path | None) -> int | None:
    """The ``ts`` of the first event (cheap: reads the first 64 KB only)."""
    if path is None:
        return None
    try:
        with open(path, "rb") as fh:
            head = fh.read(65536)
    except OSError:
        return None
    i = head.find(b'"ts": "')
    if i < 0:
        return None
    j = head.find(b'"', i + 7)
    return parse_ts_ns(head[i + 7 : j].decode("ascii", "replace")) if j > 0 else None
