"""The log: blocks newest first, git's formats, and the lanes that draw the DAG."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ...core.ids import ObjectId
from ...core.objects import Block
from ...core.refnames import session_ref
from ...errors import InvalidInputError, SessionNotFoundError
from ...stores.base import ReflogEntry
from ..repo import Repository
from ..state import PayloadRender
from .common import block_summary, iso_time

__all__ = ["GraphRow", "Line", "LogEntry", "Segment", "format_log", "graph_layout", "log", "reflog"]


@dataclass
class LogEntry:
    """One block in a log listing."""

    id: str
    session_id: str
    type: str
    sequence: int
    timestamp_ns: int
    parents: list[str]
    refs: list[str]
    summary: str
    user_id: str = ""

    @classmethod
    def of(cls, b: Block, refs: Sequence[str] = (), data: Any = None) -> LogEntry:
        """``data``: the payload as shown (None: the block's own)."""
        return cls(
            b.block_id,
            b.session_id,
            b.block_type.value,
            b.sequence,
            b.timestamp_ns,
            [p.hex() for p in b.parents],
            list(refs),
            block_summary(b) if data is None else block_summary(b, data),
            b.user_id,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "session_id": self.session_id,
            "type": self.type,
            "sequence": self.sequence,
            "timestamp_ns": self.timestamp_ns,
            "time": iso_time(self.timestamp_ns),
            "parents": self.parents,
            "refs": self.refs,
            "user_id": self.user_id,
            "summary": self.summary,
        }


async def log(
    repo: Repository,
    session_id: str | None = None,
    *,
    limit: int | None = None,
    dag: bool = False,
    render: PayloadRender | None = None,
) -> list[LogEntry]:
    """Blocks newest first. With a session and not ``dag``: its first-parent chain (what the
    session is; ``limit`` blocks are read, never the whole history). With ``dag`` or without
    a session: every block reachable from the head(s), through all parents, by time.
    ``render``: what a block's payload shows (its summary)."""
    if limit is not None and limit < 0:
        raise InvalidInputError("the limit must be >= 0")
    if session_id is not None:
        heads = {session_id: await repo.require_head(session_id)}
    else:
        heads = {name[len("sessions/") :]: oid async for name, oid in repo.refs.list("sessions/")}
    refs: dict[ObjectId, list[str]] = {}
    for sid, oid in sorted(heads.items()):
        refs.setdefault(oid, []).append(sid)
    if session_id is not None and not dag:
        walker = repo.walk(heads[session_id], limit=limit)
    else:
        ordered = sorted(set(heads.values()))
        walker = repo.walk_all(ordered, limit=limit)
    if render is None:
        return [LogEntry.of(b, refs.get(b.id, ())) async for b in walker]
    return [LogEntry.of(b, refs.get(b.id, ()), await render(b)) async for b in walker]


@dataclass
class GraphRow:
    """The lane drawing for one log entry: its own row, connector rows, continuation."""

    commit: str  # e.g. "| * |", padded to ``width``
    connectors: list[str]  # rows of / \ | that move edges from this entry to its parents
    after: str  # the lanes left once the edges have moved: prefix for further text rows
    width: int


def graph_layout(nodes: Sequence[tuple[str, Sequence[str]]]) -> list[GraphRow]:
    """Git-style lanes for ``nodes`` = (id, parent ids), children before parents.

    Each lane holds the id it waits for. An entry takes the lane waiting for it (or a new
    one on the right), then hands that lane to its first parent and opens lanes for further
    parents right beside it; a parent that already has a lane is joined with ``/`` or ``\\``
    and duplicate lanes collapse. Edges move one column per connector row.
    """
    lanes: list[str] = []
    shown: set[str] = set()
    out: list[GraphRow] = []
    for nid, parents in nodes:
        if nid in lanes:
            col = lanes.index(nid)
        else:
            lanes.append(nid)
            col = len(lanes) - 1
        shown.add(nid)
        todo = [p for p in dict.fromkeys(parents) if p not in shown]
        after: list[str] = []
        for i, x in enumerate(lanes):
            for y in todo if i == col else [x]:
                if y not in after:
                    after.append(y)
        edges = [
            (i, after.index(y)) for i, x in enumerate(lanes) for y in (todo if i == col else [x])
        ]
        width = 2 * max(len(lanes), len(after), 1)
        commit = " ".join("*" if i == col else "|" for i in range(len(lanes)))
        steps = max((abs(b - a) for a, b in edges), default=0)
        rows = [_connector(edges, s, width) for s in range(1, steps + 1)]
        out.append(
            GraphRow(commit.ljust(width), rows, " ".join("|" * len(after)).ljust(width), width)
        )
        lanes = after
    return out


def _connector(edges: Sequence[tuple[int, int]], step: int, width: int) -> str:
    cells = [" "] * (width + 1)

    def put(pos: int, ch: str) -> None:
        if 0 <= pos < len(cells):
            old = cells[pos]
            cells[pos] = ch if old in (" ", ch) else ("|" if "|" in (ch, old) else "X")

    for a, b in edges:
        dist = abs(b - a)
        sign = 1 if b > a else -1
        if dist >= step:  # still moving: the edge crosses between two columns on this row
            here = a + sign * (step - 1)
            put(2 * here + sign, "\\" if sign > 0 else "/")
        else:
            put(2 * b, "|")
    return "".join(cells).rstrip().ljust(width)


Segment = tuple[str, str]  # (text, style): style is "", "graph", "id", "ref" or "label"
Line = list[Segment]


def _entry_lines(e: LogEntry, oneline: bool) -> list[Line]:
    refs: Line = [(f" ({', '.join(e.refs)})", "ref")] if e.refs else []
    label = "label" if e.type in ("fork", "rewind", "merge") else ""
    if oneline:
        return [
            [(e.id[:12], "id"), *refs, (f" {e.session_id}#{e.sequence} ", ""), (e.summary, label)]
        ]
    lines: list[Line] = [
        [(f"block {e.id}", "id"), *refs],
        [(f"Session: {e.session_id} #{e.sequence} ({e.type})", "")],
        [(f"Date:    {iso_time(e.timestamp_ns)}", "")],
    ]
    if len(e.parents) > 1:
        lines.append([("Parents: " + " ".join(p[:12] for p in e.parents), "")])
    return [*lines, [], [("    ", ""), (e.summary, label)], []]


def format_log(
    entries: Sequence[LogEntry], *, graph: bool = False, oneline: bool = False
) -> list[Line]:
    """The log as styled lines: git's medium or ``--oneline`` format, with lanes on the
    left when ``graph`` (text rows after an entry's first continue its lanes)."""
    texts = [_entry_lines(e, oneline) for e in entries]
    if not graph:
        return [line for t in texts for line in t]
    out: list[Line] = []
    for text, row in zip(texts, graph_layout([(e.id, e.parents) for e in entries]), strict=True):
        rest = list(text[1:])
        out.append([(row.commit, "graph"), *text[0]])
        for conn in row.connectors:
            out.append([(conn, "graph"), *(rest.pop(0) if rest else [])])
        out.extend([(row.after, "graph"), *line] for line in rest)
    return [_rstrip(line) for line in out]


def _rstrip(line: Line) -> Line:
    while line and not line[-1][0].strip():
        line = line[:-1]
    if line:
        text, style = line[-1]
        line = [*line[:-1], (text.rstrip(), style)]
    return line


async def reflog(repo: Repository, session_id: str) -> list[dict[str, Any]]:
    """The moves of a session's head, newest first (kept after the session is deleted)."""
    entries: list[ReflogEntry] = await repo.refs.reflog(session_ref(session_id))
    if not entries:
        raise SessionNotFoundError(session_id)
    return [
        {
            "index": i,
            "old": e.old.hex() if e.old else None,
            "new": e.new.hex() if e.new else None,
            "timestamp_ns": e.time_ns,
            "time": iso_time(e.time_ns),
            "reason": e.reason,
        }
        for i, e in enumerate(reversed(entries))
    ]
