"""Fixtures for the sessctl integration tests: a real on-disk store built through the
library with fixed timestamps and device, so block ids (content hashes) are stable."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from amplifier_session_storage import BlockType
from amplifier_session_storage.repository.local import open_local
from amplifier_session_storage.repository.views import turn_end

T0 = 1_700_000_000_000_000_000  # 2023-11-14T22:13:20Z
SEC = 1_000_000_000
GOLDEN = Path(__file__).parent / "golden"


def sessctl_argv() -> list[str]:
    """The installed console script beside this interpreter (else ``python -m``)."""
    exe = shutil.which("sessctl", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-m", "amplifier_session_storage.cli"]


@dataclass
class Result:
    code: int
    out: str
    err: str
    raw: bytes

    def json(self) -> Any:
        return json.loads(self.out)


Run = Callable[..., Result]


def run_sessctl(repo: Path | None, *args: str, env: dict[str, str] | None = None) -> Result:
    argv = sessctl_argv() + (["--repo", str(repo)] if repo is not None else []) + list(args)
    full_env = {k: v for k, v in os.environ.items() if k not in ("SESSCTL_DEBUG", "NO_COLOR")}
    full_env.update(env or {})
    p = subprocess.run(argv, capture_output=True, env=full_env, timeout=120, check=False)
    return Result(
        p.returncode,
        p.stdout.decode("utf-8", "replace"),
        p.stderr.decode("utf-8", "replace"),
        p.stdout,
    )


def msg(role: str, content: str, turn: int) -> dict[str, Any]:
    return {"role": role, "content": content, "turn": turn}


async def build_fixture(root: Path) -> dict[str, str]:
    """main: two turns; alt forked after turn 1 with its own turn; main's bad turn 3 is
    rewound and redone; alt is merged into main; other: a second project."""
    tick = iter(range(1, 1000))

    def ts() -> int:
        return T0 + next(tick) * SEC

    repo = await open_local(root, user_id="tester", device_id="dev-1", fsync=False)
    try:
        m = BlockType.MESSAGE
        await repo.create_session(
            "main", {"project_slug": "proj-a", "name": "Main"}, timestamp_ns=ts()
        )
        for role, text, turn in [
            ("user", "hello", 1),
            ("assistant", "hi there", 1),
            ("user", "tell me about forks", 2),
            ("assistant", "forks share history", 2),
        ]:
            await repo.append("main", m, msg(role, text, turn), timestamp_ns=ts())
        await repo.append(
            "main",
            BlockType.EVENT,
            {"event_id": "e1", "event_type": "tool:result", "data": {"ok": True}, "turn": 2},
            timestamp_ns=ts(),
        )
        await repo.fork(
            "main",
            "alt",
            at=await turn_end(repo, "main", 1),
            metadata={"name": "Alt"},
            timestamp_ns=ts(),
        )
        await repo.append("alt", m, msg("user", "a different question", 2), timestamp_ns=ts())
        await repo.append("alt", m, msg("assistant", "a different answer", 2), timestamp_ns=ts())
        await repo.append("main", m, msg("user", "say something wrong", 3), timestamp_ns=ts())
        await repo.append("main", m, msg("assistant", "2 + 2 = 5", 3), timestamp_ns=ts())
        await repo.rewind("main", await turn_end(repo, "main", 2), "wrong", timestamp_ns=ts())
        await repo.append("main", m, msg("user", "say something right", 3), timestamp_ns=ts())
        await repo.append("main", m, msg("assistant", "2 + 2 = 4", 3), timestamp_ns=ts())
        await repo.merge("main", await repo.require_head("alt"), "take alt", timestamp_ns=ts())
        await repo.create_session(
            "other", {"project_slug": "proj-b", "name": "Other"}, timestamp_ns=ts()
        )
        await repo.append("other", m, msg("user", "unrelated", 1), timestamp_ns=ts())
        return {sid: (await repo.require_head(sid)).hex() for sid in ("main", "alt", "other")}
    finally:
        await repo.close()


@pytest.fixture
def store(tmp_path: Path) -> Path:
    root = tmp_path / "store"
    asyncio.run(build_fixture(root))
    return root


@pytest.fixture
def heads(store: Path) -> dict[str, str]:
    async def read() -> dict[str, str]:
        repo = await open_local(store, create=False)
        try:
            return {s: (await repo.require_head(s)).hex() for s in ("main", "alt", "other")}
        finally:
            await repo.close()

    return asyncio.run(read())


@pytest.fixture
def sessctl(store: Path) -> Run:
    def run(*args: str, env: dict[str, str] | None = None) -> Result:
        return run_sessctl(store, *args, env=env)

    return run


def golden(name: str, actual: str) -> None:
    """Compare with tests/cli/golden/NAME (UPDATE_GOLDEN=1 rewrites it)."""
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(actual)
    assert path.exists(), f"{path} missing: run with UPDATE_GOLDEN=1 once"
    assert actual == path.read_text()


def assert_one_line_error(r: Result, code: int) -> None:
    assert r.code == code, (r.code, r.out, r.err)
    lines = r.err.strip().splitlines()
    assert len(lines) == 1, r.err
    assert lines[0].startswith("sessctl"), r.err
    assert "Traceback" not in r.err
