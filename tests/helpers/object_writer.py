"""Child process of tests/test_local_concurrency.py: many processes, one object store.

Usage: ``python object_writer.py ROOT WORKER ROUNDS MODE``. Waits for ``ROOT/go``. MODE
``write`` stores ROUNDS batches (``put_many``) and single puts, some ids shared with the
other workers, and prints ``O <hex>`` for each acknowledged object; MODE ``repack`` repacks
ROUNDS times meanwhile.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from amplifier_session_storage.core.codec import frame, unframe
from amplifier_session_storage.core.ids import ObjectId
from amplifier_session_storage.stores.local import LocalObjectStore


def make(tag: bytes) -> tuple[ObjectId, bytes]:
    canonical = tag * 40
    return ObjectId.of(canonical), frame(canonical)


async def main(root: Path, worker: int, rounds: int, mode: str) -> None:
    store = LocalObjectStore(root)
    while not (root / "go").exists():
        await asyncio.sleep(0.001)
    for r in range(rounds):
        if mode == "repack":
            await store.repack()
            await asyncio.sleep(0.01)
            continue
        batch = [make(b"w%d r%d i%d " % (worker, r, i)) for i in range(30)]
        batch += [make(b"shared r%d i%d " % (r, i)) for i in range(5)]  # every worker writes these
        await store.put_many(batch)
        single = make(b"w%d r%d single " % (worker, r))
        await store.put(*single)
        for oid, data in (*batch, single):
            got = await store.get(oid)
            # a repack may have moved it into a segment pack: same canonical bytes, raw frame
            assert got is not None and unframe(oid, got) == unframe(oid, data), (
                f"{oid.hex()} unreadable right after put"
            )
            sys.stdout.write(f"O {oid.hex()}\n")
        sys.stdout.flush()
    await store.close()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]))
