"""Canonical encoding and the stored frame of every object.

Two layers, specified byte for byte in docs/design.md:

* **canonical bytes** -- deterministic msgpack of ``[kind, version, ...fields]``. The object id
  is ``BLAKE3-256(canonical)``; nothing else goes into the id.
* **frame** -- what a store keeps: an 8-byte header (``b"AO"``, format version, codec,
  uncompressed length as u32 little-endian) followed by the canonical bytes, raw or zstd.
  Compression is a storage detail: the same canonical bytes framed raw or compressed have
  the same id.

Reading is hostile-input safe: the header's declared length is checked against a hard cap
before anything is allocated, zstd output is bounded by it, and msgpack decoding is limited
(structure depth and sizes) so a crafted object raises :class:`CorruptObjectError`.
"""

from __future__ import annotations

import struct
import threading
from typing import Any

import msgpack
import zstandard

from ..errors import CorruptObjectError, IntegrityError, InvalidInputError
from .ids import ObjectId

__all__ = [
    "CODEC_RAW",
    "CODEC_ZSTD",
    "FRAME_HEADER",
    "MAX_OBJECT_SIZE",
    "frame",
    "frame_codec",
    "pack",
    "unframe",
    "unframe_unverified",
    "unpack",
]

MAGIC = b"AO"
FORMAT_VERSION = 1
CODEC_RAW = 0
CODEC_ZSTD = 1
FRAME_HEADER = struct.Struct("<2sBBI")  # magic, version, codec, uncompressed length
MAX_OBJECT_SIZE = 64 * 1024 * 1024  # no canonical object is larger than this
COMPRESS_MIN = 96  # below this zstd's own header outweighs any gain
ZSTD_LEVEL = 3
MAX_DEPTH = 64  # nesting allowed in a decoded value (JSON from agents is shallow)

_local = threading.local()


def _compressor() -> zstandard.ZstdCompressor:
    c = getattr(_local, "cctx", None)
    if c is None:
        c = _local.cctx = zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_content_size=True)
    return c


def _decompressor() -> zstandard.ZstdDecompressor:
    d = getattr(_local, "dctx", None)
    if d is None:
        d = _local.dctx = zstandard.ZstdDecompressor()
    return d


def pack(value: Any) -> bytes:
    """Deterministic msgpack: the same value (same key order, same types) -> the same bytes."""
    try:
        return msgpack.packb(value, use_bin_type=True, strict_types=False, datetime=False)  # type: ignore[no-any-return]
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidInputError(f"value cannot be stored (msgpack): {exc}") from exc


def _depth_ok(value: Any, depth: int = 0) -> bool:
    if depth > MAX_DEPTH:
        return False
    if isinstance(value, dict):
        return all(_depth_ok(v, depth + 1) for v in value.values())
    if isinstance(value, list):
        return all(_depth_ok(v, depth + 1) for v in value)
    return True


def unpack(data: bytes, what: str = "object") -> Any:
    """Decode msgpack made by :func:`pack`, with limits; bad input -> CorruptObjectError."""
    try:
        value = msgpack.unpackb(
            data,
            raw=False,
            strict_map_key=True,
            use_list=True,
            timestamp=0,
        )
    except Exception as exc:  # msgpack raises many types (ExtraData, ValueError, ...)
        raise CorruptObjectError(
            f"{what}: undecodable msgpack ({type(exc).__name__}: {exc})"
        ) from exc
    return value


def frame(canonical: bytes, compress: bool = True) -> bytes:
    """Wrap canonical bytes in a stored frame, zstd-compressed when that makes it smaller."""
    n = len(canonical)
    if n > MAX_OBJECT_SIZE:
        raise InvalidInputError(f"object of {n} bytes exceeds the {MAX_OBJECT_SIZE}-byte limit")
    if compress and n >= COMPRESS_MIN:
        body = _compressor().compress(canonical)
        if len(body) < n:
            return FRAME_HEADER.pack(MAGIC, FORMAT_VERSION, CODEC_ZSTD, n) + body
    return FRAME_HEADER.pack(MAGIC, FORMAT_VERSION, CODEC_RAW, n) + canonical


def frame_codec(stored: bytes) -> int:
    """The codec byte of a frame (for statistics); raises CorruptObjectError if malformed."""
    if len(stored) < FRAME_HEADER.size:
        raise CorruptObjectError("frame shorter than its header")
    return int(stored[3])


def unframe_unverified(stored: bytes | memoryview, what: str = "object") -> bytes:
    """Undo the frame without checking the id (used to compute an id for fsck reports)."""
    if len(stored) < FRAME_HEADER.size:
        raise CorruptObjectError(f"{what}: truncated ({len(stored)} bytes, no full header)", what)
    magic, version, codec, n = FRAME_HEADER.unpack_from(stored, 0)
    if magic != MAGIC or version != FORMAT_VERSION:
        raise CorruptObjectError(f"{what}: bad frame header", what)
    if n > MAX_OBJECT_SIZE:
        raise CorruptObjectError(f"{what}: declared size {n} exceeds the limit", what)
    body = stored[FRAME_HEADER.size :]
    if codec == CODEC_RAW:
        if len(body) != n:
            raise CorruptObjectError(
                f"{what}: raw body is {len(body)} bytes, header says {n}", what
            )
        return bytes(body)
    if codec == CODEC_ZSTD:
        try:
            raw = bytes(body)
            # Never trust the zstd frame's own size field: refuse a mismatch before allocating.
            declared = zstandard.frame_content_size(raw)
            if declared >= 0:
                if declared != n:
                    raise CorruptObjectError(
                        f"{what}: zstd frame declares {declared} bytes, header says {n}", what
                    )
                out = _decompressor().decompress(raw, max_output_size=n)
            else:
                with _decompressor().stream_reader(raw) as reader:
                    out = reader.read(n + 1)
        except zstandard.ZstdError as exc:
            raise CorruptObjectError(f"{what}: zstd body is corrupt ({exc})", what) from exc
        if len(out) != n:
            raise CorruptObjectError(
                f"{what}: decompressed to {len(out)} bytes, header says {n}", what
            )
        return out
    raise CorruptObjectError(f"{what}: unknown codec {codec}", what)


def unframe(oid: ObjectId, stored: bytes | memoryview) -> bytes:
    """Undo the frame and verify that the canonical bytes hash to ``oid``.

    A mismatch raises :class:`IntegrityError` naming the object; malformed framing raises
    :class:`CorruptObjectError` (a subclass).
    """
    name = oid.hex()
    canonical = unframe_unverified(stored, name)
    if ObjectId.of(canonical) != oid:
        raise IntegrityError(f"object {name}: content does not match its id", name)
    return canonical
