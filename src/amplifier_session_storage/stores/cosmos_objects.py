"""The remote object store: locations in Cosmos DB, bytes in Blob packs.

``get(oid)`` is one point read of the object document in ``<u>_#objects`` plus one ranged
Blob read of exactly that frame (and its record head, checked against the id), so a
repository can run directly on the remote. ``put_many`` asks which ids are missing (IN
queries), uploads the missing frames as packs (``BlobObjectStore.upload_pack``: pack, then
idx) and only then writes the location documents: a document never points at bytes that
are not there yet.

``delete`` removes the location document; the bytes stay in their pack until a remote
repack (not implemented) rewrites it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable

from ..core.ids import ObjectId
from ..errors import CorruptObjectError, NotFoundError
from .base import ObjectStore
from .blob import MAX_PACK_BYTES, BlobObjectStore
from .cosmos_common import user_key
from .cosmos_index import CosmosIndex, Location

__all__ = ["CosmosObjectStore"]


class CosmosObjectStore(ObjectStore):
    """An :class:`ObjectStore` for one user: Cosmos DB locations over Blob packs."""

    def __init__(
        self,
        index: CosmosIndex,
        blobs: BlobObjectStore,
        user_id: str,
        *,
        max_pack_bytes: int = MAX_PACK_BYTES,
    ) -> None:
        user_key(user_id)
        self._index = index
        self._blobs = blobs
        self._user = user_id
        self._max_pack_bytes = max_pack_bytes

    def __repr__(self) -> str:
        return f"CosmosObjectStore(user_id={self._user!r}, blobs={self._blobs!r})"

    @property
    def index(self) -> CosmosIndex:
        return self._index

    @property
    def blobs(self) -> BlobObjectStore:
        return self._blobs

    async def _read(self, oid: ObjectId, loc: Location) -> bytes:
        try:
            return await self._blobs.read_object(oid, loc.pack, loc.offset, loc.length)
        except NotFoundError as exc:
            raise CorruptObjectError(
                f"object {oid.hex()}: its pack {loc.pack} is missing", oid.hex()
            ) from exc

    async def get(self, oid: ObjectId) -> bytes | None:
        oid = ObjectId(oid)
        loc = await self._index.locate(self._user, oid)
        return None if loc is None else await self._read(oid, loc)

    async def put(self, oid: ObjectId, data: bytes) -> None:
        await self.put_many([(oid, data)])

    async def put_many(self, items: Iterable[tuple[ObjectId, bytes]]) -> None:
        todo: dict[ObjectId, bytes] = {}
        for oid, data in items:
            todo.setdefault(ObjectId(oid), bytes(data))
        if not todo:
            return
        missing = await self._index.missing(self._user, todo)
        batch: list[tuple[ObjectId, bytes]] = []
        size = 0
        for oid, data in todo.items():
            if oid not in missing:
                continue
            if batch and size + len(data) > self._max_pack_bytes:
                await self._upload(batch)
                batch, size = [], 0
            batch.append((oid, data))
            size += len(data)
        if batch:
            await self._upload(batch)

    async def _upload(self, frames: list[tuple[ObjectId, bytes]]) -> None:
        info = await self._blobs.upload_pack(frames, register=False)
        await self._index.put_objects(
            self._user,
            ((oid, Location(info.name, off, n)) for oid, (off, n) in info.entries.items()),
        )

    async def has(self, oid: ObjectId) -> bool:
        return await self._index.locate(self._user, ObjectId(oid)) is not None

    async def has_many(self, oids: Iterable[ObjectId]) -> set[ObjectId]:
        return set(await self._index.locate_many(self._user, oids))

    async def delete(self, oid: ObjectId) -> bool:
        return await self._index.delete_object(self._user, ObjectId(oid))

    async def list(self) -> AsyncIterator[ObjectId]:
        async for oid in self._index.list_objects(self._user):
            yield oid

    async def close(self) -> None:
        await self._blobs.close()
