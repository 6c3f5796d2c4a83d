"""RefStore.expire_reflog on the memory and local stores: the same contract."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from amplifier_session_storage.core.ids import ObjectId
from amplifier_session_storage.errors import InvalidInputError
from amplifier_session_storage.stores.base import RefStore
from amplifier_session_storage.stores.local_refs import LocalRefStore
from amplifier_session_storage.stores.memory import MemoryRefStore


def oid(n: int) -> ObjectId:
    return ObjectId.of(b"%d" % n)


@pytest.fixture(params=["memory", "local"])
def refs(request: pytest.FixtureRequest, tmp_path: Path) -> RefStore:
    return MemoryRefStore() if request.param == "memory" else LocalRefStore(tmp_path, fsync=False)


async def test_expire_keeps_recent_entries_and_a_live_refs_current_move(refs: RefStore) -> None:
    for i in range(3):
        assert await refs.set_if_equals("sessions/a", oid(i - 1) if i else None, oid(i), f"m{i}")
        assert await refs.set_if_equals("sessions/gone", oid(i - 1) if i else None, oid(i))
    assert await refs.set_if_equals("sessions/gone", oid(2), None, "deleted")
    cut = time.time_ns()
    assert await refs.set_if_equals("sessions/b", None, oid(9), "after the cut")
    assert await refs.expire_reflog("sessions/b", cut) == 0  # nothing older
    assert await refs.expire_reflog("sessions/a", cut) == 2
    assert [e.reason for e in await refs.reflog("sessions/a")] == ["m2"]  # its current value
    assert await refs.get("sessions/a") == oid(2)
    assert await refs.expire_reflog("sessions/gone", cut) == 4  # deleted: all of it
    assert await refs.reflog("sessions/gone") == []
    assert "sessions/gone" not in await refs.logged_refs()  # no longer a gc root
    # updates go on as before, the chain continuing from the kept entry
    assert await refs.set_if_equals("sessions/a", oid(2), oid(3), "m3")
    log = await refs.reflog("sessions/a")
    assert [(e.old, e.new) for e in log] == [(oid(1), oid(2)), (oid(2), oid(3))]
    await refs.close()


async def test_expire_refuses_bad_names(refs: RefStore) -> None:
    with pytest.raises(InvalidInputError):
        await refs.expire_reflog("sessions/../x", time.time_ns())
    await refs.close()
