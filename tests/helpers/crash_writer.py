"""Child process of tests/test_local_crash.py: write forever, acknowledge on stdout.

Usage: ``python crash_writer.py ROOT SEED``. Loops over single puts followed by a ref CAS,
``put_many`` batches and the occasional repack. Protocol on stdout (one line each, flushed
only after the call returned, i.e. once the write is durable):

    ready                 the stores are open
    O <hex>               object <hex> is durably stored
    T <hex>               about to move the ref to <hex> (intent; may or may not happen)
    R <hex>               the ref now durably points at <hex>
"""

from __future__ import annotations

import asyncio
import random
import sys
from pathlib import Path

from amplifier_session_storage.core.codec import frame
from amplifier_session_storage.core.ids import ObjectId
from amplifier_session_storage.stores.local import LocalObjectStore, LocalRefStore

REF = "sessions/crash"


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def make(rng: random.Random) -> tuple[ObjectId, bytes]:
    size = rng.choice([50, 300, 1000, 4000, 20_000, 300_000])
    canonical = rng.randbytes(size // 2) + bytes(size - size // 2)  # half random, half zeros
    return ObjectId.of(canonical), frame(canonical)


async def main(root: Path, seed: int) -> None:
    rng = random.Random(seed)
    objects = LocalObjectStore(root)
    refs = LocalRefStore(root, lock_timeout=20, stale_lock_after=0.2)
    say("ready")
    step = 0
    while True:
        step += 1
        kind = rng.random()
        if kind < 0.6:
            oid, data = make(rng)
            await objects.put(oid, data)
            say(f"O {oid.hex()}")
            cur = await refs.get(REF)
            say(f"T {oid.hex()}")
            if await refs.set_if_equals(REF, cur, oid, f"append {seed}:{step}\nline two"):
                say(f"R {oid.hex()}")
        elif kind < 0.95:
            batch = [make(rng) for _ in range(rng.randint(2, 40))]
            await objects.put_many(batch)
            for oid, _ in batch:
                say(f"O {oid.hex()}")
        else:
            await objects.repack()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2])))
