"""Content-defined chunking (FastCDC, compiled: pyfastcdc).

Cut points depend only on the bytes around them, so an insert or an edit changes the chunks
near it and leaves the rest identical: repeated content in other events, sessions and forks
produces the same chunk ids and is stored once. The parameters are part of the format
(they decide chunk ids, hence block ids): see docs/design.md.
"""

from __future__ import annotations

from collections.abc import Iterator

from pyfastcdc import FastCDC

__all__ = ["CHUNK_AVG", "CHUNK_MAX", "CHUNK_MIN", "CHUNK_THRESHOLD", "cut"]

CHUNK_MIN = 2 * 1024
CHUNK_AVG = 8 * 1024
CHUNK_MAX = 64 * 1024
CHUNK_THRESHOLD = 16 * 1024  # payloads larger than this are chunked

_cdc = FastCDC(avg_size=CHUNK_AVG, min_size=CHUNK_MIN, max_size=CHUNK_MAX)


def cut(data: bytes) -> Iterator[memoryview]:
    """Yield the content-defined chunks of ``data`` (views into it, in order)."""
    if len(data) <= CHUNK_MIN:
        if data:
            yield memoryview(data)
        return
    view = memoryview(data)
    for c in _cdc.cut_buf(data):
        yield view[c.offset : c.offset + c.length]
