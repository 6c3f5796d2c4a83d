"""Example sessions that show every kind of block (``sessctl demo``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...core.objects import BlockType
from ..repo import Repository
from .common import init_store, message_text, open_store
from .edit import turn_end
from .log import LogEntry, log
from .lookup import session_summary

__all__ = ["DemoReport", "build_demo", "run_demo"]


async def build_demo(
    repo: Repository,
    prefix: str = "demo",
    *,
    start_ns: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[str]:
    """Write example sessions exercising every block kind: messages, events (one large,
    stored as chunks), a fork, a rewind and a merge. Returns the session ids written.

    With ``start_ns`` every timestamp is fixed (1 s apart), so the ids are reproducible.
    """
    clock = [start_ns]

    def ts() -> int | None:
        if clock[0] is None:
            return None
        clock[0] += 1_000_000_000
        return clock[0]

    def say(what: str) -> None:
        if progress is not None:
            progress(what)

    base, n = prefix, 1
    while await repo.exists(f"{prefix}-main") or await repo.exists(f"{prefix}-alt"):
        n += 1
        prefix = f"{base}{n}"
    main, alt = f"{prefix}-main", f"{prefix}-alt"
    msg = BlockType.MESSAGE
    say(f"create {main}")
    await repo.create_session(
        main,
        {"project_slug": "demo-project", "name": "Demo session", "model": "demo-model"},
        timestamp_ns=ts(),
    )
    await repo.append_many(
        main,
        [
            (
                msg,
                {"role": "user", "content": "What is a content-addressed store?", "turn": 1},
                ts(),
            ),
            (
                BlockType.EVENT,
                {
                    "event_id": "e1",
                    "event_type": "llm:request",
                    "data": {"model": "demo-model"},
                    "turn": 1,
                },
                ts(),
            ),
            (
                msg,
                {
                    "role": "assistant",
                    "content": "Objects are named by the hash of their bytes.",
                    "turn": 1,
                },
                ts(),
            ),
        ],
    )
    say("a large event (stored as chunks)")
    lines = [f"line {i}: the quick brown fox jumps over the lazy dog" for i in range(2000)]
    await repo.append(
        main,
        BlockType.EVENT,
        {
            "event_id": "e2",
            "event_type": "tool:result",
            "data": {"output": "\n".join(lines)},
            "turn": 1,
        },
        timestamp_ns=ts(),
    )
    say(f"fork {alt} after turn 1")
    await repo.fork(
        main,
        alt,
        at=await turn_end(repo, main, 1),
        metadata={"name": "Demo fork"},
        timestamp_ns=ts(),
    )
    await repo.append_many(
        alt,
        [
            (msg, {"role": "user", "content": "Explain it as a haiku.", "turn": 2}, ts()),
            (
                msg,
                {
                    "role": "assistant",
                    "content": "Bytes become their names / the same words "
                    "stored only once / history, shared",
                    "turn": 2,
                },
                ts(),
            ),
        ],
    )
    say(f"rewind {main}")
    await repo.append_many(
        main,
        [
            (msg, {"role": "user", "content": "Tell me something wrong.", "turn": 2}, ts()),
            (msg, {"role": "assistant", "content": "The moon is made of cheese.", "turn": 2}, ts()),
        ],
    )
    await repo.rewind(main, await turn_end(repo, main, 1), "wrong answer", timestamp_ns=ts())
    await repo.append_many(
        main,
        [
            (msg, {"role": "user", "content": "How are forks stored?", "turn": 2}, ts()),
            (
                msg,
                {
                    "role": "assistant",
                    "content": "A fork is one block: its history is shared.",
                    "turn": 2,
                },
                ts(),
            ),
        ],
    )
    say(f"merge {alt} into {main}")
    await repo.merge(main, await repo.require_head(alt), "bring in the haiku", timestamp_ns=ts())
    return [main, alt]


@dataclass
class DemoReport:
    """What ``sessctl demo`` wrote and read back."""

    root: str
    sessions: list[str]
    log: list[LogEntry]
    session: dict[str, Any]
    messages: list[str]

    def to_json(self) -> dict[str, Any]:
        return {
            "root": self.root,
            "sessions": self.sessions,
            "log": [e.to_json() for e in self.log],
            "session": self.session,
            "messages": self.messages,
        }


async def run_demo(
    root: Path | str,
    prefix: str = "demo",
    *,
    start_ns: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> DemoReport:
    """Create the store at ``root`` if needed, write the demo sessions (see
    :func:`build_demo`), then read them back: the DAG log and the main session's messages."""
    init_store(root)
    repo = await open_store(root)
    try:
        sessions = await build_demo(repo, prefix, start_ns=start_ns, progress=progress)
        main = sessions[0]
        entries = await log(repo, main, dag=True)
        summary = await session_summary(repo, main)
        state = await repo.materialize(main)
        messages = [
            f"{m.get('role', '?')}: {message_text(m.get('content'))}" for m in state.messages
        ]
    finally:
        await repo.close()
    return DemoReport(str(Path(root).expanduser()), sessions, entries, summary, messages)
