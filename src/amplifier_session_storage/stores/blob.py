"""Objects in Azure Blob Storage, many per blob: content-addressed packs with an index blob.

Blob names (``<prefix>`` is optional, e.g. ``users/<user_id>/``)::

    <prefix>packs/<name>.pack          the pack: the local pack format of ``stores.pack``
                                       (b"ASPK" v1 header, records id|u32 len|frame, BLAKE3
                                       trailer); ``<name>`` is that trailer in hex (the BLAKE3
                                       of the pack bytes before it), so equal packs are one blob
    <prefix>packs/<name>.idx           its index: the local idx format (sorted ids, offsets,
                                       lengths, fan-out, checksums); uploaded after the pack,
                                       it is the commit point: a pack without an idx is ignored
    <prefix>packs/<name>.<oid>.del     a tombstone: object <oid> of pack <name> is deleted

Both blobs are uploaded with ``overwrite=False``: a pack or idx that already exists is the
same bytes (its name is its hash), so "already exists" is success and a retried upload is
harmless. ``put`` is a one-object pack (no loose objects: one naming scheme, one listing).

Reads find an object through an in-memory index of every idx blob, loaded on first use by
listing ``packs/`` and refreshed (only new idx blobs are downloaded) whenever a lookup
misses; then one ranged download fetches exactly the object's frame, together with the
36-byte record head in front of it, which is checked against the id and the length.
``pack_index(name)`` is the entries of ONE pack's idx (downloaded once, verified, cached),
for callers that know which pack holds an object (the Cosmos DB pack documents).

``delete`` writes a tombstone instead of rewriting the pack (packs are immutable and shared
by concurrent readers); a later ``put`` of the same object removes the tombstone or writes a
new pack. Space is reclaimed by a remote repack (not implemented here). Deletes are meant for
gc: a delete racing a ``put`` of the same object may leave it deleted.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from blake3 import blake3

from ..core.ids import ID_BYTES, ObjectId
from ..errors import CorruptObjectError, InvalidInputError, NotFoundError
from .azure_errors import AlreadyExistsError, RangeNotSatisfiableError, blob_errors
from .base import ObjectStore
from .pack import (
    CHECKSUM,
    FANOUT,
    IDS_AT,
    IDX_HEADER,
    IDX_MAGIC,
    PACK_HEADER,
    PACK_MAGIC,
    RECORD_HEAD,
    VERSION,
    build_idx,
)

if TYPE_CHECKING:
    from azure.storage.blob.aio import ContainerClient

__all__ = ["BlobObjectStore", "PackInfo", "build_pack", "parse_idx"]

log = logging.getLogger(__name__)

MAX_PACK_BYTES = 64 * 1024 * 1024
THREAD_BUILD_BYTES = 1024 * 1024  # packs at least this large are built off the event loop
COALESCE_GAP = 64 * 1024
MAX_SPAN = 8 * 1024 * 1024
CONCURRENCY = 8
_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class PackInfo:
    """An uploaded pack: its name, where each object's frame is, and the pack's size."""

    name: str
    entries: dict[ObjectId, tuple[int, int]]  # oid -> (frame offset, frame length)
    size: int


@dataclass(slots=True)
class _Pack:
    entries: dict[ObjectId, tuple[int, int]]
    dead: set[ObjectId] = field(default_factory=set)


def build_pack(frames: Iterable[tuple[ObjectId, bytes]]) -> tuple[bytes, bytes, PackInfo]:
    """``(pack bytes, idx bytes, info)`` for ``frames`` (duplicates kept once)."""
    buf = bytearray(PACK_HEADER.pack(PACK_MAGIC, VERSION))
    entries: dict[ObjectId, tuple[int, int]] = {}
    for oid, data in frames:
        oid = ObjectId(oid)
        if oid in entries:
            continue
        n = len(data)
        buf += RECORD_HEAD.pack(oid, n)
        entries[oid] = (len(buf), n)
        buf += data
    checksum = blake3(buf).digest()
    buf += checksum
    idx = build_idx([(o, off, n) for o, (off, n) in entries.items()], len(buf), checksum)
    return bytes(buf), idx, PackInfo(checksum.hex(), entries, len(buf))


def parse_idx(data: bytes, name: str) -> dict[ObjectId, tuple[int, int]]:
    """The entries of an idx blob; raises CorruptObjectError unless it is whole and for ``name``."""
    size = len(data)
    if size < IDS_AT + 2 * CHECKSUM:
        raise CorruptObjectError(f"pack index {name}: truncated")
    magic, version, n, _pack_size = IDX_HEADER.unpack_from(data, 0)
    if magic != IDX_MAGIC or version != VERSION:
        raise CorruptObjectError(f"pack index {name}: bad header")
    if size != IDS_AT + n * (ID_BYTES + 12) + 2 * CHECKSUM:
        raise CorruptObjectError(f"pack index {name}: size does not match its count")
    if blake3(data[: size - CHECKSUM]).digest() != data[size - CHECKSUM :]:
        raise CorruptObjectError(f"pack index {name}: checksum mismatch")
    if data[size - 2 * CHECKSUM : size - CHECKSUM].hex() != name:
        raise CorruptObjectError(f"pack index {name}: belongs to another pack")
    fanout = FANOUT.unpack_from(data, IDX_HEADER.size)
    if fanout[-1] != n:
        raise CorruptObjectError(f"pack index {name}: bad fan-out")
    off_at = IDS_AT + n * ID_BYTES
    len_at = off_at + n * 8
    offsets = memoryview(data)[off_at:len_at].cast("Q") if n else ()
    lengths = memoryview(data)[len_at : len_at + n * 4].cast("I") if n else ()
    out: dict[ObjectId, tuple[int, int]] = {}
    for i in range(n):
        oid = ObjectId(data[IDS_AT + i * ID_BYTES : IDS_AT + (i + 1) * ID_BYTES])
        out[oid] = (int(offsets[i]), int(lengths[i]))
    return out


def _check_pack_name(name: str) -> str:
    if not isinstance(name, str) or not _HEX64.fullmatch(name):
        raise InvalidInputError(f"not a pack name (64 lower-case hex digits): {name!r:.80}")
    return name


def _check_prefix(prefix: str) -> str:
    if prefix and (
        not prefix.endswith("/")
        or prefix.startswith("/")
        or any(part in ("", ".", "..") for part in prefix[:-1].split("/"))
        or any(c in prefix for c in "\\\x00?#")
    ):
        raise InvalidInputError(
            f"blob prefix must be '' or 'a/b/' (no '.', '..', '//'): {prefix!r}"
        )
    return prefix


class BlobObjectStore(ObjectStore):
    """An :class:`ObjectStore` over one Blob container (see the module docstring)."""

    def __init__(
        self,
        container: ContainerClient,
        *,
        prefix: str = "",
        max_pack_bytes: int = MAX_PACK_BYTES,
        coalesce_gap: int = COALESCE_GAP,
        max_span: int = MAX_SPAN,
        concurrency: int = CONCURRENCY,
        owns_client: bool = False,
    ) -> None:
        self._container = container
        self._prefix = _check_prefix(prefix)
        self._max_pack_bytes = max_pack_bytes
        self._gap = coalesce_gap
        self._max_span = max_span
        self._sem = asyncio.Semaphore(concurrency)
        self._owns = owns_client
        self._packs: dict[str, _Pack] = {}
        self._where: dict[ObjectId, list[str]] = {}
        self._bad_idx: set[str] = set()
        self._loaded = False
        self._refresh_lock = asyncio.Lock()
        self._closed = False
        self._counts = {"uploads": 0, "downloads": 0, "listings": 0}
        # pack name -> its idx entries, for pack_index (uploaded or downloaded here)
        self._idx_cache: dict[str, dict[ObjectId, tuple[int, int]]] = {}
        self._idx_locks: dict[str, asyncio.Lock] = {}

    def __repr__(self) -> str:
        name = self._container.container_name
        return f"BlobObjectStore(container={name!r}, prefix={self._prefix!r})"

    @property
    def prefix(self) -> str:
        return self._prefix

    # ------------------------------------------------------------------ names
    def pack_blob(self, name: str) -> str:
        return f"{self._prefix}packs/{_check_pack_name(name)}.pack"

    def idx_blob(self, name: str) -> str:
        return f"{self._prefix}packs/{_check_pack_name(name)}.idx"

    def _tomb_blob(self, name: str, oid: ObjectId) -> str:
        return f"{self._prefix}packs/{_check_pack_name(name)}.{oid.hex()}.del"

    # ------------------------------------------------------------------ setup
    async def ensure_container(self) -> None:
        """Create the Blob container if it does not exist."""
        try:
            with blob_errors("create container"):
                await self._container.create_container()
        except AlreadyExistsError:
            pass

    async def close(self) -> None:
        self._closed = True
        if self._owns:
            with blob_errors("close"):
                await self._container.close()

    # ------------------------------------------------------------------ raw blob I/O
    async def _upload(self, blob: str, data: bytes, *, overwrite: bool = False) -> bool:
        """Upload; ``False`` when the blob already existed (content-addressed: success)."""
        self._counts["uploads"] += 1
        try:
            async with self._sem:
                with blob_errors(f"upload {blob}"):
                    await self._container.upload_blob(blob, data, overwrite=overwrite)
        except AlreadyExistsError:
            return False
        return True

    async def _download(
        self, blob: str, offset: int | None = None, length: int | None = None
    ) -> bytes:
        self._counts["downloads"] += 1
        async with self._sem:
            with blob_errors(f"download {blob}"):
                downloader = await self._container.download_blob(blob, offset=offset, length=length)
                data: bytes = await downloader.readall()
        return data

    async def _delete_blob(self, blob: str) -> bool:
        try:
            async with self._sem:
                with blob_errors(f"delete {blob}"):
                    await self._container.delete_blob(blob)
        except NotFoundError:
            return False
        return True

    # ------------------------------------------------------------------ packs
    async def upload_pack(
        self, frames: Iterable[tuple[ObjectId, bytes]], *, register: bool = True
    ) -> PackInfo:
        """Upload ``frames`` as one pack plus its idx (idempotent); returns where each landed.

        With ``register=False`` the in-memory index is left alone (for callers that keep
        locations elsewhere, such as ``CosmosObjectStore``). A large pack is built in a
        worker thread, so that the uploads already in flight keep sending meanwhile.
        """
        items = list(frames)
        if sum(len(data) for _, data in items) >= THREAD_BUILD_BYTES:
            pack, idx, info = await asyncio.to_thread(build_pack, items)
        else:
            pack, idx, info = build_pack(items)
        if not info.entries:
            raise InvalidInputError("a pack holds at least one object")
        existed = not await self._upload(self.pack_blob(info.name), pack)
        await self._upload(self.idx_blob(info.name), idx, overwrite=info.name in self._bad_idx)
        self._bad_idx.discard(info.name)
        self._idx_cache[info.name] = info.entries
        if not register:
            return info
        if existed:
            await self.refresh()  # learn its tombstones, so that this upload revives them
        await self._register(info.name, info.entries, revive=True)
        return info

    async def pack_index(self, pack_name: str) -> dict[ObjectId, tuple[int, int]]:
        """``{oid: (frame offset, frame length)}`` of every object in pack ``pack_name``.

        From the pack's idx blob, downloaded once and verified (``parse_idx``), then cached
        (as are the entries of packs uploaded through this store). A missing idx raises
        ``NotFoundError``, an unreadable one ``CorruptObjectError``.
        """
        _check_pack_name(pack_name)
        cached = self._idx_cache.get(pack_name)
        if cached is not None:
            return cached
        async with self._idx_locks.setdefault(pack_name, asyncio.Lock()):
            cached = self._idx_cache.get(pack_name)
            if cached is None:
                data = await self._download(self.idx_blob(pack_name))
                cached = self._idx_cache[pack_name] = parse_idx(data, pack_name)
        return cached

    async def read_range(self, pack_name: str, offset: int, length: int) -> bytes:
        """Exactly ``length`` bytes at ``offset`` of pack ``pack_name``."""
        if offset < 0 or length < 0:
            raise InvalidInputError("offset and length must be >= 0")
        if length == 0:
            return b""
        blob = self.pack_blob(pack_name)
        try:
            data = await self._download(blob, offset, length)
        except RangeNotSatisfiableError as exc:
            raise CorruptObjectError(
                f"pack {pack_name}: range {offset}+{length} is past its end", pack_name
            ) from exc
        if len(data) != length:
            raise CorruptObjectError(
                f"pack {pack_name}: read {len(data)} of {length} bytes at {offset} (truncated)",
                pack_name,
            )
        return data

    async def read_ranges(self, pack_name: str, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        """The bytes of every ``(offset, length)`` in ``ranges``, in order, in few downloads.

        Ranges closer than ``coalesce_gap`` bytes are fetched as one span (at most
        ``max_span`` bytes); the spans are downloaded concurrently.
        """
        _check_pack_name(pack_name)
        order = sorted(range(len(ranges)), key=lambda i: ranges[i][0])
        spans: list[tuple[int, int, list[int]]] = []
        for i in order:
            off, n = ranges[i]
            if off < 0 or n < 0:
                raise InvalidInputError("offset and length must be >= 0")
            if spans:
                start, end, members = spans[-1]
                if off <= end + self._gap and max(end, off + n) - start <= self._max_span:
                    members.append(i)
                    spans[-1] = (start, max(end, off + n), members)
                    continue
            spans.append((off, off + n, [i]))
        out: list[bytes] = [b""] * len(ranges)

        async def fetch(start: int, end: int, members: list[int]) -> None:
            data = await self.read_range(pack_name, start, end - start)
            for i in members:
                off, n = ranges[i]
                out[i] = data[off - start : off - start + n]

        await asyncio.gather(*(fetch(*s) for s in spans if s[1] > s[0]))
        return out

    # ------------------------------------------------------------------ the in-memory index
    async def _register(
        self, name: str, entries: dict[ObjectId, tuple[int, int]], *, revive: bool
    ) -> None:
        pack = self._packs.get(name)
        if pack is None:
            pack = self._packs[name] = _Pack(dict(entries))
            for oid in entries:
                self._where.setdefault(oid, []).append(name)
        if revive and pack.dead:
            for oid in [o for o in entries if o in pack.dead]:
                await self._delete_blob(self._tomb_blob(name, oid))
                pack.dead.discard(oid)

    def _lookup(self, oid: ObjectId) -> tuple[str, int, int] | None:
        for name in self._where.get(oid, ()):
            pack = self._packs.get(name)
            if pack is not None and oid not in pack.dead:
                off, n = pack.entries[oid]
                return name, off, n
        return None

    async def refresh(self) -> None:
        """Re-list the packs: pick up new idx blobs, tombstones and removed packs."""
        async with self._refresh_lock:
            await self._refresh_locked()

    async def _refresh_locked(self) -> None:
        listing_prefix = f"{self._prefix}packs/"
        known_before = set(self._packs)
        packs: set[str] = set()
        idxs: set[str] = set()
        tombs: dict[str, set[ObjectId]] = {}
        self._counts["listings"] += 1
        with blob_errors(f"list {listing_prefix}"):
            async for item in self._container.list_blobs(name_starts_with=listing_prefix):
                rest = str(item.name)[len(listing_prefix) :]
                stem, _, ext = rest.rpartition(".")
                if ext in ("pack", "idx") and _HEX64.fullmatch(stem):
                    (packs if ext == "pack" else idxs).add(stem)
                elif ext == "del":
                    name, _, hexid = stem.partition(".")
                    if _HEX64.fullmatch(name) and _HEX64.fullmatch(hexid):
                        tombs.setdefault(name, set()).add(ObjectId.from_hex(hexid))
        live = packs & idxs
        # Packs registered by uploads that finished after the listing started stay.
        for gone in [n for n in known_before if n not in live and n in self._packs]:
            for oid in self._packs.pop(gone).entries:
                where = self._where.get(oid)
                if where and gone in where:
                    where.remove(gone)
                    if not where:
                        del self._where[oid]
        new = sorted(live - self._packs.keys() - self._bad_idx)

        async def load(name: str) -> None:
            try:
                data = await self._download(self.idx_blob(name))
            except NotFoundError:
                return
            try:
                entries = parse_idx(data, name)
            except CorruptObjectError as exc:
                log.warning("ignoring unreadable pack index: %s", exc)
                self._bad_idx.add(name)
                return
            await self._register(name, entries, revive=False)

        await asyncio.gather(*(load(n) for n in new))
        for name, pack in self._packs.items():
            pack.dead = set(tombs.get(name, ())) & pack.entries.keys()
        self._loaded = True

    async def _ensure_loaded(self) -> None:
        if not self._loaded:
            await self.refresh()

    async def _find(self, oid: ObjectId) -> tuple[str, int, int] | None:
        await self._ensure_loaded()
        loc = self._lookup(oid)
        if loc is None:
            await self.refresh()
            loc = self._lookup(oid)
        return loc

    async def locate(self, oid: ObjectId) -> tuple[str, int, int] | None:
        """``(pack name, frame offset, frame length)`` of a live object, or ``None``."""
        return await self._find(ObjectId(oid))

    async def read_object(self, oid: ObjectId, pack_name: str, offset: int, length: int) -> bytes:
        """The frame of ``oid`` at ``offset`` of a pack, checked against its record head.

        A pack cut short yields a short frame (which fails verification when unframed), as
        local packs do; a record head that names another object raises CorruptObjectError.
        """
        head = RECORD_HEAD.size
        if offset < head or length < 0:
            raise CorruptObjectError(f"object {oid.hex()}: offset {offset} inside the pack header")
        try:
            data = await self._download(self.pack_blob(pack_name), offset - head, length + head)
        except RangeNotSatisfiableError:
            return b""  # the pack ends before this record
        if len(data) < head:
            return b""
        rid, n = RECORD_HEAD.unpack_from(data, 0)
        if rid != oid or n != length:
            raise CorruptObjectError(
                f"object {oid.hex()}: pack {pack_name} holds another record at {offset}",
                oid.hex(),
            )
        return data[head:]

    # ------------------------------------------------------------------ ObjectStore
    async def get(self, oid: ObjectId) -> bytes | None:
        oid = ObjectId(oid)
        loc = await self._find(oid)
        if loc is None:
            return None
        try:
            return await self.read_object(oid, *loc)
        except NotFoundError:
            # The pack went away (repacked or deleted): look again once.
            await self.refresh()
            loc = self._lookup(oid)
            if loc is None:
                return None
            return await self.read_object(oid, *loc)

    async def put(self, oid: ObjectId, data: bytes) -> None:
        await self.put_many([(oid, data)])

    async def put_many(self, items: Iterable[tuple[ObjectId, bytes]]) -> None:
        todo: dict[ObjectId, bytes] = {}
        for oid, data in items:
            todo.setdefault(ObjectId(oid), bytes(data))
        if not todo:
            return
        # Only the in-memory index is consulted: an object another client stored since the
        # last refresh is uploaded again, which is harmless (a second copy in another pack).
        await self._ensure_loaded()
        present = {o for o in todo if self._lookup(o) is not None}
        batch: list[tuple[ObjectId, bytes]] = []
        size = 0
        for oid, data in todo.items():
            if oid in present:
                continue
            if batch and size + len(data) > self._max_pack_bytes:
                await self.upload_pack(batch)
                batch, size = [], 0
            batch.append((oid, data))
            size += len(data) + RECORD_HEAD.size
        if batch:
            await self.upload_pack(batch)

    async def has(self, oid: ObjectId) -> bool:
        return await self._find(ObjectId(oid)) is not None

    async def has_many(self, oids: Iterable[ObjectId]) -> set[ObjectId]:
        wanted = {ObjectId(o) for o in oids}
        await self._ensure_loaded()
        found = {o for o in wanted if self._lookup(o) is not None}
        if len(found) < len(wanted):
            await self.refresh()
            found = {o for o in wanted if self._lookup(o) is not None}
        return found

    async def delete(self, oid: ObjectId) -> bool:
        oid = ObjectId(oid)
        if await self._find(oid) is None:
            return False
        for name in list(self._where.get(oid, ())):
            pack = self._packs.get(name)
            if pack is None or oid in pack.dead:
                continue
            await self._upload(self._tomb_blob(name, oid), b"", overwrite=True)
            pack.dead.add(oid)
        return True

    async def list(self) -> AsyncIterator[ObjectId]:
        await self.refresh()
        for oid in list(self._where):
            if self._lookup(oid) is not None:
                yield oid

    # ------------------------------------------------------------------ test hooks
    async def raw_upload(self, blob: str, data: bytes) -> None:
        """Write a blob under this store's prefix, bypassing the store (corruption tests)."""
        await self._upload(self._prefix + blob, data, overwrite=True)

    def stats(self) -> dict[str, Any]:
        """Counts of the in-memory index and of requests made (for tests and diagnostics)."""
        return {
            **self._counts,
            "packs": len(self._packs),
            "objects": sum(1 for o in self._where if self._lookup(o) is not None),
            "unreadable_idx": len(self._bad_idx),
        }
