"""Child process of tests/test_local_concurrency.py: CAS-append to one ref, retrying.

Usage: ``python cas_appender.py ROOT WORKER COUNT``. Waits for ``ROOT/go`` so that all
workers start together. Each append moves ``sessions/shared``
from its current value to ``ObjectId.of(b"WORKER:i")``; a lost race (``False``) re-reads and
retries. Prints ``A <hex>`` after every acknowledged move and ``L`` after every lost race.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from amplifier_session_storage.core.ids import ObjectId
from amplifier_session_storage.stores.local import LocalRefStore

REF = "sessions/shared"


async def main(root: Path, worker: int, count: int) -> None:
    refs = LocalRefStore(root, lock_timeout=30)
    while not (root / "go").exists():
        await asyncio.sleep(0.001)
    for i in range(count):
        new = ObjectId.of(b"%d:%d" % (worker, i))
        while True:
            cur = await refs.get(REF)
            if await refs.set_if_equals(REF, cur, new, f"worker {worker} append {i}"):
                break
            sys.stdout.write("L\n")
        sys.stdout.write(f"A {new.hex()}\n")
        sys.stdout.flush()
    await refs.close()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])))
