"""Worker for tests/test_local_concurrency.py: writers re-use orphan chunks while gc sweeps.

``writer ROOT W COUNT``: wait for ROOT/go, then COUNT times: store the step's chunk (a
no-op when it is present: the case gc must not break), append an EVENT linking it, print
``A <block hex> <chunk hex>``; then store the next step's chunk ahead, as an orphan that gc
may delete meanwhile.
``gc ROOT``: wait for ROOT/go, then sweep with grace 0 until ROOT/stop exists; print
``D <n>`` per sweep (objects deleted).
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from amplifier_session_storage.core.codec import frame
from amplifier_session_storage.core.objects import BlockType, encode_chunk
from amplifier_session_storage.repository.local import open_local
from amplifier_session_storage.repository.maintenance import gc


def wait_for(path: Path) -> None:
    while not path.exists():
        time.sleep(0.001)


async def writer(root: Path, w: int, count: int) -> None:
    repo = await open_local(root, user_id="u", fsync=False)
    sid = f"writer-{w}"
    await repo.create_session(sid)
    wait_for(root / "go")
    nxt = encode_chunk(b"tool output %d/%d " % (w, 0) * 30)
    await repo.objects.put(nxt[0], frame(nxt[1]))
    for i in range(count):
        cid, canonical = nxt
        async with repo.writing():  # from "already stored" to the ref move
            await repo.objects.put(cid, frame(canonical))
            block = await repo.append_many(
                sid, [(BlockType.EVENT, {"i": i}, None, (cid,))], reason=f"w{w} {i}"
            )
        print("A", block[0].id.hex(), cid.hex(), flush=True)
        nxt = encode_chunk(b"tool output %d/%d " % (w, i + 1) * 30)
        await repo.objects.put(nxt[0], frame(nxt[1]))  # an orphan until the next step
    await repo.close()


async def sweeper(root: Path) -> None:
    repo = await open_local(root, user_id="u", fsync=False, create=False)
    wait_for(root / "go")
    while not (root / "stop").exists():
        report = await gc(repo, grace_seconds=0)
        print("D", report.deleted, flush=True)
    await repo.close()


if __name__ == "__main__":
    kind, root = sys.argv[1], Path(sys.argv[2])
    if kind == "writer":
        asyncio.run(writer(root, int(sys.argv[3]), int(sys.argv[4])))
    else:
        asyncio.run(sweeper(root))
