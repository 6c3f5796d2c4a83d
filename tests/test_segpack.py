"""Segment packs (stores.segpack): written by repack, read one segment at a time."""

from __future__ import annotations

import os
import random
import struct
from pathlib import Path

import msgpack
import pytest
from blake3 import blake3
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from amplifier_session_storage.core.codec import frame, pack, unframe
from amplifier_session_storage.core.ids import ObjectId
from amplifier_session_storage.errors import CorruptObjectError, IntegrityError
from amplifier_session_storage.stores import segpack
from amplifier_session_storage.stores.local import LocalObjectStore
from amplifier_session_storage.stores.pack import IDS_AT, PackReader
from amplifier_session_storage.stores.segpack import (
    COUNT,
    LOCATION,
    SEGMENT,
    SegmentPackWriter,
    build_seg_idx,
)

WORDS = [b"alpha", b"beta", b"gamma", b"delta", b"tool", b"result", b"message", b"{json}"]


def canonical(i: int, size: int = 900, kind: str = "b") -> bytes:
    rng = random.Random(i)
    text = b" ".join(rng.choice(WORDS) for _ in range(size // 6))[:size]
    return pack([kind, 1, i, text])


def objects(n: int, **kw: int) -> list[tuple[ObjectId, bytes, bytes]]:
    """(id, stored frame, canonical) for ``n`` compressible objects, blocks and chunks."""
    out = []
    for i in range(n):
        c = canonical(i, kind="c" if i % 3 == 0 else "b", **kw)
        out.append((ObjectId.of(c), frame(c), c))
    return out


def pack_files(root: Path) -> list[Path]:
    return sorted((root / "objects" / "pack").iterdir())


def reader_of(store: LocalObjectStore) -> PackReader:
    [p] = store._all_packs()
    assert store._ready(p)
    return p


async def filled(root: Path, n: int = 300, **repack: int) -> tuple[LocalObjectStore, list]:
    store = LocalObjectStore(root, fsync=False)
    objs = objects(n)
    for i in range(0, n, 50):  # several packs, the journal and a loose object
        await store.put_many([(o, f) for o, f, _ in objs[i : i + 40]])
        for o, f, _ in objs[i + 40 : i + 50]:
            await store.put(o, f)
    assert await store.repack(**repack) == n
    return store, objs


async def test_roundtrip_and_layout(tmp_path: Path) -> None:
    store, objs = await filled(tmp_path, segment_bytes=8192)
    files = pack_files(tmp_path)
    assert [f.suffix for f in files] == [".idx", ".pack"]
    data = files[1].read_bytes()
    assert data[:8] == b"ASPK" + struct.pack("<I", 3)
    assert blake3(data[:-32]).hexdigest() == files[1].name[5:-5]
    idx = files[0].read_bytes()
    assert idx[:8] == b"ASIX" + struct.pack("<I", 3)
    (nseg,) = COUNT.unpack_from(idx, len(idx) - 72)
    assert len(idx) == IDS_AT + len(objs) * (32 + LOCATION.size + 4) + nseg * SEGMENT.size + 72
    assert nseg > 10  # ~270 KB of canonical bytes in 8 KiB segments
    assert len(data) < sum(len(c) for _, _, c in objs) / 5  # compressed together
    reader = reader_of(store)
    assert reader.segmented
    kinds = set()
    for pos, _ in reader.ids():  # every segment holds one kind only (grouped)
        seg, off, _length, verbatim = reader._seg.location(pos)  # type: ignore[union-attr]
        raw = reader._seg.segment(reader._fd, seg)  # type: ignore[union-attr]
        assert raw is not None and not verbatim
        kinds.add((seg, raw[off + 2 : off + 3]))
    assert len({s for s, _ in kinds}) == len(kinds) == nseg
    for oid, _, c in reversed(objs):
        got = await store.get(oid)
        assert got is not None and unframe(oid, got) == c
        assert got == frame(c, compress=False)
        assert await store.has(oid)
    assert {o async for o in store.list()} == {o for o, _, _ in objs}
    await store.close()
    fresh = LocalObjectStore(tmp_path)
    for oid, _, c in objs[::7]:
        assert unframe(oid, await fresh.get(oid) or b"") == c
    await fresh.close()


async def test_large_and_incompressible_objects(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path, fsync=False)
    big = pack(["c", 1, os.urandom(300_000)])  # larger than a segment: a segment of its own
    small = objects(20)
    items = [(ObjectId.of(big), frame(big))] + [(o, f) for o, f, _ in small]
    await store.put_many(items)
    assert await store.repack(segment_bytes=4096) == 21
    assert unframe(ObjectId.of(big), await store.get(ObjectId.of(big)) or b"") == big
    for oid, _, c in small:
        assert unframe(oid, await store.get(oid) or b"") == c
    await store.close()


async def test_delete_keep_and_format_changes(tmp_path: Path) -> None:
    store, objs = await filled(tmp_path, n=100)
    gone = objs[5][0]
    assert await store.delete(gone)
    assert await store.get(gone) is None and not await store.has(gone)
    assert any(f.suffix == ".del" for f in pack_files(tmp_path))
    assert await store.repack() == 99  # drops it and the .del
    assert [f.suffix for f in pack_files(tmp_path)] == [".idx", ".pack"]
    name = pack_files(tmp_path)[0].name
    assert await store.repack() == 99  # one segment pack: nothing to do
    assert pack_files(tmp_path)[0].name == name
    assert await store.repack(segmented=False) == 99  # back to a pack of frames
    assert not reader_of(store).segmented
    keep = {o for o, _, _ in objs[:30]}
    assert await store.repack(keep) == 29
    assert reader_of(store).segmented
    assert {o async for o in store.list()} == keep - {gone}
    await store.put(gone, objs[5][1])  # stored again: live
    assert unframe(gone, await store.get(gone) or b"") == objs[5][2]
    await store.close()


async def test_threads_write_the_same_pack(tmp_path: Path) -> None:
    names = []
    for threads in (1, 3):
        store, _ = await filled(tmp_path / str(threads), n=200, segment_bytes=4096, threads=threads)
        names.append(pack_files(tmp_path / str(threads))[1].name)
        await store.close()
    assert names[0] == names[1]


def _segment_of(reader: PackReader, oid: bytes) -> int:
    return reader._seg.location(reader.find(oid))[0]  # type: ignore[union-attr]


@pytest.mark.parametrize("damage", ["flip", "truncate"])
async def test_damaged_segment_fails_only_its_objects(tmp_path: Path, damage: str) -> None:
    store, objs = await filled(tmp_path, segment_bytes=8192)
    reader = reader_of(store)
    victim = objs[150][0]
    seg = _segment_of(reader, victim)
    off, stored, _ = reader._seg.segment_extent(seg)  # type: ignore[union-attr]
    await store.close()
    path = pack_files(tmp_path)[1]
    os.chmod(path, 0o644)
    if damage == "flip":
        with open(path, "r+b") as f:
            f.seek(off + stored // 2)
            byte = f.read(1)
            f.seek(off + stored // 2)
            f.write(bytes([byte[0] ^ 0x01]))
    else:
        os.truncate(path, off + stored // 2)
    store = LocalObjectStore(tmp_path)
    reader = reader_of(store)
    bad = good = 0
    for oid, _, c in objs:
        got = await store.get(oid)
        assert got is not None
        s = _segment_of(reader, oid)
        if s == seg or (damage == "truncate" and reader._seg.segment_extent(s)[0] > off):  # type: ignore[union-attr]
            with pytest.raises(CorruptObjectError):
                unframe(oid, got)
            bad += 1
        else:
            assert unframe(oid, got) == c
            good += 1
    assert bad >= 1 and good >= 1
    assert len({o async for o in store.list()}) == len(objs)
    await store.close()


async def test_damaged_frame_stays_detectable_through_repack(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path, fsync=False, journal=False)
    objs = objects(10)
    await store.put_many([(o, f) for o, f, _ in objs])
    victim, header = objs[3][0], objs[4][0]
    store.raw_corrupt(victim, 30)  # the body: unframes, the id does not match
    store.raw_corrupt(header, 0)  # the header: does not unframe, kept verbatim
    assert await store.repack() == 10
    assert reader_of(store).segmented
    with pytest.raises(IntegrityError):
        unframe(victim, await store.get(victim) or b"")
    with pytest.raises(CorruptObjectError):
        unframe(header, await store.get(header) or b"")
    for oid, _, c in objs[:3] + objs[5:]:
        assert unframe(oid, await store.get(oid) or b"") == c
    assert await store.repack(segmented=False) == 10  # and back: still detected
    with pytest.raises(CorruptObjectError):
        unframe(header, await store.get(header) or b"")
    await store.close()


async def test_hostile_segment_table_is_refused(tmp_path: Path) -> None:
    """An idx with a valid checksum whose segment claims 4 GiB reads as damaged, without
    allocating; an idx with a wrong segment count is refused as a whole."""
    store, objs = await filled(tmp_path, n=50)
    await store.close()
    idx_path, pack_path = pack_files(tmp_path)
    idx = idx_path.read_bytes()
    n = len(objs)
    ord_at = IDS_AT + n * (32 + LOCATION.size)
    seg_at = ord_at + 4 * n
    (nseg,) = COUNT.unpack_from(idx, len(idx) - 72)
    rank = {
        struct.unpack_from("<I", idx, ord_at + 4 * r)[0]: r for r in range(n)
    }  # idx position -> order of add
    entries = []
    for i in range(n):
        oid = idx[IDS_AT + 32 * i : IDS_AT + 32 * (i + 1)]
        entries.append((oid, *LOCATION.unpack_from(idx, IDS_AT + 32 * n + 12 * i), rank[i]))
    segs = [SEGMENT.unpack_from(idx, seg_at + 16 * s) for s in range(nseg)]
    checksum = idx[-64:-32]
    os.chmod(idx_path, 0o644)
    for s in range(nseg):
        segs[s] = (segs[s][0], segs[s][1], 0xFFFF_FFFF)
    idx_path.write_bytes(build_seg_idx(entries, segs, pack_path.stat().st_size, checksum))
    store = LocalObjectStore(tmp_path)
    for oid, _, _ in objs:
        assert await store.get(oid) == b""
    await store.close()
    bad = bytearray(idx)
    struct.pack_into("<Q", bad, len(bad) - 72, nseg + 1)
    bad[-32:] = blake3(bytes(bad[:-32])).digest()
    idx_path.write_bytes(bytes(bad))
    store = LocalObjectStore(tmp_path)
    assert await store.get(objs[0][0]) is None  # the idx is refused: pack unreadable
    await store.close()


async def test_crash_during_repack_loses_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalObjectStore(tmp_path, fsync=False)
    objs = objects(120)
    await store.put_many([(o, f) for o, f, _ in objs[:100]])
    for o, f, _ in objs[100:]:
        await store.put(o, f)
    before = {p.name for p in pack_files(tmp_path)}

    def crash(*args: object) -> bytes:
        raise OSError("killed")

    monkeypatch.setattr(segpack, "build_seg_idx", crash)  # pack renamed in, no idx yet
    with pytest.raises(OSError, match="killed"):
        await store.repack()
    monkeypatch.undo()
    await store.close()
    store = LocalObjectStore(tmp_path)
    for oid, _, c in objs:
        assert unframe(oid, await store.get(oid) or b"") == c
    assert await store.cleanup_incomplete(min_age=0) == 1  # the uncommitted pack
    assert {p.name for p in pack_files(tmp_path)} == before
    assert await store.repack() == 120
    await store.close()


def test_writer_limits(tmp_path: Path) -> None:
    dfd = os.open(tmp_path, os.O_RDONLY)
    try:
        with pytest.raises(ValueError):
            SegmentPackWriter(dfd, segment_bytes=0)
        with pytest.raises(ValueError):
            SegmentPackWriter(dfd, level=99)
        w = SegmentPackWriter(dfd, fsync=False)
        w.add(ObjectId.of(b"x"), frame(b"x"))
        w.abort()
        assert os.listdir(tmp_path) == []
    finally:
        os.close(dfd)


async def test_repack_reads_in_pack_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Copying a segment pack decompresses each segment once; objects keep their order."""
    store, objs = await filled(tmp_path, n=200, segment_bytes=4096)
    nseg = reader_of(store)._seg.segments  # type: ignore[union-attr]
    before = [oid for _, oid in reader_of(store).ids_in_pack_order()]
    # the first put_many wrote one pack in order: its blocks keep that order (one group)
    first = [o for o, _, c in objs[:40] if c[2:3] == b"b"]
    assert [o for o in before if o in set(first)] == first
    loads = []
    real = segpack.SegmentIndex._load

    def counting(self: segpack.SegmentIndex, fd: int, seg: int) -> bytes | None:
        loads.append(seg)
        return real(self, fd, seg)

    monkeypatch.setattr(segpack.SegmentIndex, "_load", counting)
    every = {o for o, _, _ in objs}
    assert await store.repack(every, segment_bytes=4096, level=3) == 200
    assert sorted(loads) == list(range(nseg))
    after = [oid for _, oid in reader_of(store).ids_in_pack_order()]
    blocks = {o for o, _, c in objs if c[2:3] == b"b"}
    assert [o for o in after if o in blocks] == [o for o in before if o in blocks]  # kept
    await store.close()


def chain(n: int) -> list[tuple[ObjectId, bytes]]:
    """(id, canonical) of a session chain: each block links a new chunk and names the
    previous block as its parent, chunks before the blocks that link them."""
    from amplifier_session_storage.core.objects import Block, encode_block, encode_chunk

    out: list[tuple[ObjectId, bytes]] = []
    parent: list[ObjectId] = []
    for i in range(n):
        cid, chunk = encode_chunk(canonical(10_000 + i, 300))
        enc = encode_block(
            Block(
                "event",
                "s-1",
                parent,
                i + 1,
                1_700_000_000_000_000_000 + i,
                "dev",
                "u",
                {"event_type": "tool:post", "line": f"line {i}"},
                [cid],
            )
        )
        out += [(cid, chunk), (enc.id, enc.canonical)]
        parent = [enc.id]
    return out


def write_pack(root: Path, objs: list[tuple[ObjectId, bytes]], **kw: object) -> PackReader:
    root.mkdir(parents=True, exist_ok=True)
    dfd = os.open(root, os.O_RDONLY)
    w = SegmentPackWriter(dfd, fsync=False, **kw)  # type: ignore[arg-type]
    for oid, c in objs:
        w.add(oid, frame(c))
    info = w.finish()
    reader = PackReader(dfd, info.name)
    assert reader.load()
    return reader


def flags_of(reader: PackReader) -> list[int]:
    seg = reader._seg
    assert seg is not None
    return [
        LOCATION.unpack_from(seg._idx, seg._loc_at + pos * LOCATION.size)[2] & ~segpack.LENGTH_MASK
        for pos in range(reader._n)
    ]


def test_ids_of_earlier_objects_are_interned(tmp_path: Path) -> None:
    objs = chain(200)
    interned = write_pack(tmp_path / "on", objs)
    plain = write_pack(tmp_path / "off", objs, intern=False)
    # every block names its chunk and (but the first) its parent, both added before it
    assert flags_of(interned).count(segpack.INTERNED) == 200
    assert set(flags_of(plain)) == {0}
    for reader in (interned, plain):
        for oid, c in objs:
            pos = reader.find(oid)
            assert pos >= 0 and unframe(oid, reader.read(pos)) == c
    size = {k: sum(f.stat().st_size for f in (tmp_path / k).iterdir()) for k in ("on", "off")}
    assert size["on"] < size["off"] - 200 * 40  # two 32-byte ids per block, less the refs
    # the pack order is the order of add (ranks), also across kind groups
    assert [oid for _, oid in interned.ids_in_pack_order()] == [o for o, _ in objs]
    interned.close()
    plain.close()


def test_lookalike_id_bytes_are_not_mistaken(tmp_path: Path) -> None:
    """Bytes that look like an id reference inside a payload (a string, a binary value,
    a chunk's content) come back exactly: a substitution is kept only if it expands back."""
    from amplifier_session_storage.core.objects import encode_chunk

    first, other = chain(2)[:2]
    fake = b"\xc4\x20" + bytes(first[0])
    cid, chunk = encode_chunk(b"xx" + fake + b"yy" + fake)  # inside a bin: wrong length
    real = pack(["b", 1, "x", [bytes(first[0])], {"s": fake.hex(), "t": fake.decode("latin-1")}])
    mixed = pack(["b", 1, "x", [bytes(first[0])], {"k": fake}, [fake]])
    objs = [first, other, (cid, chunk), (ObjectId.of(real), real), (ObjectId.of(mixed), mixed)]
    reader = write_pack(tmp_path, objs)
    flags = flags_of(reader)
    assert flags[reader.find(ObjectId.of(real))] == segpack.INTERNED  # the real id only
    assert flags[reader.find(ObjectId.of(mixed))] == 0  # would not expand back: kept as is
    assert flags[reader.find(cid)] == 0
    for oid, c in objs:
        assert unframe(oid, reader.read(reader.find(oid))) == c
    reader.close()


def test_damaged_order_table_is_detected(tmp_path: Path) -> None:
    """An order table (checksum made valid again) that points a reference at the wrong
    object, or nowhere, makes only the objects using it read as corrupt."""
    objs = chain(30)
    reader = write_pack(tmp_path, objs)
    n, name = reader._n, reader.name
    reader.close()
    idx_path = tmp_path / f"pack-{name}.idx"
    good = idx_path.read_bytes()
    ord_at = IDS_AT + n * (32 + LOCATION.size)
    for bad_pos in (n + 5, struct.unpack_from("<I", good, ord_at + 4 * 3)[0]):
        bad = bytearray(good)
        struct.pack_into("<I", bad, ord_at, bad_pos)  # rank 0: the first chunk
        bad[-32:] = blake3(bytes(bad[:-32])).digest()
        idx_path.write_bytes(bytes(bad))
        store = LocalObjectStore(tmp_path.parent / tmp_path.name, fsync=False)
        dfd = os.open(tmp_path, os.O_RDONLY)
        r = PackReader(dfd, name)
        assert r.load()
        first_block = objs[1][0]  # links rank 0
        with pytest.raises((CorruptObjectError, IntegrityError)):
            unframe(first_block, r.read(r.find(first_block)))
        for oid, c in objs[2:]:  # the rest never names rank 0
            assert unframe(oid, r.read(r.find(oid))) == c
        r.close()
        os.close(dfd)
        del store


def test_version_2_packs_are_still_read(tmp_path: Path) -> None:
    """A store written before ids were interned (idx version 2, no order table) reads."""
    objs = chain(40)
    reader = write_pack(tmp_path, objs, intern=False)
    n, name = reader._n, reader.name
    reader.close()
    idx_path = tmp_path / f"pack-{name}.idx"
    v3 = idx_path.read_bytes()
    ord_at = IDS_AT + n * (32 + LOCATION.size)
    v2 = bytearray(v3[:ord_at] + v3[ord_at + 4 * n : -32])
    struct.pack_into("<I", v2, 4, 2)
    v2 += blake3(bytes(v2)).digest()
    idx_path.write_bytes(bytes(v2))
    dfd = os.open(tmp_path, os.O_RDONLY)
    r = PackReader(dfd, name)
    assert r.load() and r.segmented
    for oid, c in objs:
        assert unframe(oid, r.read(r.find(oid))) == c
    assert sorted(o for _, o in r.ids_in_pack_order()) == sorted(o for o, _ in objs)
    r.close()
    os.close(dfd)


_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=40),
    st.binary(max_size=40),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_interning_round_trips_any_values(
    tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    """Objects of any msgpack shape, naming earlier objects' ids, later ones', unknown ones
    and look-alikes (the id bytes inside longer bins and strings, ext values of the
    reference type), come back byte for byte; some are interned."""
    root = tmp_path_factory.mktemp("intern")
    objs: list[tuple[ObjectId, bytes]] = []
    n = data.draw(st.integers(min_value=2, max_value=25))
    for i in range(n):
        earlier = [bytes(o) for o, _ in objs]
        ids = st.sampled_from(earlier) if earlier else st.binary(min_size=32, max_size=32)
        leaf = st.one_of(
            _SCALARS,
            ids,
            ids.map(lambda b: b"\xc4\x20" + b),  # the id's msgpack encoding inside a bin
            ids.map(lambda b: b.hex()),
            st.binary(min_size=32, max_size=32),  # an id of nothing in the pack
            st.builds(msgpack.ExtType, st.just(1), st.binary(max_size=6)),  # reference look-alike
        )
        value = data.draw(
            st.recursive(
                leaf,
                lambda kids: (
                    st.lists(kids, max_size=4)
                    | st.dictionaries(st.text(max_size=8), kids, max_size=4)
                ),
                max_leaves=12,
            )
        )
        canonical = pack(["b" if i % 2 else "c", 1, i, value])
        objs.append((ObjectId.of(canonical), canonical))
    unique = list({o: (o, c) for o, c in objs}.values())
    reader = write_pack(root, unique)
    for oid, c in unique:
        assert unframe(oid, reader.read(reader.find(oid))) == c
    reader.close()


async def test_repack_keeps_the_cold_storage_profile(tmp_path: Path) -> None:
    """A store compacted with the archive profile keeps it when gc (or anything calling
    repack with no profile) repacks it; other stores keep the default."""
    from amplifier_session_storage.stores.segpack import ARCHIVE_LEVEL, ARCHIVE_SEGMENT_BYTES

    made: list[tuple[int, int]] = []
    real_init = SegmentPackWriter.__init__

    def recording(self: SegmentPackWriter, *a: object, **kw: object) -> None:
        made.append((kw["level"], kw["segment_bytes"]))  # type: ignore[arg-type]
        real_init(self, *a, **kw)  # type: ignore[arg-type]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(SegmentPackWriter, "__init__", recording)
        for root, profile in (("default", {}), ("cold", {"level": ARCHIVE_LEVEL,
                              "segment_bytes": ARCHIVE_SEGMENT_BYTES})):  # fmt: skip
            store = LocalObjectStore(tmp_path / root, fsync=False)
            objs = objects(3000)  # ~2.7 MB: the cold profile makes segments over 1.5 MiB
            await store.put_many([(o, f) for o, f, _ in objs])
            assert await store.repack(**profile) == 3000  # type: ignore[arg-type]
            extra = canonical(99_999)
            await store.put(ObjectId.of(extra), frame(extra))
            assert await store.repack() == 3001
            await store.close()
    assert made == [
        (segpack.DEFAULT_LEVEL, segpack.DEFAULT_SEGMENT_BYTES),
        (segpack.DEFAULT_LEVEL, segpack.DEFAULT_SEGMENT_BYTES),
        (ARCHIVE_LEVEL, ARCHIVE_SEGMENT_BYTES),
        (ARCHIVE_LEVEL, ARCHIVE_SEGMENT_BYTES),
    ]
