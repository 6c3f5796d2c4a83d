"""gc never deletes what a concurrent writer is about to name (stores.guard), and never
deletes anything when part of what refs reach cannot be read."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from amplifier_session_storage.core.codec import frame
from amplifier_session_storage.core.ids import ObjectId
from amplifier_session_storage.core.objects import BlockType, encode_chunk
from amplifier_session_storage.errors import ConflictError, IntegrityError
from amplifier_session_storage.repository import Repository
from amplifier_session_storage.repository.local import open_local
from amplifier_session_storage.repository.maintenance import fsck, gc
from amplifier_session_storage.stores.guard import SweepLock
from amplifier_session_storage.stores.local import LocalObjectStore


async def orphan_chunk(repo: Repository, text: bytes) -> ObjectId:
    """A chunk stored but named by nothing: what gc deletes once its grace is over."""
    oid, canonical = encode_chunk(text)
    await repo.objects.put(oid, frame(canonical))
    return oid


async def race(root: Path, guarded: bool) -> tuple[bool, bool]:
    """A writer finds an orphan chunk present and links it from a new block; gc (grace 0,
    another handle) starts its sweep between the writer's check and its ref move.
    Returns (chunk still present, fsck clean)."""
    writer = await open_local(root, user_id="u")
    sweeper = await open_local(root, user_id="u")
    await writer.create_session("s-1")
    x = await orphan_chunk(writer, b"an old tool output " * 40)
    if not guarded:  # what happened before the guard existed

        @contextlib.asynccontextmanager
        async def nothing(*_: object, **__: object) -> AsyncIterator[None]:
            yield

        for r in (writer, sweeper):
            r.objects.write_guard = nothing  # type: ignore[method-assign]
            r.objects.sweep_guard = nothing  # type: ignore[method-assign]
    checked = asyncio.Event()
    swept = asyncio.Event()

    async def write() -> None:
        async with writer.writing():
            assert await writer.objects.has(x)  # present: no need to store it again
            checked.set()
            if guarded:  # gc cannot finish before this block ends: give it time to try
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(swept.wait(), 0.5)
                assert not swept.is_set()
            else:  # nothing stops it: it sweeps in between
                await swept.wait()
            await writer.append_many("s-1", [(BlockType.EVENT, {"uses": "x"}, None, (x,))])

    async def sweep() -> None:
        await checked.wait()
        await gc(sweeper, grace_seconds=0)
        swept.set()

    await asyncio.gather(write(), sweep())
    present = await writer.objects.has(x)
    clean = (await fsck(writer)).ok
    await writer.close()
    await sweeper.close()
    return present, clean


async def test_gc_waits_for_a_writer_between_check_and_ref_move(tmp_path: Path) -> None:
    assert await race(tmp_path / "guarded", guarded=True) == (True, True)


async def test_without_the_guard_the_race_loses_the_chunk(tmp_path: Path) -> None:
    """The control: the same interleaving without the guard deletes the chunk the new
    block names (so the test above is testing something)."""
    assert await race(tmp_path / "unguarded", guarded=False) == (False, False)


async def test_gc_in_another_process_waits_for_the_writer(tmp_path: Path) -> None:
    """flock is per open file: a gc process blocks while this process holds the guard."""
    root = tmp_path / "repo"
    repo = await open_local(root, user_id="u")
    await repo.create_session("s-1")
    x = await orphan_chunk(repo, b"shared system prompt " * 40)
    script = textwrap.dedent(
        f"""
        import asyncio, sys
        from amplifier_session_storage.repository.local import open_local
        from amplifier_session_storage.repository.maintenance import gc
        async def main():
            r = await open_local({str(root)!r}, user_id="u", create=False)
            print("start", flush=True)
            rep = await gc(r, grace_seconds=0)
            print("deleted", rep.deleted, flush=True)
            await r.close()
        asyncio.run(main())
        """
    )
    async with repo.writing():
        assert await repo.objects.has(x)
        proc = subprocess.Popen(
            [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=os.environ
        )
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "start"
        await asyncio.sleep(0.5)
        assert proc.poll() is None  # still waiting for the guard
        await repo.append_many("s-1", [(BlockType.EVENT, {"uses": "x"}, None, (x,))])
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert out.strip() == "deleted 0"
    assert await repo.objects.has(x)
    assert (await fsck(repo)).ok
    await repo.close()


async def test_sweep_lock_modes(tmp_path: Path) -> None:
    fd = os.open(tmp_path, os.O_RDONLY)
    a, b = SweepLock(fd), SweepLock(fd)
    try:
        async with a.shared(), a.shared(), b.shared():  # shared holds coexist and nest
            with pytest.raises(ConflictError):
                async with b.exclusive(timeout=0.05):
                    pass
            with pytest.raises(ConflictError, match="writing"):
                async with a.exclusive():
                    pass
        async with b.exclusive(timeout=1):  # all released: the sweep goes ahead
            with pytest.raises(ConflictError):
                async with a.exclusive(timeout=0.05):
                    pass
            with pytest.raises(ConflictError, match="sweeping"):
                async with b.shared():
                    pass
            waiting = asyncio.create_task(_enter_shared(a))
            await asyncio.sleep(0.05)
            assert not waiting.done()  # a writer waits for the sweep
        await asyncio.wait_for(waiting, 5)
    finally:
        a.close()
        b.close()
        os.close(fd)


async def _enter_shared(lock: SweepLock) -> None:
    async with lock.shared():
        pass


async def test_gc_deletes_nothing_when_a_reachable_block_is_unreadable(tmp_path: Path) -> None:
    repo = await open_local(tmp_path, user_id="u", fsync=False)
    await repo.create_session("s-1")
    first = await repo.append("s-1", BlockType.MESSAGE, {"role": "user", "content": "hi"})
    await repo.append("s-1", BlockType.MESSAGE, {"role": "assistant", "content": "hello"})
    orphan = await orphan_chunk(repo, b"nobody names this " * 30)
    store = repo.objects
    assert isinstance(store, LocalObjectStore)
    store.raw_corrupt(first.id, 20)
    await repo.close()
    repo = await open_local(tmp_path, user_id="u", fsync=False)  # no cached blocks
    with pytest.raises(IntegrityError, match="nothing was deleted"):
        await gc(repo, grace_seconds=0)
    assert await repo.objects.has(orphan)  # its parents are unknown: gc did not guess
    await repo.close()


async def test_a_writer_sees_what_a_sweep_in_another_handle_deleted(tmp_path: Path) -> None:
    """A handle that stored a chunk (so believes it present) and then, after another
    handle's sweep deleted it, stores it again before naming it: the store must really
    write it again, not skip it as "already stored" (the sweep generation in gc.lock)."""
    writer = await open_local(tmp_path, user_id="u", fsync=False)
    sweeper = await open_local(tmp_path, user_id="u", fsync=False)
    await writer.create_session("s-1")
    for packed in (False, True):  # a journal record, then a packed copy
        oid, canonical = encode_chunk(b"stored ahead %d " % packed * 40)
        if packed:
            await writer.objects.put_many([(oid, frame(canonical)), (oid, frame(canonical))])
        else:
            await writer.objects.put(oid, frame(canonical))
        assert await writer.objects.has(oid)
        report = await gc(sweeper, grace_seconds=0)
        assert oid.hex() in report.deleted_ids
        async with writer.writing():
            await writer.objects.put(oid, frame(canonical))
            await writer.append_many("s-1", [(BlockType.EVENT, {}, None, (oid,))])
        assert await sweeper.objects.has(oid)
        assert (await fsck(sweeper)).ok
    await writer.close()
    await sweeper.close()
