"""Tests for scripts/generate_sessions.py (the realistic Amplifier session generator)."""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from helpers.generator import SCRIPT as _SCRIPT
from helpers.generator import load_generator

gs = load_generator()

SESSIONS = 20
TARGET = 16 * 1024 * 1024
SEED = 1234

_TS_NS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}\+00:00$")
_TS_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00$")
_HOISTED = (
    "redaction",
    "status",
    "duration_ms",
    "module",
    "component",
    "error",
    "request_id",
    "span_id",
    "parent_span_id",
    "session_id",
)
_SUB_ID = re.compile(r"^[0-9a-f]{16}-[0-9a-f]{16}_[a-z0-9-]+$")


# ------------------------------------------------------------------------------- helpers ---


def _tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _lines(path: Path) -> list[str]:
    """Lines without their trailing newline (a torn last line is returned as is)."""
    data = path.read_text(encoding="utf-8")
    parts = data.split("\n")
    if parts and parts[-1] == "":
        parts.pop()
    return parts


def _by_id(summary: Any) -> dict[str, Any]:
    return {r.session_id: r for r in summary.records}


def _event_name(line: str) -> str:
    i = line.index('"event": "') + 10
    return line[i : line.index('"', i)]


@pytest.fixture(scope="module")
def gen(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    out = tmp_path_factory.mktemp("gen") / "out"
    summary = gs.generate(out, SESSIONS, TARGET, SEED)
    return out, summary


# --------------------------------------------------------------------------- determinism ---


def test_same_seed_same_bytes(gen: tuple[Path, Any], tmp_path: Path) -> None:
    out, _ = gen
    again = tmp_path / "again"
    gs.generate(again, SESSIONS, TARGET, SEED)
    assert _tree(out) == _tree(again)


def test_different_seed_differs(gen: tuple[Path, Any], tmp_path: Path) -> None:
    out, _ = gen
    other = tmp_path / "other"
    gs.generate(other, SESSIONS, TARGET, SEED + 1)
    a, b = _tree(out), _tree(other)
    assert set(a) != set(b)
    assert not set(a.values()) & set(b.values())


def test_refuses_existing_output(gen: tuple[Path, Any]) -> None:
    out, _ = gen
    with pytest.raises(FileExistsError):
        gs.generate(out, 2, 1_000_000, 1)


# ------------------------------------------------------------------------- layout / mix ---


def test_layout_and_mix(gen: tuple[Path, Any]) -> None:
    out, s = gen
    assert s.sessions == SESSIONS == len(s.records)
    assert s.top_level + s.forks + s.sub_sessions == SESSIONS
    assert 0.08 <= s.forks / SESSIONS <= 0.16
    assert 0.13 <= s.sub_sessions / SESSIONS <= 0.21
    assert s.resumed >= 2 and s.killed >= 1
    assert {r.era for r in s.records} & {"old"} and {r.era for r in s.records} & {"mid", "new"}
    dirs = sorted(p for p in out.glob("projects/*/sessions/*") if p.is_dir())
    assert len(dirs) == SESSIONS
    assert {d.name for d in dirs} == {r.session_id for r in s.records}
    for r in s.records:
        assert r.path.parent.parent.parent == out / "projects"
        assert (r.path / "events.jsonl").is_file()
        slug = r.path.parent.parent.name
        assert slug.startswith("-") and "/" not in slug
    files = sum(1 for p in out.rglob("*") if p.is_file())
    assert files == s.files
    assert sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) == s.total_bytes


def test_target_size_respected(gen: tuple[Path, Any], tmp_path: Path) -> None:
    _, s = gen
    assert abs(s.total_bytes - TARGET) <= 0.2 * TARGET
    small = gs.generate(tmp_path / "small", 8, 5 * 1024 * 1024, 7)
    assert abs(small.total_bytes - 5 * 1024 * 1024) <= 0.2 * 5 * 1024 * 1024
    assert small.events_bytes > 0.8 * small.total_bytes  # events.jsonl dominate, as in reality


def test_size_distribution_is_heavy_tailed(gen: tuple[Path, Any]) -> None:
    _, s = gen
    sizes = sorted(r.events_bytes for r in s.records if r.kind == "top" and not r.killed)
    assert sizes[-1] > 3 * sizes[len(sizes) // 2]


# ---------------------------------------------------------------------- serialization ---


def test_events_lines_exact_hooks_logging_shape(gen: tuple[Path, Any]) -> None:
    _, s = gen
    names: set[str] = set()
    for r in s.records:
        for line in _lines(r.path / "events.jsonl"):
            obj = json.loads(line)
            assert json.dumps(obj) == line  # default separators and ensure_ascii
            keys = list(obj)
            assert keys[:4] == ["ts", "lvl", "schema", "event"]
            assert obj["schema"] == {"name": "amplifier.log", "ver": "1.0.0"}
            copied = keys[-1] == "parent_session_id"
            body = keys[4:-1] if copied else keys[4:]
            assert body[-1] == "data"
            hoisted = body[:-1]
            assert set(hoisted) <= set(_HOISTED) and "session_id" in hoisted
            assert obj["session_id"] == r.session_id
            ts = obj["ts"]
            if r.era in ("mid", "new"):
                assert _TS_NS.match(ts), ts
                assert hoisted == sorted(hoisted)
                assert list(obj["data"]) == sorted(obj["data"])
            else:
                assert _TS_MS.match(ts), ts
                assert hoisted == [k for k in _HOISTED if k in hoisted]
            err = "error" in obj["event"] or bool(obj.get("error")) or obj.get("status") == "error"
            assert obj["lvl"] == ("ERROR" if err else "INFO")
            names.add(obj["event"])
    for must in (
        "session:start",
        "session:config",
        "session:end",
        "session:resume",
        "session:fork",
        "prompt:submit",
        "prompt:complete",
        "execution:start",
        "execution:end",
        "provider:request",
        "provider:response",
        "llm:request",
        "llm:response",
        "content_block:start",
        "content_block:end",
        "tool:pre",
        "tool:post",
        "orchestrator:complete",
        "delegate:agent_spawned",
    ):
        assert must in names, must


def test_llm_events_payloads(gen: tuple[Path, Any]) -> None:
    _, s = gen
    checked = 0
    for r in s.records:
        if r.kind != "top" or r.killed:
            continue
        for line in _lines(r.path / "events.jsonl"):
            name = _event_name(line)
            if name == "llm:request":
                raw = json.loads(line)["data"]["raw"]
                assert {"messages", "system", "tools", "model", "max_tokens"} <= set(raw)
                assert raw["messages"][-1]["content"][-1]["cache_control"] == {"type": "ephemeral"}
                checked += 1
            elif name == "llm:response":
                data = json.loads(line)["data"]
                assert {"input_tokens", "output_tokens", "cost_usd"} <= set(data["usage"])
                float(data["usage"]["cost_usd"])
    assert checked > 10


def test_session_config_blob_nearly_identical(gen: tuple[Path, Any]) -> None:
    _, s = gen
    blobs = []
    for r in s.records:
        if r.kind == "top":
            for line in _lines(r.path / "events.jsonl"):
                if _event_name(line) == "session:config":
                    blobs.append(json.loads(line)["data"]["raw"])
                    break
    assert len(blobs) >= 5
    first = blobs[0]
    assert list(first)[:3] == ["project_dir", "working_dir", "project_slug"]
    same_version = [b for b in blobs if b["bundle"]["version"] == first["bundle"]["version"]]
    assert len(same_version) >= 2
    # large, and the agents section is shared verbatim within a bundle version
    assert len(json.dumps(first)) > 100_000
    assert all(b["agents"] == first["agents"] for b in same_version)


def test_transcript_and_metadata_serialization(gen: tuple[Path, Any]) -> None:
    _, s = gen
    n_meta = 0
    for r in s.records:
        tp, mp = r.path / "transcript.jsonl", r.path / "metadata.json"
        if not mp.exists():
            assert r.killed and not tp.exists()
            continue
        text = mp.read_text(encoding="utf-8")
        meta = json.loads(text)
        assert text == json.dumps(meta, indent=2)  # no trailing newline, ASCII
        assert meta["session_id"] == r.session_id
        n_meta += 1
        lines = _lines(tp)
        assert lines and tp.read_bytes().endswith(b"\n")
        for line in lines:
            msg = json.loads(line)
            assert json.dumps(msg, ensure_ascii=False) == line
            assert msg["role"] in ("user", "assistant", "tool")
            if msg["role"] != "tool":
                assert list(msg)[:2] == ["role", "content"]
            else:
                assert list(msg)[:4] == ["role", "name", "tool_call_id", "content"]
                result = json.loads(msg["content"])
                assert set(result) == {"error", "output", "success"}
            if msg["role"] == "assistant" and "tool_calls" in msg:
                for tc in msg["tool_calls"]:
                    assert list(tc) == ["id", "tool", "arguments"]
            if r.era in ("old", "legacy"):
                assert "timestamp" in msg and "metadata" not in msg
            elif r.era == "mid":
                assert list(msg["metadata"]) == ["timestamp"]
            else:
                assert "_seq" in msg["metadata"]
        if r.kind == "top":
            assert meta["turn_count"] == r.turns
            assert meta["working_dir"].startswith("/")
        elif r.kind == "sub":
            for k in (
                "parent_id",
                "trace_id",
                "agent_name",
                "child_span",
                "config",
                "agent_overlay",
                "bundle_context",
                "self_delegation_depth",
                "working_dir",
            ):
                assert k in meta, k
            if r.era in ("mid", "new"):
                assert _SUB_ID.match(r.session_id), r.session_id
            assert "_" in r.session_id or r.session_id.startswith(meta["parent_id"])
        else:
            assert list(meta) == [
                "session_id",
                "parent_id",
                "forked_from_turn",
                "forked_at",
                "created",
                "turn_count",
                "bundle",
                "model",
            ]
    assert n_meta >= SESSIONS - 3


def test_new_era_transcripts_have_reminders_and_seq(tmp_path: Path) -> None:
    s = gs.generate(tmp_path / "o", 16, 12 * 1024 * 1024, 99)
    new = [r for r in s.records if r.era == "new" and (r.path / "transcript.jsonl").exists()]
    assert new, "seed 99 should produce a September-2026 session"
    msgs = [json.loads(x) for x in _lines(new[0].path / "transcript.jsonl")]
    assert [m["metadata"]["_seq"] for m in msgs] == list(range(len(msgs)))
    reminders = [m for m in msgs if m["metadata"].get("ephemeral")]
    assert reminders and all(m["role"] == "user" and m["metadata"]["persisted"] for m in reminders)


# ---------------------------------------------------------------------------------- forks ---


def _ts_dt(ts: str) -> datetime:
    return datetime.fromisoformat(ts)


def test_forks_share_prefixes_with_parent(gen: tuple[Path, Any]) -> None:
    _, s = gen
    ids = _by_id(s)
    forks = [r for r in s.records if r.kind == "fork"]
    assert forks
    for f in forks:
        parent = ids[f.parent_id]
        meta = json.loads((f.path / "metadata.json").read_text())
        assert meta["parent_id"] == parent.session_id
        assert meta["forked_from_turn"] == f.forked_from_turn >= 1
        assert f.path.parent == parent.path.parent  # sibling folder
        # transcript: the parent's, cut after turn N, then the fork's own turns
        ft, pt = _lines(f.path / "transcript.jsonl"), _lines(parent.path / "transcript.jsonl")
        n = 0
        while n < min(len(ft), len(pt)) and ft[n] == pt[n]:
            n += 1
        prefix = [json.loads(x) for x in ft[:n]]
        real_turns = sum(
            1
            for m in prefix
            if m["role"] == "user" and not (m.get("metadata") or {}).get("ephemeral")
        )
        assert real_turns == f.forked_from_turn
        assert len(ft) > n  # the fork continued
        # events: parent's lines (session_id rewritten, parent_session_id appended), in order
        fl, pl = _lines(f.path / "events.jsonl"), _lines(parent.path / "events.jsonl")
        copied = fl[: f.copied_event_lines]
        assert copied and all(
            x.endswith(f', "parent_session_id": "{parent.session_id}"}}') for x in copied
        )
        assert not any('"parent_session_id"' in x for x in fl[f.copied_event_lines :])
        last = prefix[-1]
        cutoff = _ts_dt(last.get("timestamp") or last["metadata"]["timestamp"])
        j = 0
        for x in copied:
            obj = json.loads(x)
            assert obj.pop("parent_session_id") == parent.session_id
            assert obj["session_id"] == f.session_id
            # amplifier-foundation keeps events whose ts (read to the microsecond) is
            # not after the last transcript timestamp of turn N
            assert _ts_dt(obj["ts"]) <= cutoff
            obj["session_id"] = parent.session_id
            back = json.dumps(obj)
            while pl[j] != back:
                j += 1  # raises IndexError if the copied line is not in the parent, in order
            j += 1
        assert _event_name(fl[f.copied_event_lines]) == "session:resume"


# ----------------------------------------------------------------------- growth / shapes ---


def test_events_grow_superlinearly(gen: tuple[Path, Any]) -> None:
    _, s = gen
    tops = [r for r in s.records if r.kind == "top" and not r.killed]
    r = max(tops, key=lambda x: x.llm_requests)
    assert r.llm_requests >= 6 and r.turns >= 2
    sizes: list[int] = []
    prev_msgs: list[Any] | None = None
    for line in _lines(r.path / "events.jsonl"):
        if _event_name(line) != "llm:request":
            continue
        sizes.append(len(line) + 1)
        msgs = json.loads(line)["data"]["raw"]["messages"]
        if prev_msgs is not None:
            # each request re-sends the whole conversation so far (the last message differs
            # only by its cache_control marker)
            assert msgs[: len(prev_msgs) - 1] == prev_msgs[:-1]
            assert len(msgs) > len(prev_msgs)
        prev_msgs = msgs
    assert all(b > a for a, b in itertools.pairwise(sizes))
    half = len(sizes) // 2
    cum_half, cum_all = sum(sizes[:half]), sum(sizes[: 2 * half])
    assert cum_all > 2 * cum_half  # f(2x) > 2 f(x): superlinear in the number of calls
    # and per turn: later turns cost more than earlier ones on average
    ends = r.turn_end_bytes
    if len(ends) >= 4:
        incs = [b - a for a, b in itertools.pairwise(ends)]
        k = len(incs) // 2
        assert sum(incs[k:]) / len(incs[k:]) > 0.5 * sum(incs[:k]) / len(incs[:k])


def test_resumed_and_killed_sessions(gen: tuple[Path, Any]) -> None:
    _, s = gen
    for r in s.records:
        names = [_event_name(x) for x in _lines(r.path / "events.jsonl")]
        own = names[r.copied_event_lines :]
        if r.resumes:
            assert own.count("session:resume") >= r.resumes
            meta = json.loads((r.path / "metadata.json").read_text())
            assert "last_updated" in meta
        if r.killed:
            assert "session:end" not in own
        elif r.kind != "fork":
            assert own[-1] in ("session:end", "cleanup:finally_end")
        if r.kind == "sub":
            assert own[:3] == ["session:fork", "session:start", "session:config"]


def test_sub_sessions_linked_from_parent(gen: tuple[Path, Any]) -> None:
    _, s = gen
    ids = _by_id(s)
    subs = [r for r in s.records if r.kind == "sub"]
    assert subs
    for sub in subs:
        parent = ids[sub.parent_id]
        assert sub.path.parent == parent.path.parent
        text = (parent.path / "events.jsonl").read_text(encoding="utf-8")
        assert f'"sub_session_id": "{sub.session_id}"' in text
        first = json.loads(_lines(sub.path / "events.jsonl")[0])
        assert first["data"]["parent_id"] == parent.session_id


# --------------------------------------------------------------------------------- options ---


def test_torn_option(tmp_path: Path) -> None:
    s = gs.generate(tmp_path / "t", 20, 10 * 1024 * 1024, 5, torn=True)
    torn = [r for r in s.records if r.torn]
    assert torn and s.torn == len(torn)
    for r in torn:
        data = (r.path / "events.jsonl").read_bytes()
        assert not data.endswith(b"\n")
        last = data.rsplit(b"\n", 1)[-1]
        with pytest.raises(json.JSONDecodeError):
            json.loads(last)
    for r in s.records:
        if not r.torn:
            assert (r.path / "events.jsonl").read_bytes().endswith(b"\n")


def test_raw_unicode_option(tmp_path: Path) -> None:
    s = gs.generate(tmp_path / "u", 8, 6 * 1024 * 1024, 3, ensure_ascii=False)
    non_ascii = 0
    for r in s.records:
        for line in _lines(r.path / "events.jsonl"):
            assert json.dumps(json.loads(line), ensure_ascii=False) == line
            non_ascii += not line.isascii()
    assert non_ascii > 0


def test_legacy_layout(tmp_path: Path) -> None:
    out = tmp_path / "legacy"
    s = gs.generate(out, 10, 6 * 1024 * 1024, 11, layout="legacy")
    assert not (out / "projects").exists()
    dirs = [p for p in (out / "sessions").iterdir() if p.is_dir()]
    assert len(dirs) == 10
    for r in s.records:
        assert r.era == "legacy" and r.path.parent == out / "sessions"
        if r.kind == "top" and (r.path / "metadata.json").exists():
            meta = json.loads((r.path / "metadata.json").read_text())
            assert "profile" in meta and "bundle" not in meta
            assert (r.path / "profile.md").is_file()


def test_parse_size() -> None:
    assert gs.parse_size("1G") == 1024**3
    assert gs.parse_size("500M") == 500 * 1024**2
    assert gs.parse_size("1.5GiB") == int(1.5 * 1024**3)
    assert gs.parse_size("12000") == 12000
    with pytest.raises(ValueError):
        gs.parse_size("12 parsecs")


def test_cli(tmp_path: Path) -> None:
    out = tmp_path / "cli"
    proc = subprocess.run(
        [
            sys.executable,
            str(_SCRIPT),
            str(out),
            "--sessions",
            "4",
            "--target-bytes",
            "3M",
            "--seed",
            "2",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert "Generated 4 sessions" in proc.stdout
    assert "forks" in proc.stdout and "events.jsonl" in proc.stdout
    assert len(list(out.glob("projects/*/sessions/*"))) == 4
