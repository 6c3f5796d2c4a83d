"""sessctl import / archive / export against real folders and a real store."""

from __future__ import annotations

import filecmp
from pathlib import Path

import pytest
from cli_support import run_sessctl

from helpers.generator import load_generator


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("corpus")
    load_generator().generate(out, sessions=6, target_bytes=6_000_000, seed=7)
    return out


def _session_dirs(root: Path) -> dict[str, Path]:
    return {p.name: p for p in root.glob("projects/*/sessions/*") if p.is_dir()}


def test_import_then_export_all_is_byte_identical(tmp_path: Path, corpus: Path) -> None:
    repo = tmp_path / "store"
    r = run_sessctl(repo, "import", str(corpus), "--json")
    assert r.code == 0, r.err
    summary = r.json()
    assert summary["sessions"] == len(_session_dirs(corpus)) and summary["failed"] == 0
    assert summary["stored_added"] < summary["bytes_in"] / 4  # deduplicated
    again = run_sessctl(repo, "import", str(corpus), "--json").json()
    assert again["skipped"] == summary["sessions"] and again["stored_added"] == 0
    out = tmp_path / "out"
    assert run_sessctl(repo, "export", "--all", "--to", str(out)).code == 0
    src, dst = _session_dirs(corpus), _session_dirs(out)
    assert src.keys() == dst.keys()
    for sid, path in src.items():
        for f in path.iterdir():
            assert filecmp.cmp(f, dst[sid] / f.name, shallow=False), f"{sid}/{f.name}"


def test_archive_verifies_and_reports(tmp_path: Path, corpus: Path) -> None:
    r = run_sessctl(tmp_path / "store", "archive", str(corpus))
    assert r.code == 0, r.err
    n = len(_session_dirs(corpus))
    assert f"{n} verified byte-identical" in r.out
    assert "smaller" in r.out
    assert run_sessctl(tmp_path / "store", "fsck").code == 0


def test_export_one_session_and_errors(tmp_path: Path, corpus: Path) -> None:
    repo = tmp_path / "store"
    assert run_sessctl(repo, "import", str(corpus), "-q").code == 0
    sid = sorted(_session_dirs(corpus))[0]
    r = run_sessctl(repo, "export", sid, "--to", str(tmp_path / "one"))
    assert r.code == 0 and (tmp_path / "one" / sid).is_dir()
    missing = run_sessctl(repo, "export", "no-such-session", "--to", str(tmp_path / "x"))
    assert missing.code == 3 and "Traceback" not in missing.err
    usage = run_sessctl(repo, "export", "--to", str(tmp_path / "x"))
    assert usage.code == 2
    assert run_sessctl(repo, "import", str(tmp_path / "does-not-exist")).code == 2


def test_import_reports_bad_lines_and_keeps_the_rest(tmp_path: Path) -> None:
    sess = tmp_path / "src" / "projects" / "-p" / "sessions" / "abc"
    sess.mkdir(parents=True)
    good = '{"role": "user", "content": "hi"}\n'
    (sess / "transcript.jsonl").write_text(good + "{not json\n" + good)
    r = run_sessctl(tmp_path / "store", "import", str(tmp_path / "src"), "--json")
    assert r.code == 0, r.err
    data = r.json()
    assert data["completed"] == 1
    assert any("transcript.jsonl" in w and ":2" in w for w in data["warnings"]), data["warnings"]
