"""The remote object store: locations in Cosmos DB, bytes in Blob packs.

Blocks are recorded by object documents in ``<u>_#objects`` (pack, offset, length); every
other object (a chunk, a link: a *leaf*, it depends on nothing) by the pack documents in
``<u>_#packs`` of the pack that holds it, its offset being in that pack's idx blob. Object
documents of leaves (remotes of format 1) are still read.

``get(oid)`` is one point read of the object document, else one pack-document query and
the pack's idx (downloaded once per pack), then one ranged Blob read of exactly that frame
(and its record head, checked against the id). ``put_many`` asks which ids are missing,
uploads the missing frames as packs (``BlobObjectStore.upload_pack``: pack, then idx) and
only then records them: pack documents for the leaves, then object documents for the
blocks. A document never points at bytes that are not there yet.

``delete`` removes the object document and the id from the pack documents; the bytes stay
in their pack until a remote repack (not implemented) rewrites it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable

from ..core.codec import unframe
from ..core.ids import ObjectId
from ..core.objects import object_kind
from ..errors import CorruptObjectError, IntegrityError, NotFoundError
from .base import ObjectStore
from .blob import MAX_PACK_BYTES, BlobObjectStore
from .cosmos_common import user_key
from .cosmos_index import CosmosIndex, Location

__all__ = ["CosmosObjectStore", "is_block_frame"]


def is_block_frame(oid: ObjectId, frame: bytes) -> bool:
    """Whether the frame holds a block (recorded by an object document) rather than a leaf.

    Unreadable frames count as leaves: they depend on nothing anyone can name.
    """
    try:
        return object_kind(unframe(oid, frame)) == "b"
    except IntegrityError:
        return False


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

    async def locate(self, oid: ObjectId) -> Location | None:
        """Where the frame of ``oid`` is (object document, else pack document + idx)."""
        oid = ObjectId(oid)
        loc = await self._index.locate(self._user, oid)
        if loc is not None:
            return loc
        pack = (await self._index.packs_of(self._user, [oid])).get(oid)
        if pack is None:
            return None
        try:
            entry = (await self._blobs.pack_index(pack)).get(oid)
        except NotFoundError as exc:
            raise CorruptObjectError(
                f"object {oid.hex()}: the idx of its pack {pack} is missing", oid.hex()
            ) from exc
        if entry is None:
            raise CorruptObjectError(
                f"object {oid.hex()}: its pack {pack} does not hold it", oid.hex()
            )
        return Location(pack, *entry)

    async def _read(self, oid: ObjectId, loc: Location) -> bytes:
        try:
            return await self._blobs.read_object(oid, loc.pack, loc.offset, loc.length)
        except NotFoundError as exc:
            raise CorruptObjectError(
                f"object {oid.hex()}: its pack {loc.pack} is missing", oid.hex()
            ) from exc

    async def get(self, oid: ObjectId) -> bytes | None:
        oid = ObjectId(oid)
        loc = await self.locate(oid)
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
        blocks = {oid for oid, data in frames if is_block_frame(oid, data)}
        leaves = [oid for oid in info.entries if oid not in blocks]
        if leaves:  # leaves first: a block's document comes after its chunks'
            await self._index.put_pack(self._user, info.name, leaves)
        if blocks:
            await self._index.put_objects(
                self._user,
                (
                    (oid, Location(info.name, *info.entries[oid]))
                    for oid in info.entries
                    if oid in blocks
                ),
            )

    async def has(self, oid: ObjectId) -> bool:
        oid = ObjectId(oid)
        if await self._index.locate(self._user, oid) is not None:
            return True
        return oid in await self._index.packs_of(self._user, [oid])

    async def has_many(self, oids: Iterable[ObjectId]) -> set[ObjectId]:
        wanted = {ObjectId(o) for o in oids}
        return wanted - await self._index.missing(self._user, wanted) if wanted else set()

    async def delete(self, oid: ObjectId) -> bool:
        return await self._index.delete_object(self._user, ObjectId(oid))

    async def list(self) -> AsyncIterator[ObjectId]:
        async for oid in self._index.list_objects(self._user):
            yield oid

    async def close(self) -> None:
        await self._blobs.close()
