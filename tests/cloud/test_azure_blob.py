"""BlobObjectStore specifics on azurite: pack layout, range reads, index refresh, tombstones."""

from __future__ import annotations

import os

import pytest
from azure_support import AzureResources

from amplifier_session_storage.core.codec import unframe
from amplifier_session_storage.errors import CorruptObjectError, InvalidInputError
from amplifier_session_storage.stores.blob import BlobObjectStore, build_pack, parse_idx
from amplifier_session_storage.stores.pack import PackReader, PackWriter, open_dir
from conformance.object_store_suite import make_object

pytestmark = pytest.mark.emulators


async def _names(store: BlobObjectStore, azure: AzureResources) -> list[str]:
    ctr = store._container
    return sorted([b.name async for b in ctr.list_blobs()])


# ---------------------------------------------------------------------- format (no network)
def test_pack_is_the_local_pack_format(tmp_path: os.PathLike[str]) -> None:
    objs = [make_object(200 + i) for i in range(20)]
    pack, idx, info = build_pack(objs)
    # the local writer produces the same bytes and the same name for the same frames
    dfd = open_dir(tmp_path, create=True)  # type: ignore[arg-type]
    try:
        writer = PackWriter(dfd, fsync=False)
        for oid, data in objs:
            writer.add(oid, data)
        local = writer.finish()
        assert local.name == info.name
        with open(os.path.join(tmp_path, f"pack-{info.name}.pack"), "rb") as f:
            assert f.read() == pack
        with open(os.path.join(tmp_path, f"pack-{info.name}.idx"), "rb") as f:
            assert f.read() == idx
        reader = PackReader(dfd, info.name)
        assert reader.load()
        for oid, data in objs:
            assert reader.read(reader.find(oid)) == data
        reader.close()
    finally:
        os.close(dfd)
    entries = parse_idx(idx, info.name)
    assert entries == info.entries
    for oid, data in objs:
        off, n = entries[oid]
        assert pack[off : off + n] == data
    assert info.size == len(pack)


def test_parse_idx_refuses_damage() -> None:
    _, idx, info = build_pack([make_object()])
    with pytest.raises(CorruptObjectError):
        parse_idx(idx[:-1], info.name)
    bad = bytearray(idx)
    bad[1100] ^= 1
    with pytest.raises(CorruptObjectError):
        parse_idx(bytes(bad), info.name)
    with pytest.raises(CorruptObjectError):
        parse_idx(idx, "0" * 64)  # an idx of another pack


def test_duplicate_frames_are_packed_once() -> None:
    obj = make_object()
    _, _, info = build_pack([obj, obj, obj])
    assert list(info.entries) == [obj[0]]


# ---------------------------------------------------------------------- on azurite
async def test_put_many_writes_one_content_addressed_pack(azure: AzureResources) -> None:
    store = await azure.blob_store(prefix="users/alice/")
    objs = [make_object(300 + i) for i in range(50)]
    await store.put_many(objs)
    names = await _names(store, azure)
    _, _, info = build_pack(objs)
    assert names == [f"users/alice/packs/{info.name}.idx", f"users/alice/packs/{info.name}.pack"]
    # uploading the same pack again is success, not an error, and writes nothing new
    again = await store.upload_pack(objs)
    assert again.name == info.name and again.entries == info.entries
    assert await _names(store, azure) == names


async def test_get_is_one_range_read(azure: AzureResources) -> None:
    store = await azure.blob_store()
    objs = [make_object(1000 + i) for i in range(30)]
    await store.put_many(objs)
    before = store.stats()["downloads"]
    for oid, data in objs[::7]:
        assert await store.get(oid) == data
    assert store.stats()["downloads"] - before == len(objs[::7])


async def test_read_range_and_coalesced_read_ranges(azure: AzureResources) -> None:
    store = await azure.blob_store()
    objs = [make_object(2000 + i) for i in range(40)]
    info = await store.upload_pack(objs)
    pack, _, _ = build_pack(objs)
    oid, data = objs[17]
    off, n = info.entries[oid]
    assert await store.read_range(info.name, off, n) == data
    assert await store.read_range(info.name, 0, 8) == pack[:8]
    assert await store.read_range(info.name, off, 0) == b""
    # many nearby ranges: few downloads, results in the caller's order
    ranges = [info.entries[o] for o, _ in reversed(objs)]
    before = store.stats()["downloads"]
    got = await store.read_ranges(info.name, ranges)
    assert got == [d for _, d in reversed(objs)]
    assert store.stats()["downloads"] - before == 1
    # far-apart ranges are not merged into one huge download
    store._gap = 0
    store._max_span = 5000
    before = store.stats()["downloads"]
    got = await store.read_ranges(info.name, ranges[:6])
    assert got == [d for _, d in reversed(objs)][:6]
    assert 1 < store.stats()["downloads"] - before <= 6
    for frame_ in got:
        assert frame_
    with pytest.raises(CorruptObjectError):
        await store.read_range(info.name, len(pack) - 4, 100)  # past the end
    with pytest.raises(InvalidInputError):
        await store.read_range("../etc", 0, 1)


async def test_another_client_sees_new_packs_and_tombstones(azure: AzureResources) -> None:
    config = azure.config()
    a = await azure.blob_store(container=config.blob_container)
    b = await azure.blob_store(container=config.blob_container)
    first = [make_object() for _ in range(3)]
    await a.put_many(first)
    assert await b.get(first[0][0]) == first[0][1]  # b loads lazily
    later = make_object()
    await a.put(*later)
    assert await b.get(later[0]) == later[1]  # a miss refreshes b's index
    assert await b.delete(first[1][0])
    c = await azure.blob_store(container=config.blob_container)
    assert not await c.has(first[1][0])
    assert await c.has_many([o for o, _ in first]) == {first[0][0], first[2][0]}
    # a stored again after the delete
    await c.put(*first[1])
    d = await azure.blob_store(container=config.blob_container)
    assert await d.get(first[1][0]) == first[1][1]


async def test_prefixes_isolate_tenants(azure: AzureResources) -> None:
    config = azure.config()
    alice = await azure.blob_store("users/alice/", container=config.blob_container)
    bob = await azure.blob_store("users/bob/", container=config.blob_container)
    obj = make_object()
    await alice.put(*obj)
    assert await bob.get(obj[0]) is None
    assert [o async for o in bob.list()] == []
    with pytest.raises(InvalidInputError):
        BlobObjectStore(alice._container, prefix="../x/")
    with pytest.raises(InvalidInputError):
        BlobObjectStore(alice._container, prefix="users")


async def test_unreadable_idx_is_ignored_and_repaired(azure: AzureResources) -> None:
    config = azure.config()
    a = await azure.blob_store(container=config.blob_container)
    objs = [make_object() for _ in range(3)]
    info = await a.upload_pack(objs)
    await a.raw_upload(f"packs/{info.name}.idx", b"garbage")
    b = await azure.blob_store(container=config.blob_container)
    assert await b.get(objs[0][0]) is None
    assert b.stats()["unreadable_idx"] == 1
    await b.put_many(objs)  # the same pack: its idx is rewritten
    c = await azure.blob_store(container=config.blob_container)
    for oid, data in objs:
        assert unframe(oid, await c.get(oid) or b"")
        assert await c.get(oid) == data


async def test_record_head_mismatch_is_corrupt(azure: AzureResources) -> None:
    store = await azure.blob_store()
    objs = [make_object() for _ in range(2)]
    info = await store.upload_pack(objs)
    off, n = info.entries[objs[1][0]]
    with pytest.raises(CorruptObjectError):
        await store.read_object(objs[0][0], info.name, off, n)  # the record of another id


async def test_large_put_many_is_split_into_bounded_packs(azure: AzureResources) -> None:
    store = await azure.blob_store()
    store._max_pack_bytes = 64 * 1024
    objs = [make_object(20_000) for _ in range(10)]
    await store.put_many(objs)
    assert store.stats()["packs"] >= 3
    for oid, data in objs:
        assert await store.get(oid) == data
