"""The frame every verb shares: help, exit codes, errors, completion, python -m."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from cli_support import Run, assert_one_line_error, run_sessctl


def test_help_lists_verbs_and_exit_codes() -> None:
    r = run_sessctl(None, "--help")
    assert r.code == 0
    for verb in (
        "init",
        "sessions",
        "log",
        "show",
        "cat-object",
        "fork",
        "rewind",
        "reflog",
        "diff",
        "status",
        "fsck",
        "gc",
        "demo",
        "completion",
    ):
        assert f"  {verb} " in r.out
    for code in (
        "0  ok",
        "1  error",
        "2  usage",
        "3  not found",
        "4  conflict",
        "5  integrity failure",
    ):
        assert code in r.out
    assert run_sessctl(None, "log", "--help").code == 0


def test_bad_arguments_exit_2_with_one_line(sessctl: Run) -> None:
    for args in (
        ["log", "--bogus"],
        ["nosuchverb"],
        ["log", "-n", "many"],
        ["sessions", "--limit", "-1"],
        ["show"],
        ["completion", "tcsh"],
        ["show", "main@"],
        ["show", "main@zz"],
    ):
        r = sessctl(*args)
        assert_one_line_error(r, 2)
        assert r.out == ""


def test_missing_things_exit_3(sessctl: Run, tmp_path: Path) -> None:
    for args in (
        ["show", "nope"],
        ["show", "nope@3"],
        ["show", "main@99"],
        ["log", "ghost"],
        ["show", "abcdef12"],
        ["diff", "ghost", "main"],
    ):
        assert_one_line_error(sessctl(*args), 3)
    assert_one_line_error(run_sessctl(tmp_path / "no-repo-here", "sessions"), 3)


def test_quiet_and_no_colour_off_a_terminal(sessctl: Run) -> None:
    r = sessctl("-q", "status")
    assert r.code == 0 and r.err == ""
    assert "\x1b[" not in sessctl("log", "--graph", "--all").out


def test_repo_from_environment(store: Path) -> None:
    r = run_sessctl(None, "sessions", "--json", env={"AMPLIFIER_LOCAL_STORAGE_PATH": str(store)})
    assert r.code == 0, r.err
    assert len(r.json()) == 3


def test_python_dash_m(store: Path) -> None:
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "amplifier_session_storage.cli",
            "--repo",
            str(store),
            "sessions",
            "--json",
        ],
        capture_output=True,
        check=False,
    )
    assert p.returncode == 0, p.stderr


def test_completion_script_and_session_names(store: Path) -> None:
    r = run_sessctl(None, "completion", "bash")
    assert r.code == 0 and "_SESSCTL_COMPLETE" in r.out
    assert "complete" in run_sessctl(None, "completion", "zsh").out
    assert "complete" in run_sessctl(None, "completion", "fish").out
    words = run_sessctl(
        None,
        "log",
        "",
        env={
            "_SESSCTL_COMPLETE": "bash_complete",
            "COMP_WORDS": f"sessctl --repo {store} log m",
            "COMP_CWORD": "4",
        },
    )
    assert "plain,main" in words.out.splitlines()
