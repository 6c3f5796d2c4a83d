"""Issue 3 targets: `sessctl log -n 20` on a 1,000,000-block session under 0.5 s (it must not
walk the history) and `sessctl sessions` over 10,000 sessions under 1 s.

Run: python benchmarks/bench_cli.py [--blocks 1000000] [--sessions 10000] [--dir DIR] [--keep]
Builds the data through the library (append_many in batches of 10,000, no fsync), then times
the installed `sessctl` as a subprocess (median of 5 after one warm-up). Writes its figures
into docs/benchmarks.md ("## sessctl (issue 3)").
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import write_section

from amplifier_session_storage.core.objects import BlockType
from amplifier_session_storage.repository.local import open_local

MSG = BlockType.MESSAGE
BATCH = 10_000
T0 = 1_700_000_000_000_000_000
BIG = "big-session"
TARGETS = {"log": 0.5, "sessions": 1.0}


def body(i: int) -> dict[str, object]:
    return {
        "role": "user" if i % 2 else "assistant",
        "turn": i // 2 + 1,
        "content": f"message {i}: " + "lorem ipsum dolor sit amet " * (2 + i % 5),
    }


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


async def build(root: Path, blocks: int, sessions: int) -> dict[str, float]:
    repo = await open_local(root, user_id="bench", device_id="bench", fsync=False, create=True)
    took: dict[str, float] = {}
    try:
        t = time.perf_counter()
        await repo.create_session(
            BIG, {"project_slug": "bench", "name": "a long one"}, timestamp_ns=T0
        )
        done = 1
        while done < blocks:
            n = min(BATCH, blocks - done)
            await repo.append_many(BIG, [(MSG, body(done + i), T0 + done + i) for i in range(n)])
            done += n
            if done % 100_000 < BATCH:
                rate = done / (time.perf_counter() - t)
                say(f"  {done:>9,} blocks  ({rate:,.0f}/s)")
        took["blocks"] = time.perf_counter() - t
        t = time.perf_counter()
        for i in range(sessions):
            await repo.create_session(
                f"s-{i:05d}",
                {"project_slug": f"p{i % 20}", "name": f"session {i}"},
                timestamp_ns=T0 + blocks + i,
            )
            if (i + 1) % 2000 == 0:
                say(f"  {i + 1:>9,} sessions")
        took["sessions"] = time.perf_counter() - t
    finally:
        await repo.close()
    return took


def sessctl() -> list[str]:
    exe = shutil.which("sessctl", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-m", "amplifier_session_storage.cli"]


def timed(argv: list[str], runs: int = 5) -> tuple[float, list[float], int]:
    """Median wall time of ``runs`` runs after one warm-up; also the output size."""
    out = subprocess.run(argv, capture_output=True, check=True).stdout  # warm-up
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times), times, len(out.splitlines())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--blocks", type=int, default=1_000_000)
    ap.add_argument("--sessions", type=int, default=10_000)
    ap.add_argument("--dir", type=Path, default=None, help="where the temporary store goes")
    ap.add_argument("--keep", action="store_true", help="keep the store afterwards")
    ap.add_argument("--no-write", action="store_true", help="do not touch docs/benchmarks.md")
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-cli-", dir=args.dir))
    root = base / "store"
    try:
        say(f"building {args.blocks:,} blocks and {args.sessions:,} sessions in {root}")
        took = asyncio.run(build(root, args.blocks, args.sessions))
        say(f"built in {took['blocks']:.1f} s + {took['sessions']:.1f} s")
        cmd = sessctl()
        cases = [
            ("log", [*cmd, "--repo", str(root), "log", "-n", "20", BIG]),
            ("log --oneline", [*cmd, "--repo", str(root), "log", "--oneline", "-n", "20", BIG]),
            ("log --graph", [*cmd, "--repo", str(root), "log", "--graph", "-n", "20", BIG]),
            ("sessions", [*cmd, "--repo", str(root), "sessions"]),
            ("sessions -p", [*cmd, "--repo", str(root), "sessions", "-p", "p7", "-n", "20"]),
            ("--help", [*cmd, "--help"]),
        ]
        rows = []
        results: dict[str, float] = {}
        for name, argv in cases:
            med, times, lines = timed(argv)
            results[name] = med
            shown = " ".join(["sessctl", *argv[len(cmd) :]]).replace(str(root), "$STORE")
            target = TARGETS.get(name)
            verdict = (
                "" if target is None else (f"< {target} s: {'met' if med < target else 'NOT met'}")
            )
            rows.append(
                f"| `{shown}` | {med * 1000:.0f} ms | "
                f"{min(times) * 1000:.0f}-{max(times) * 1000:.0f} ms | {lines} | "
                f"{verdict} |"
            )
            say(f"{shown}: median {med * 1000:.0f} ms ({lines} lines)")
        du = sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
        body_md = (
            f"Store: one session of {args.blocks:,} blocks (MESSAGE, 60-150 byte contents, "
            f"appended with `append_many` in batches of {BATCH:,}) plus {args.sessions:,} "
            f"sessions of one block; {du / 2**20:.0f} MiB on disk. Built through the library "
            f"without fsync in {took['blocks']:.0f} s ({args.blocks / took['blocks']:,.0f} "
            f"blocks/s) and {took['sessions']:.1f} s.\n\n"
            "Each command is the installed `sessctl` run as a subprocess: the median of 5 runs "
            "after one warm-up (a fresh process each: interpreter start and imports included)."
            "\n\n| command | median | range | lines out | target |\n|---|---|---|---|---|\n"
            + "\n".join(rows)
            + "\n\n"
            + (
                "Targets met."
                if all(results[k] < v for k, v in TARGETS.items())
                else "Targets NOT met."
            )
        )
        if args.no_write:
            print(body_md)
        else:
            write_section("sessctl (issue 3)", body_md)
            say("written to docs/benchmarks.md")
    finally:
        if args.keep:
            say(f"kept {root}")
        else:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    os.environ.pop("SESSCTL_DEBUG", None)
    main()
