"""SIGKILL a writer at random moments; every acknowledged write must survive intact.

The child (tests/helpers/crash_writer.py) prints each id only after the call that stored it
returned. A kill lands anywhere: inside a journal append, a loose write, a pack write, a ref
update, a repack. In the ``journal`` variant the child's journal is sealed every few records
(this module runs as that child), so kills also land inside seals.
After every kill a fresh store must read every acknowledged object (and verify it), the ref
must hold the last acknowledged value or the one in flight, and the reflog must read and
chain. Leftovers of interrupted writes must not get in the way.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from amplifier_session_storage.core.codec import unframe
from amplifier_session_storage.core.ids import ObjectId
from amplifier_session_storage.stores.local import LocalObjectStore, LocalRefStore

HELPER = Path(__file__).parent / "helpers" / "crash_writer.py"
REF = "sessions/crash"
# variant: (child command, kills, time budget in seconds)
VARIANTS = {
    "default": ([str(HELPER)], 30, 50.0),
    "journal": ([str(Path(__file__)), "journal-child"], 20, 30.0),
}


class Child:
    """The writer process and a thread collecting its complete stdout lines."""

    def __init__(self, command: list[str], root: Path, seed: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, *command, str(root), str(seed)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.lines: list[str] = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            if raw.endswith(b"\n"):  # a line cut by the kill was never acknowledged
                self.lines.append(raw.decode().rstrip("\n"))

    def wait_ready(self, timeout: float = 20) -> None:
        end = time.monotonic() + timeout
        while "ready" not in self.lines:
            if self.proc.poll() is not None or time.monotonic() > end:
                assert self.proc.stderr is not None
                raise AssertionError(f"writer failed to start: {self.proc.stderr.read()!r}")
            time.sleep(0.005)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self.thread.join()
        assert self.proc.stderr is not None
        err = self.proc.stderr.read()
        self.proc.stderr.close()
        assert self.proc.returncode == -9, err  # killed by us, not crashed by itself


def _leftovers(root: Path) -> int:
    pack_dir = root / "objects" / "pack"
    names = set(os.listdir(pack_dir)) if pack_dir.exists() else set()
    torn = [n for n in names if n.startswith("tmp-")]
    torn += [
        n
        for n in names
        if n.startswith("pack-") and n.endswith(".pack") and n[:-5] + ".idx" not in names
    ]
    for fan in (root / "objects").glob("??"):
        torn += [n.name for n in fan.iterdir() if n.name.startswith("tmp-")]
    locks = list((root / "refs").rglob("*.lock")) if (root / "refs").exists() else []
    return len(torn) + len(locks)


@pytest.mark.slow
@pytest.mark.parametrize("variant", sorted(VARIANTS))
async def test_sigkill_loop(tmp_path: Path, variant: str) -> None:
    command, max_kills, budget = VARIANTS[variant]
    root = tmp_path / "repo"
    seed = int(os.environ.get("CRASH_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    print(f"CRASH_SEED={seed}")
    acked: set[str] = set()
    ref_acked: str | None = None  # the last value the writer was told was stored
    ref_moves: list[str] = []
    leftovers_seen = 0
    start = time.monotonic()
    kills = 0
    while kills < max_kills and time.monotonic() - start < budget:
        child = Child(command, root, rng.randrange(1 << 30))
        child.wait_ready()
        time.sleep(rng.uniform(0.0, 0.35))
        child.kill()
        kills += 1

        in_flight: str | None = None
        for line in child.lines:
            kind, _, hex_ = line.partition(" ")
            if kind == "O":
                acked.add(hex_)
            elif kind == "T":
                in_flight = hex_
            elif kind == "R":
                ref_acked, in_flight = hex_, None
                ref_moves.append(hex_)

        leftovers_seen += _leftovers(root)
        objects = LocalObjectStore(root)
        refs = LocalRefStore(root)
        # every acknowledged object reads back and verifies
        for hex_ in acked:
            oid = ObjectId.from_hex(hex_)
            data = await objects.get(oid)
            assert data is not None, f"kill {kills}: acknowledged object {hex_} lost"
            unframe(oid, data)
        listed = {o.hex() async for o in objects.list()}
        assert acked <= listed
        # the ref holds the last acknowledged value, or the update that was in flight
        head = await refs.get(REF)
        allowed = {ref_acked, in_flight} - {None} if in_flight else {ref_acked}
        assert (head.hex() if head else None) in allowed, f"kill {kills}: ref at {head}"
        if head is not None:
            unframe(head, await objects.get(head) or b"")
            ref_acked = head.hex()  # an in-flight move that did land is now the truth
        # the reflog reads, chains, and holds every acknowledged move
        log = await refs.reflog(REF)
        for prev, entry in itertools.pairwise(log):
            assert entry.old == prev.new, f"kill {kills}: reflog chain broken"
        if log and log[-1].new != head:
            assert log[-1].old == head  # logged, killed before the rename: repaired next time
        logged = {e.new.hex() for e in log if e.new is not None}
        assert set(ref_moves) <= logged
        await objects.close()
        await refs.close()
        if kills % 5 == 0:
            cleaner = LocalObjectStore(root)
            await cleaner.cleanup_incomplete(min_age=0)
            await cleaner.close()

    assert kills >= max_kills // 2, f"only {kills} kills in {budget}s"
    journals = [
        int(n[8:].split(".")[0])
        for n in os.listdir(root / "objects" / "pack")
        if n.startswith("journal-")
    ]
    print(
        f"{variant}: {kills} kills, {len(acked)} objects, {len(ref_moves)} ref moves "
        f"acknowledged, {leftovers_seen} torn leftovers met, "
        f"journal number reached {max(journals, default=0)}"
    )
    assert acked and ref_moves


def _journal_child(root: Path, seed: int) -> None:
    """crash_writer.py with a journal sealed every 40 records or 512 KiB."""
    sys.path.insert(0, str(HELPER.parent))
    import crash_writer  # type: ignore[import-not-found]

    crash_writer.LocalObjectStore = functools.partial(
        LocalObjectStore, journal_seal_records=40, journal_seal_bytes=512 * 1024
    )
    asyncio.run(crash_writer.main(root, seed))


if __name__ == "__main__" and len(sys.argv) > 3 and sys.argv[1] == "journal-child":
    _journal_child(Path(sys.argv[2]), int(sys.argv[3]))
