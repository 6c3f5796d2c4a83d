"""sessctl show, cat-object, sessions, diff and status against a real store."""

from __future__ import annotations

from blake3 import blake3
from cli_support import Run, assert_one_line_error


def test_show_session_summary(sessctl: Run, heads: dict[str, str]) -> None:
    r = sessctl("show", "main")
    assert r.code == 0, r.err
    assert r.out.startswith("session main\n")
    assert f"Head:     {heads['main']} (#10)" in r.out
    data = sessctl("show", "main", "--json").json()
    assert data["kind"] == "session" and data["head"] == heads["main"]
    assert f"Messages: {data['messages']}\n" in r.out
    assert data["messages"] == 8  # 4 own + 2 redone + 2 merged from alt
    assert data["metadata"]["project_slug"] == "proj-a"
    assert "user: say something right" in data["last_messages"]


def test_show_message_by_sequence_and_by_prefix(sessctl: Run) -> None:
    r = sessctl("show", "main@2")
    assert r.code == 0, r.err
    assert "Type:    message" in r.out and "hello" in r.out
    data = sessctl("show", "main@2", "--json").json()
    assert data["kind"] == "block" and data["data"]["content"] == "hello"
    by_prefix = sessctl("show", data["id"][:10], "--json").json()
    assert by_prefix == data
    assert sessctl("show", "main@HEAD~8", "--json").json()["id"] == data["id"]


def test_show_event_and_raw(sessctl: Run) -> None:
    data = sessctl("show", "main@6", "--json").json()
    assert data["type"] == "event" and data["data"]["event_type"] == "tool:result"
    raw = sessctl("show", "--raw", "main@6")
    assert raw.code == 0, raw.err
    obj = raw.json()["object"]
    assert obj[:4] == ["b", 1, "event", "main"] and obj[5] == 6
    assert obj[4] == [data["parents"][0]]  # parent ids as hex


def test_cat_object_writes_verified_bytes(sessctl: Run, heads: dict[str, str]) -> None:
    r = sessctl("cat-object", heads["main"][:8])
    assert r.code == 0, r.err
    assert blake3(r.raw).hexdigest() == heads["main"]
    assert_one_line_error(sessctl("cat-object", "0000dead"), 3)


def test_sessions_newest_first_filtered_paginated(sessctl: Run) -> None:
    r = sessctl("sessions")
    assert r.code == 0, r.err
    rows = r.out.splitlines()
    assert rows[0].split()[0] == "SESSION"
    assert [x.split()[0] for x in rows[1:]] == ["other", "alt", "main"]
    data = sessctl("sessions", "--json").json()
    assert [d["session_id"] for d in data] == ["other", "alt", "main"]
    assert data[1]["forked_from"] == "main"
    assert [d["session_id"] for d in sessctl("sessions", "-p", "proj-a", "--json").json()] == [
        "alt",
        "main",
    ]
    page = sessctl("sessions", "--limit", "1", "--offset", "1")
    assert [x.split()[0] for x in page.out.splitlines()[1:]] == ["alt"]
    assert "--offset 2" in page.err
    assert sessctl("sessions", "-q", "--limit", "1").err == ""


def test_diff_two_heads(sessctl: Run) -> None:
    r = sessctl("diff", "main", "alt")
    assert r.code == 0, r.err
    d = sessctl("diff", "main", "alt", "--json").json()
    assert [m["text"] for m in d["removed"]] == [
        "tell me about forks",
        "forks share history",
        "say something right",
        "2 + 2 = 4",
    ]
    assert d["added"] == []
    assert d["common"] == 4
    assert f"@@ {d['common']} messages in common, 4 removed, 0 added @@" in r.out
    assert "-[2] user: tell me about forks" in r.out
    back = sessctl("diff", "alt", "main@5", "--json").json()
    assert [m["text"] for m in back["removed"]] == ["a different question", "a different answer"]
    assert [m["text"] for m in back["added"]] == ["tell me about forks", "forks share history"]
    assert_one_line_error(sessctl("diff", "main", "nope"), 3)


def test_status(sessctl: Run) -> None:
    r = sessctl("status")
    assert r.code == 0, r.err
    data = sessctl("status", "--json").json()
    assert data["sessions"] == 3 and data["objects"] > 15 and data["bytes_on_disk"] > 0
    assert f"Sessions:   {data['sessions']}\n" in r.out
    assert f"Objects:    {data['objects']}\n" in r.out
    assert f"({data['bytes_on_disk']} bytes)" in r.out
    assert r.err == ""  # no progress bar when stderr is not a terminal
