"""sessctl show / log / diff on sessions imported from Amplifier folders: the messages and
event lines Amplifier wrote, never the stored skeletons (``"__line__"``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cli_support import run_sessctl

from amplifier_session_storage.repository.views import message_text
from amplifier_session_storage.repository.views.common import one_line
from helpers.generator import load_generator


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


class Imported:
    def __init__(self, store: Path, folder: Path) -> None:
        self.store = store
        self.sid = folder.name
        self.transcript = _lines(folder / "transcript.jsonl")
        self.events = _lines(folder / "events.jsonl")

    def run(self, *args: str) -> Any:
        r = run_sessctl(self.store, *args)
        assert r.code == 0, r.err
        return r

    def chain(self) -> list[dict[str, Any]]:
        """The session's log entries, oldest first."""
        return list(reversed(self.run("log", self.sid, "--json").json()))


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Imported:
    """Two generated sessions imported with ``sessctl import``; the smaller one is used."""
    corpus = tmp_path_factory.mktemp("corpus")
    load_generator().generate(corpus, sessions=2, target_bytes=1_500_000, seed=3)
    store = tmp_path_factory.mktemp("store") / "repo"
    r = run_sessctl(store, "import", str(corpus), "-q")
    assert r.code == 0, r.err
    folders = sorted(corpus.glob("projects/*/sessions/*"))
    folder = min(folders, key=lambda p: (p / "transcript.jsonl").stat().st_size)
    session = Imported(store, folder)
    # the bug's precondition: messages holding long strings (stored as skeletons)
    assert max(len(json.dumps(m)) for m in session.transcript) > 1000
    return session


def _summary(m: dict[str, Any]) -> str:
    return one_line(f"{m.get('role', '?')}: {message_text(m.get('content'))}")


def test_show_message_blocks_are_the_transcript(imported: Imported) -> None:
    blocks = [e for e in imported.chain() if e["type"] == "message"]
    assert len(blocks) == len(imported.transcript)
    for entry, msg in zip(blocks, imported.transcript, strict=True):
        r = imported.run("show", entry["id"], "--json")
        assert "__line__" not in r.out
        shown = r.json()
        assert shown["data"] == msg
        assert shown["summary"] == _summary(msg)
    # the human form prints the message's text
    longest = max(range(len(blocks)), key=lambda i: len(json.dumps(imported.transcript[i])))
    text = imported.run("show", blocks[longest]["id"]).out
    assert message_text(imported.transcript[longest]["content"]) in text
    assert "__line__" not in text
    # --raw still shows the stored object as it is
    assert "__line__" in imported.run("show", blocks[longest]["id"], "--raw").out


def test_show_session_summarizes_real_messages(imported: Imported) -> None:
    r = imported.run("show", imported.sid, "--json")
    summary = r.json()
    assert summary["messages"] == len(imported.transcript)
    assert summary["events"] == len(imported.events)
    assert summary["last_messages"] == [_summary(m) for m in imported.transcript[-5:]]
    assert all(len(s.split(": ", 1)[1]) > 0 for s in summary["last_messages"])
    human = imported.run("show", imported.sid).out
    assert _summary(imported.transcript[-1]) in human


def test_show_event_block_is_the_events_line(imported: Imported) -> None:
    events = [e for e in imported.chain() if e["type"] == "event"]
    assert len(events) == len(imported.events)
    biggest = max(range(len(events)), key=lambda i: len(json.dumps(imported.events[i])))
    for i in (0, biggest):
        shown = imported.run("show", events[i]["id"], "--json").json()
        assert shown["data"] == imported.events[i]
        assert shown["summary"].startswith(f"event {imported.events[i]['event']} (")


def test_log_summarizes_message_text(imported: Imported) -> None:
    chain = imported.chain()
    messages = [e["summary"] for e in chain if e["type"] == "message"]
    assert messages == [_summary(m) for m in imported.transcript]
    events = [e["summary"] for e in chain if e["type"] == "event"]
    assert events == [f"event {e['event']}" for e in imported.events]


def test_diff_shows_real_messages(imported: Imported) -> None:
    chain = imported.chain()
    second = [e for e in chain if e["type"] == "message"][1]
    imported.run("fork", imported.sid, "--at", second["id"], "--id", "diff-fork", "-q")
    d = imported.run("diff", "diff-fork", imported.sid, "--json").json()
    assert d["common"] == 2 and d["removed"] == []
    rest = imported.transcript[2:]
    assert [a["message"] for a in d["added"]] == rest
    assert [a["index"] for a in d["added"]] == list(range(2, len(imported.transcript)))
    assert [a["role"] for a in d["added"]] == [m["role"] for m in rest]
    assert [a["text"] for a in d["added"]] == [message_text(m.get("content")) for m in rest]
    human = imported.run("diff", "diff-fork", imported.sid).out
    first = " ".join(message_text(rest[0].get("content")).split())[:60]
    assert first and first in human
    assert "__line__" not in human
