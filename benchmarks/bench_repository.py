"""Issue 2 targets: append cost, durable and batched append rates, materialization time.

Run: python benchmarks/bench_repository.py [--blocks 100000] [--dir DIR]
Writes its figures into docs/benchmarks.md ("## Repository (issue 2)").
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import write_section

from amplifier_session_storage import BlockWriter, LocalBlockStorage, StorageConfig
from amplifier_session_storage.core.objects import BlockType
from amplifier_session_storage.repository.local import open_local

MSG = BlockType.MESSAGE


def body(i: int) -> dict[str, object]:
    return {
        "role": "user" if i % 2 else "assistant",
        "turn": i // 2,
        "content": f"message {i}: " + "lorem ipsum dolor sit amet " * (4 + i % 7),
    }


async def single_appends(root: Path, sid: str, n: int) -> list[float]:
    repo = await open_local(root, user_id="bench")
    times = []
    for i in range(n):
        t = time.perf_counter()
        await repo.append(sid, MSG, body(i))
        times.append(time.perf_counter() - t)
    await repo.close()
    return times


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--blocks", type=int, default=100_000)
    ap.add_argument("--probe", type=int, default=1_000)
    ap.add_argument("--dir", type=Path, default=None)
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-repo-", dir=args.dir))
    try:
        root = base / "store"
        repo = await open_local(root, user_id="bench")
        await repo.create_session("long")
        await repo.close()

        # 1. per-append cost at 1,000 blocks
        await single_appends(root, "long", args.probe)  # grows the session to ~1,000
        early = await single_appends(root, "long", args.probe)
        # 2. grow to --blocks with batches, then the same probe
        repo = await open_local(root, user_id="bench")
        have = 2 * args.probe + 1
        while have < args.blocks:
            k = min(10_000, args.blocks - have)
            await repo.append_many("long", [(MSG, body(i), None) for i in range(k)])
            have += k
        await repo.close()
        late = await single_appends(root, "long", args.probe)
        early_med, late_med = statistics.median(early), statistics.median(late)
        ratio = late_med / early_med
        durable_rate = len(late) / sum(late)

        # 3. batched appends through the seed API: write_blocks of 1,000 message blocks
        storage = LocalBlockStorage(StorageConfig(user_id="bench", local_path=root))
        w = BlockWriter("batched", "bench", "dev")
        await storage.write_block(w.create_session("bench"))
        rates = []
        for r in range(10):
            blocks = [w.add_message("user", body(i)["content"], r) for i in range(1_000)]
            t = time.perf_counter()
            await storage.write_blocks(blocks)
            rates.append(1_000 / (time.perf_counter() - t))
        await storage.close()
        batch_rate = statistics.median(rates)

        # 4. materialize a 10,000-message session from a cold repository handle
        repo = await open_local(root, user_id="bench")
        await repo.create_session("tenk")
        for start in range(0, 10_000, 1_000):
            await repo.append_many(
                "tenk", [(MSG, body(i), None) for i in range(start, start + 1_000)]
            )
        await repo.close()
        mats = []
        for _ in range(5):
            repo = await open_local(root, user_id="bench")
            t = time.perf_counter()
            state = await repo.materialize("tenk")
            mats.append(time.perf_counter() - t)
            assert len(state.messages) == 10_000
            await repo.close()
        mat = statistics.median(mats)
    finally:
        shutil.rmtree(base, ignore_errors=True)

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT MET"

    rows = [
        (f"median durable append at ~{args.probe:,} blocks", f"{early_med * 1e3:.3f} ms", "", ""),
        (f"median durable append at ~{args.blocks:,} blocks", f"{late_med * 1e3:.3f} ms", "", ""),
        ("ratio (late / early)", f"{ratio:.2f}x", "<= 1.5x", verdict(ratio <= 1.5)),
        ("durable single appends (fsync'd, one at a time)", f"{durable_rate:,.0f} blocks/s",
         ">= 1,000/s", verdict(durable_rate >= 1000)),
        ("write_blocks of 1,000 message blocks (median of 10)", f"{batch_rate:,.0f} blocks/s",
         ">= 30,000/s", verdict(batch_rate >= 30_000)),
        ("materialize a 10,000-message session, cold handle (median of 5)",
         f"{mat * 1e3:.1f} ms", "< 200 ms", verdict(mat < 0.2)),
    ]
    table = "| figure | measured | target | |\n|---|---|---|---|\n" + "\n".join(
        f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows
    )
    print(table)
    write_section("Repository (issue 2)", table)


if __name__ == "__main__":
    asyncio.run(main())
