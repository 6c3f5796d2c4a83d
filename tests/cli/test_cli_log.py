"""sessctl log and reflog against a real store: golden graphs, --json, limits."""

from __future__ import annotations

import re

from cli_support import Run, assert_one_line_error, golden


def test_log_graph_draws_fork_rewind_and_merge(sessctl: Run) -> None:
    r = sessctl("log", "--graph", "main")
    assert r.code == 0, r.err
    golden("log_graph.txt", r.out)
    assert "MERGE" in r.out and "REWIND" in r.out and "FORK" in r.out


def test_log_graph_oneline_all_sessions(sessctl: Run) -> None:
    r = sessctl("log", "--graph", "--oneline", "--all")
    assert r.code == 0, r.err
    golden("log_graph_oneline.txt", r.out)
    assert "(alt)" in r.out and "(main)" in r.out and "(other)" in r.out


def test_log_first_parent_skips_abandoned_blocks(sessctl: Run) -> None:
    r = sessctl("log", "--oneline", "main")
    assert r.code == 0, r.err
    assert "2 + 2 = 4" in r.out
    assert "2 + 2 = 5" not in r.out  # rewound away: not on the session's chain
    assert "a different answer" not in r.out  # merged in, but not first parent
    assert r.out.splitlines()[-1].endswith("main#1 created session Main")


def test_log_limit_reads_only_n(sessctl: Run) -> None:
    r = sessctl("log", "-n", "2", "--oneline", "main")
    assert r.code == 0, r.err
    assert len(r.out.splitlines()) == 2
    assert sessctl("log", "-n", "0", "main").out == ""


def test_log_json_carries_the_human_facts(sessctl: Run, heads: dict[str, str]) -> None:
    human = sessctl("log", "--oneline", "--all").out.splitlines()
    data = sessctl("log", "--all", "--json").json()
    assert [line.split()[0] for line in human] == [e["id"][:12] for e in data]
    for line, e in zip(human, data, strict=True):
        assert f"{e['session_id']}#{e['sequence']}" in line
        assert line.endswith(e["summary"])
    by_id = {e["id"]: e for e in data}
    assert by_id[heads["main"]]["refs"] == ["main"]
    assert by_id[heads["main"]]["type"] == "merge"
    assert by_id[heads["main"]]["parents"][1] == heads["alt"]
    # the global --json works as well as the verb's
    assert sessctl("--json", "log", "--all").json() == data


def test_log_graph_json_is_the_dag(sessctl: Run) -> None:
    data = sessctl("log", "--graph", "main", "--json").json()
    kinds = [e["type"] for e in data]
    assert kinds.count("merge") == 1 and kinds.count("rewind") == 1 and kinds.count("fork") == 1
    text = sessctl("log", "--graph", "main").out
    assert re.findall(r"block ([0-9a-f]{64})", text) == [e["id"] for e in data]


def test_log_rejects_session_and_all(sessctl: Run) -> None:
    assert_one_line_error(sessctl("log", "main", "--all"), 2)


def test_log_missing_session_is_not_found(sessctl: Run) -> None:
    assert_one_line_error(sessctl("log", "nope"), 3)


def test_reflog(sessctl: Run, heads: dict[str, str]) -> None:
    r = sessctl("reflog", "main")
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert lines[0].startswith(heads["main"][:12] + " main@{0}: merge")
    assert any("rewind to 6" in line for line in lines)
    assert lines[-1].split()[1] == f"main@{{{len(lines) - 1}}}:"
    data = sessctl("reflog", "main", "--json").json()
    assert len(data) == len(lines)
    assert data[0]["new"] == heads["main"] and data[-1]["old"] is None
    assert data[-1]["reason"] == "create"
    assert_one_line_error(sessctl("reflog", "nope"), 3)
