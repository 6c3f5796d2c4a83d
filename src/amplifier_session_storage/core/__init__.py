"""Core objects: ids, the canonical codec and stored frames, blocks and chunks, chunking."""

from .codec import frame, pack, unframe, unpack
from .ids import ObjectId, validate_name, validate_project_slug, validate_session_id
from .objects import (
    Block,
    BlockType,
    ChunkedPayload,
    EncodedBlock,
    decode_block,
    decode_chunk,
    encode_block,
    encode_chunk,
    object_kind,
    resolve_chunked,
)

__all__ = [
    "Block",
    "BlockType",
    "ChunkedPayload",
    "EncodedBlock",
    "ObjectId",
    "decode_block",
    "decode_chunk",
    "encode_block",
    "encode_chunk",
    "frame",
    "object_kind",
    "pack",
    "resolve_chunked",
    "unframe",
    "unpack",
    "validate_name",
    "validate_project_slug",
    "validate_session_id",
]
