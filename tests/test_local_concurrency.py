"""Several processes on one local repository at once."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import pytest

from amplifier_session_storage.core.codec import unframe
from amplifier_session_storage.core.ids import ObjectId
from amplifier_session_storage.stores.local import LocalObjectStore, LocalRefStore

HELPERS = Path(__file__).parent / "helpers"


def _run_all(cmds: list[list[str]], go: Path, timeout: float = 120) -> list[list[str]]:
    procs = [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for cmd in cmds
    ]
    go.touch()  # the workers wait for this, so they really run at the same time
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=timeout)
        assert proc.returncode == 0, err
        outputs.append(out.splitlines())
    return outputs


@pytest.mark.slow
async def test_processes_cas_append_to_one_ref(tmp_path: Path) -> None:
    workers, count = 4, 60
    outputs = _run_all(
        [
            [sys.executable, str(HELPERS / "cas_appender.py"), str(tmp_path), str(w), str(count)]
            for w in range(workers)
        ],
        tmp_path / "go",
    )
    lost = sum(line == "L" for out in outputs for line in out)
    acked = [line.split()[1] for out in outputs for line in out if line.startswith("A ")]
    assert len(acked) == len(set(acked)) == workers * count

    refs = LocalRefStore(tmp_path)
    log = await refs.reflog("sessions/shared")
    # every acknowledged update is in the reflog exactly once, and nothing else is
    assert sorted(e.new.hex() for e in log if e.new is not None) == sorted(acked)
    assert len(log) == workers * count
    # the chain is consistent: each move starts where the previous one ended
    assert log[0].old is None
    for prev, entry in itertools.pairwise(log):
        assert entry.old == prev.new
    assert await refs.get("sessions/shared") == log[-1].new
    # each worker's own appends are in its order
    for w in range(workers):
        mine = [e.reason for e in log if e.reason.startswith(f"worker {w} ")]
        assert mine == [f"worker {w} append {i}" for i in range(count)]
    assert not list((tmp_path / "refs").rglob("*.lock"))
    print(f"{workers * count} appends, {lost} lost races retried")
    await refs.close()


@pytest.mark.slow
async def test_processes_share_one_object_store(tmp_path: Path) -> None:
    writer = str(HELPERS / "object_writer.py")
    cmds = [[sys.executable, writer, str(tmp_path), str(w), "15", "write"] for w in range(3)]
    cmds.append([sys.executable, writer, str(tmp_path), "9", "15", "repack"])
    outputs = _run_all(cmds, tmp_path / "go")
    acked = {line.split()[1] for out in outputs for line in out if line.startswith("O ")}
    assert len(acked) == 3 * 15 * 31 + 15 * 5

    store = LocalObjectStore(tmp_path)
    for hex_ in acked:
        oid = ObjectId.from_hex(hex_)
        unframe(oid, await store.get(oid) or b"")
    assert {o.hex() async for o in store.list()} == acked
    assert await store.repack() == len(acked)
    assert {o.hex() async for o in store.list()} == acked
    await store.close()


@pytest.mark.slow
async def test_gc_sweeping_in_a_loop_never_breaks_concurrent_writers(tmp_path: Path) -> None:
    """Writers store each chunk ahead of the block that will name it (an orphan meanwhile,
    which gc deletes when it can) while another process sweeps with grace 0 in a loop:
    every acknowledged block and every chunk it links survive, and fsck is clean."""
    from amplifier_session_storage.repository.local import open_local
    from amplifier_session_storage.repository.maintenance import fsck

    script = str(HELPERS / "gc_race.py")
    await (await open_local(tmp_path, user_id="u")).close()  # one init, before the race
    workers, count = 3, 80
    sweeper = subprocess.Popen(
        [sys.executable, script, "gc", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        outputs = _run_all(
            [
                [sys.executable, script, "writer", str(tmp_path), str(w), str(count)]
                for w in range(workers)
            ],
            tmp_path / "go",
        )
    finally:
        (tmp_path / "stop").touch()
        out, err = sweeper.communicate(timeout=120)
    assert sweeper.returncode == 0, err
    sweeps = [int(line.split()[1]) for line in out.splitlines() if line.startswith("D ")]
    assert len(sweeps) >= 2 and sum(sweeps) >= 1  # gc really ran, and really deleted
    acked = [line.split() for o in outputs for line in o if line.startswith("A ")]
    assert len(acked) == workers * count
    repo = await open_local(tmp_path, user_id="u", create=False)
    for _, block_hex, chunk_hex in acked:
        assert await repo.objects.has(ObjectId.from_hex(block_hex))
        assert await repo.objects.has(ObjectId.from_hex(chunk_hex))
    report = await fsck(repo)
    assert report.ok, report.problems
    for w in range(workers):
        assert len(await repo.history(await repo.require_head(f"writer-{w}"))) == count + 1
    await repo.close()
