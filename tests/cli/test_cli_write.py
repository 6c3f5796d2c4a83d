"""sessctl init, fork, rewind, fsck, gc and demo against a real store."""

from __future__ import annotations

import asyncio
from pathlib import Path

from cli_support import Run, assert_one_line_error, run_sessctl

from amplifier_session_storage import BlockType
from amplifier_session_storage.core.objects import Block
from amplifier_session_storage.repository.local import open_local


def test_init_creates_then_reuses(tmp_path: Path) -> None:
    root = tmp_path / "new"
    r = run_sessctl(root, "init")
    assert r.code == 0, r.err
    assert r.out.startswith("Initialized empty session repository in")
    assert (root / "config.json").exists()
    again = run_sessctl(root, "init", "--json").json()
    assert again["created"] is False and again["format"].startswith("amplifier-session-storage")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "something.txt").write_text("not a repository")
    assert_one_line_error(run_sessctl(tmp_path / "busy", "init"), 2)


def test_fork_at_sequence_turn_and_name(sessctl: Run) -> None:
    r = sessctl("fork", "main", "--at", "3", "--id", "f1", "--name", "First fork")
    assert r.code == 0, r.err
    assert r.out.strip() == "f1"
    info = sessctl("show", "f1", "--json").json()
    assert info["metadata"]["name"] == "First fork" and info["messages"] == 2
    data = sessctl("fork", "main", "--turn", "2", "--id", "f2", "--json").json()
    assert data["session_id"] == "f2" and data["at_sequence"] == 6
    assert sessctl("show", "main@6", "--json").json()["id"] == data["at"]
    new = sessctl("fork", "other", "--json").json()["session_id"]
    assert len(new) == 36  # a UUID
    assert sessctl("log", "--oneline", "-n", "1", new).out.split()[3] == "FORK"


def test_fork_conflict_and_bad_args(sessctl: Run) -> None:
    assert_one_line_error(sessctl("fork", "main", "--id", "alt"), 4)  # exists: nothing written
    assert_one_line_error(sessctl("fork", "main", "--at", "3", "--turn", "1"), 2)
    assert_one_line_error(sessctl("fork", "main", "--turn", "9"), 3)
    assert_one_line_error(sessctl("fork", "nope"), 3)
    assert_one_line_error(sessctl("fork", "main", "--id", "bad/id"), 2)


def test_rewind_to_sequence_and_turn(sessctl: Run, heads: dict[str, str]) -> None:
    r = sessctl("rewind", "main", "--to", "5", "--reason", "try again")
    assert r.code == 0, r.err
    assert "stays reachable" in r.err
    top = sessctl("log", "-n", "2", "--json", "main").json()
    assert top[0]["type"] == "rewind" and top[0]["parents"] == [top[1]["id"], heads["main"]]
    assert top[1]["sequence"] == 5
    data = sessctl("rewind", "main", "--turn", "1", "--json").json()
    assert data["target_sequence"] == 3
    assert sessctl("show", "main", "--json").json()["messages"] == 2
    assert_one_line_error(sessctl("rewind", "main"), 2)
    assert_one_line_error(sessctl("rewind", "main", "--to", "99"), 3)
    assert_one_line_error(sessctl("rewind", "nope", "--to", "1"), 3)


def test_fsck_clean_then_corrupt(sessctl: Run, store: Path, heads: dict[str, str]) -> None:
    r = sessctl("fsck")
    assert r.code == 0, r.err
    assert r.out.strip().endswith(": ok")
    assert sessctl("fsck", "--json").json()["ok"] is True
    # corrupt the stored bytes of "other"'s head, wherever the store keeps them
    h = heads["other"]

    async def corrupt() -> None:
        from amplifier_session_storage.core.ids import ObjectId
        from amplifier_session_storage.stores.local import LocalObjectStore

        objects = LocalObjectStore(store)
        _, _, length = objects.raw_path(ObjectId.from_hex(h))
        objects.raw_corrupt(ObjectId.from_hex(h), length - 1)
        await objects.close()

    asyncio.run(corrupt())
    bad = sessctl("fsck")
    assert bad.code == 5
    assert h in bad.out
    assert bad.err.strip().splitlines()[0].startswith("sessctl: error: fsck found")
    report = sessctl("fsck", "--json")
    assert report.code == 5 and report.json()["ok"] is False
    assert_one_line_error(sessctl("show", "other"), 5)
    assert_one_line_error(sessctl("cat-object", h), 5)


def _orphan(store: Path) -> str:
    async def go() -> str:
        repo = await open_local(store, create=False, fsync=False)
        try:
            b = Block(
                BlockType.MESSAGE,
                "main",
                [],
                1,
                1,
                "dev-1",
                "tester",
                {"role": "user", "content": "orphan"},
            )
            await repo.store_blocks([b])
            return b.block_id
        finally:
            await repo.close()

    return asyncio.run(go())


def test_gc_dry_run_and_grace(sessctl: Run, store: Path) -> None:
    orphan = _orphan(store)
    dry = sessctl("gc", "--dry-run", "--grace", "0", "--json").json()
    assert dry["dry_run"] is True and dry["deleted_ids"] == [orphan]
    assert "would delete 1" in sessctl("gc", "--dry-run", "--grace", "0").out
    kept = sessctl("gc", "--grace", "2w", "--json").json()
    assert kept["deleted"] == 0 and kept["kept_in_grace"] == 1
    gone = sessctl("gc", "--grace", "0")
    assert gone.code == 0, gone.err
    assert "deleted 1" in gone.out
    assert sessctl("fsck").code == 0
    assert_one_line_error(sessctl("cat-object", orphan), 3)
    assert_one_line_error(sessctl("gc", "--grace", "soon"), 2)


def test_demo_writes_and_reads_back(tmp_path: Path) -> None:
    root = tmp_path / "fresh"  # demo creates the store
    r = run_sessctl(root, "demo")
    assert r.code == 0, r.err
    for word in ("FORK", "REWIND", "MERGE", "large:", "$ sessctl show demo-main"):
        assert word in r.out
    assert "Messages: 6" in r.out
    again = run_sessctl(root, "demo", "--json").json()
    assert again["sessions"] == ["demo2-main", "demo2-alt"]  # the default prefix was taken
    assert {e["type"] for e in again["log"]} >= {"fork", "rewind", "merge", "event"}
    assert run_sessctl(root, "fsck").code == 0
    # fixed time: the same shape, and the same ids on a store with the same device
    a = run_sessctl(tmp_path / "a", "demo", "--fixed-time", "1700000000", "--json").json()
    assert a["log"][0]["timestamp_ns"] == 1_700_000_014_000_000_000


def test_gc_expire_reflogs_frees_a_deleted_session(sessctl: Run, store: Path) -> None:
    """A deleted session stays recoverable (its reflog is a gc root) until its reflog
    entries are expired; then gc deletes its blocks and repacks, the rest stays whole."""

    async def delete_and_pack() -> None:
        repo = await open_local(store, create=False)
        try:
            await repo.delete_session("other")
            await repo.objects.repack()  # everything packed: freeing must repack
        finally:
            await repo.close()

    asyncio.run(delete_and_pack())
    pack_dir = store / "objects" / "pack"

    def packed() -> int:
        return sum(p.stat().st_size for p in pack_dir.iterdir())

    kept = sessctl("gc", "--grace", "0", "--json").json()
    assert kept["deleted"] == 0 and kept["expired_entries"] == 0  # the reflog keeps it
    assert sessctl("reflog", "other").code == 0
    size = packed()
    r = sessctl("gc", "--grace", "0", "--expire-reflogs", "0s")
    assert r.code == 0, r.err
    assert "expired 17 reflog entries" in r.out and "repacked" in r.out  # all but heads
    assert "deleted 3," in r.out  # SESSION_CREATED, the message, SESSION_DELETED
    assert packed() < size
    assert sessctl("fsck").code == 0
    assert sessctl("log", "main").code == 0
    assert_one_line_error(sessctl("show", "other"), 3)
