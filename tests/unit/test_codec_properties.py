"""Property tests of the canonical codec and stored frames."""

from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from amplifier_session_storage.core.codec import frame, unframe, unframe_unverified, unpack
from amplifier_session_storage.core.ids import ObjectId
from amplifier_session_storage.core.objects import (
    Block,
    BlockType,
    ChunkedPayload,
    decode_block,
    encode_block,
    resolve_chunked,
)
from amplifier_session_storage.errors import CorruptObjectError, IntegrityError, InvalidInputError

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=50)
    | st.binary(max_size=50),
    lambda children: (
        st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=10), children, max_size=6)
    ),
    max_leaves=30,
)
ids = st.binary(min_size=32, max_size=32).map(ObjectId)
names = st.text(st.characters(min_codepoint=32, max_codepoint=0x2FFF), max_size=40)

blocks = st.builds(
    Block,
    block_type=st.sampled_from(list(BlockType)),
    session_id=names,
    parents=st.lists(ids, max_size=3),
    sequence=st.integers(0, 2**40),
    timestamp_ns=st.integers(0, 2**63 - 1),
    device_id=names,
    user_id=names,
    data=json_values,
    links=st.lists(ids, max_size=3),
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(blocks)
def test_decode_encode_roundtrip(block: Block) -> None:
    enc = encode_block(block)
    back = decode_block(unframe(enc.id, frame(enc.canonical)), enc.id)
    if isinstance(back.data, ChunkedPayload):
        back = resolve_chunked(back, [unpack(c)[2] for _, c in enc.chunks])
    assert back.id == block.id
    assert (back.block_type, back.session_id, back.parents, back.sequence) == (
        block.block_type,
        block.session_id,
        block.parents,
        block.sequence,
    )
    assert (back.timestamp_ns, back.device_id, back.user_id, back.links) == (
        block.timestamp_ns,
        block.device_id,
        block.user_id,
        block.links,
    )
    assert back.data == _listify(block.data)
    # encoding is deterministic: the decoded block re-encodes to the same id
    assert encode_block(back.replace()).id == block.id


def _listify(v: object) -> object:
    if isinstance(v, tuple | list):
        return [_listify(x) for x in v]
    if isinstance(v, dict):
        return {k: _listify(x) for k, x in v.items()}
    return v


@settings(max_examples=200)
@given(blocks, st.data())
def test_any_corrupted_byte_raises_integrity_error(block: Block, data: st.DataObject) -> None:
    enc = encode_block(block)
    stored = bytearray(frame(enc.canonical))
    pos = data.draw(st.integers(0, len(stored) - 1))
    flip = data.draw(st.integers(1, 255))
    stored[pos] ^= flip
    with pytest.raises(IntegrityError):
        unframe(enc.id, bytes(stored))


@given(st.binary(max_size=4096), st.data())
def test_truncation_raises_integrity_error(payload: bytes, data: st.DataObject) -> None:
    canonical = b"\x93\xa1c\x01" + payload
    oid = ObjectId.of(canonical)
    stored = frame(canonical)
    cut = data.draw(st.integers(0, len(stored) - 1))
    with pytest.raises(IntegrityError):
        unframe(oid, stored[:cut])


def test_compression_never_changes_the_id() -> None:
    block = Block(BlockType.MESSAGE, "s", [], 1, 1, "d", "u", {"content": "x" * 5000})
    enc = encode_block(block)
    raw, packed = frame(enc.canonical, compress=False), frame(enc.canonical)
    assert len(packed) < len(raw)
    assert unframe(enc.id, raw) == unframe(enc.id, packed) == enc.canonical


def test_declared_size_bounds_decompression() -> None:
    import zstandard

    bomb = zstandard.ZstdCompressor().compress(b"\0" * 50_000_000)
    hostile = struct.pack("<2sBBI", b"AO", 1, 1, 100) + bomb
    with pytest.raises(CorruptObjectError, match="declares"):
        unframe_unverified(hostile)
    unsized = zstandard.ZstdCompressor(write_content_size=False).compress(b"\0" * 50_000_000)
    with pytest.raises(CorruptObjectError):
        unframe_unverified(struct.pack("<2sBBI", b"AO", 1, 1, 100) + unsized)


def test_declared_size_above_cap_is_refused_before_allocation() -> None:
    with pytest.raises(CorruptObjectError, match="exceeds"):
        unframe_unverified(struct.pack("<2sBBI", b"AO", 1, 0, 2**32 - 1))


@pytest.mark.parametrize(
    "payload",
    [b"\x91" * 100_000, b"\xdd\xff\xff\xff\xff", b"\xc1", b"\x9c" + b"\x00" * 3],
)
def test_hostile_msgpack_is_a_typed_error(payload: bytes) -> None:
    with pytest.raises(CorruptObjectError):
        decode_block(payload)


def test_unstorable_values_are_refused() -> None:
    import datetime

    with pytest.raises(InvalidInputError):
        encode_block(Block(BlockType.EVENT, "s", data={"t": datetime.datetime.now()}))
    with pytest.raises(InvalidInputError):
        encode_block(Block(BlockType.EVENT, "s", data=2**70))


def test_large_payload_is_chunked_and_shared() -> None:
    import os

    body = {"raw": os.urandom(200_000).hex()}
    a = encode_block(Block(BlockType.EVENT, "session-a", [], 1, 1, "d", "u", body))
    b = encode_block(Block(BlockType.EVENT, "session-b", [], 7, 2, "e", "v", body))
    assert len(a.chunks) > 10
    assert a.id != b.id
    assert [c for c, _ in a.chunks] == [c for c, _ in b.chunks]  # stored once
    assert len(a.canonical) < 60 * len(a.chunks)  # the block holds ids, not bytes
