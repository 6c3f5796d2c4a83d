"""The remote index in Cosmos DB: where each object's bytes are, each session's blocks and
session documents for listing. Payloads never go into Cosmos DB (they live in Blob packs).

Documents (``<pk>`` is the configured partition key field; partitions: ``cosmos_common``)::

    block    {"id": <block hex>, "type": "block", <pk>: "<u>_<sid>", "user_id", "session_id",
              "block_type", "sequence", "timestamp": iso, "timestamp_ns": "<int>",
              "parents": [hex], "visibility", "org_id", "team_ids", "pack", "offset", "length"}
    object   {"id": <hex>, "type": "object", <pk>: "<u>_#objects", "user_id", "pack", "offset",
              "length"}                         (blocks; any object in remotes of format 1)
    pack     {"id": "pack:<name>:<part>", "type": "pack", <pk>: "<u>_#packs", "user_id",
              "pack": <name>, "part": <int>, "objects": [hex, ...]}
                                                (the leaf objects -- chunks, links, anything
                                                that is not a block -- of an uploaded pack,
                                                at most PACK_DOC_OBJECTS per document; their
                                                offsets are in the pack's idx blob)
    session  {"id": <sid>, "type": "session", <pk>: "<u>_#sessions", "user_id", "session_id",
              "project_slug", "name", "created", "updated", "created_ns", "updated_ns",
              "head", "visibility", "org_id", "team_ids", "parent_session_id", "forked_from",
              "sort_key", "summary": "<the catalog document as JSON text>"}

Nanosecond times are strings (Cosmos DB numbers are doubles: 2^53 < 1.7e18). The session
document keeps the catalog document as JSON text in ``summary`` so that it reads back exactly
(ints, key order); its listing fields are copies for queries. ``sort_key`` is
``<updated_ns, 20 digits>|<u>|<sid>``: unique, so listings page by key ("seek" paging: the
continuation token is the last key seen), which works the same within one partition and
across partitions and never uses OFFSET.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..core.ids import ObjectId, validate_project_slug, validate_session_id
from ..core.objects import Block
from ..errors import ConflictError, InvalidInputError, NotFoundError
from .azure_errors import PreconditionFailedError, cosmos_errors
from .catalog import CatalogStore
from .cosmos_common import (
    check_size,
    iso,
    objects_partition,
    packs_partition,
    pk_field,
    query_all,
    query_iter,
    query_page,
    read_item,
    session_partition,
    sessions_partition,
    strip_system,
    user_key,
)
from .visibility import Access, Reader, can_read

if TYPE_CHECKING:
    from azure.cosmos.aio import ContainerProxy

__all__ = ["CosmosCatalogStore", "CosmosIndex", "Location", "Page"]

BATCH_OPS = 100  # Cosmos DB: at most 100 operations in one transactional batch
LOOKUP_SLICE = 1000  # ids per ARRAY_CONTAINS(@ids, ...) query (about 67 KB of parameters)
PACK_DOC_OBJECTS = 2000  # leaf ids per pack document (about 135 KB of JSON)
CONCURRENCY = 4
MAX_LIMIT = 1000
UNLIST_ROUNDS = 16


@dataclass(frozen=True, slots=True)
class Location:
    """Where an object's frame is: ``length`` bytes at ``offset`` of pack ``pack``."""

    pack: str
    offset: int
    length: int

    @classmethod
    def of(cls, doc: Mapping[str, Any]) -> Location:
        return cls(str(doc["pack"]), int(doc["offset"]), int(doc["length"]))


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a listing; pass ``continuation`` back for the next (``None``: the end)."""

    items: list[dict[str, Any]]
    continuation: str | None = None


def _slices(items: Sequence[str], size: int = LOOKUP_SLICE) -> list[Sequence[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _encode_token(key: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": key}).encode()).decode()


def _decode_token(token: str | None) -> str | None:
    if token is None:
        return None
    try:
        value = json.loads(base64.urlsafe_b64decode(token.encode()))
        key = value["after"]
    except (binascii.Error, ValueError, TypeError, KeyError) as exc:
        raise InvalidInputError("not a continuation token of this listing") from exc
    if not isinstance(key, str):
        raise InvalidInputError("not a continuation token of this listing")
    return key


def _check_limit(limit: int) -> int:
    if not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidInputError(f"limit must be an int in 1..{MAX_LIMIT}")
    return limit


class CosmosIndex:
    """Block, object-location and session documents in one Cosmos DB container."""

    def __init__(
        self,
        container: ContainerProxy,
        *,
        partition_key_path: str = "/partitionKey",
        concurrency: int = CONCURRENCY,
    ) -> None:
        self.container = container
        self.pk = pk_field(partition_key_path)
        self.partition_key_path = partition_key_path
        self._sem = asyncio.Semaphore(concurrency)

    # ------------------------------------------------------------------ writes
    async def _upsert_all(self, partition: str, docs: Sequence[dict[str, Any]]) -> None:
        """Upsert ``docs`` of one partition in transactional batches of <= 100 operations."""

        async def run(chunk: Sequence[dict[str, Any]]) -> None:
            ops = [("upsert", (d,)) for d in chunk]
            async with self._sem:
                with cosmos_errors(f"write {len(ops)} documents"):
                    await self.container.execute_item_batch(ops, partition_key=partition)

        await asyncio.gather(
            *(run(docs[i : i + BATCH_OPS]) for i in range(0, len(docs), BATCH_OPS))
        )

    def block_doc(
        self, user_id: str, session_id: str, block: Block, loc: Location, access: Access
    ) -> dict[str, Any]:
        """The index document of ``block`` stored at ``loc``."""
        doc: dict[str, Any] = {
            "id": block.block_id,
            "type": "block",
            self.pk: session_partition(user_id, session_id),
            "user_id": user_id,
            "session_id": session_id,
            "block_type": block.block_type.value,
            "sequence": block.sequence,
            "timestamp": iso(block.timestamp_ns),
            "timestamp_ns": str(block.timestamp_ns),
            "parents": [p.hex() for p in block.parents],
            "visibility": access.visibility,
            "org_id": access.org_id,
            "team_ids": list(access.team_ids),
            "pack": loc.pack,
            "offset": loc.offset,
            "length": loc.length,
        }
        if block.session_id != session_id:
            doc["block_session_id"] = block.session_id  # shared history of a fork
        check_size(doc)
        return doc

    async def put_blocks(
        self,
        user_id: str,
        session_id: str,
        blocks: Iterable[tuple[Block, Location]],
        access: Access | None = None,
    ) -> int:
        """Index ``blocks`` of a session (idempotent upserts); returns how many."""
        access = access or Access()
        docs = [self.block_doc(user_id, session_id, b, loc, access) for b, loc in blocks]
        await self._upsert_all(session_partition(user_id, session_id), docs)
        return len(docs)

    async def put_objects(
        self, user_id: str, locations: Iterable[tuple[ObjectId, Location]]
    ) -> int:
        """Record where objects are (idempotent upserts into ``<u>_#objects``)."""
        partition = objects_partition(user_id)
        docs = [
            {
                "id": ObjectId(oid).hex(),
                "type": "object",
                self.pk: partition,
                "user_id": user_id,
                "pack": loc.pack,
                "offset": loc.offset,
                "length": loc.length,
            }
            for oid, loc in locations
        ]
        await self._upsert_all(partition, docs)
        return len(docs)

    def pack_docs(
        self, user_id: str, pack: str, leaves: Iterable[ObjectId]
    ) -> list[dict[str, Any]]:
        """The pack documents listing ``leaves`` (in order, duplicates once) as held by ``pack``."""
        ids = list(dict.fromkeys(ObjectId(o).hex() for o in leaves))
        partition = packs_partition(user_id)
        docs = []
        for part, start in enumerate(range(0, len(ids), PACK_DOC_OBJECTS)):
            doc = {
                "id": f"pack:{pack}:{part}",
                "type": "pack",
                self.pk: partition,
                "user_id": user_id,
                "pack": pack,
                "part": part,
                "objects": ids[start : start + PACK_DOC_OBJECTS],
            }
            check_size(doc)
            docs.append(doc)
        return docs

    async def put_pack(self, user_id: str, pack: str, leaves: Iterable[ObjectId]) -> int:
        """Record that ``pack`` (uploaded: pack, then idx) holds the leaf objects ``leaves``.

        Leaves depend on nothing, so the documents go in any order (concurrent upserts,
        idempotent). Returns how many documents were written.
        """
        docs = self.pack_docs(user_id, pack, leaves)

        async def one(doc: dict[str, Any]) -> None:
            async with self._sem:
                with cosmos_errors(f"write pack document {doc['id']}"):
                    await self.container.upsert_item(doc)

        await asyncio.gather(*(one(d) for d in docs))
        return len(docs)

    _PACKS_SQL = (
        "SELECT c.pack, ARRAY(SELECT VALUE i FROM i IN c.objects WHERE ARRAY_CONTAINS(@ids, i)) "
        "AS found FROM c WHERE c.type = 'pack' AND "
        "EXISTS(SELECT VALUE i FROM i IN c.objects WHERE ARRAY_CONTAINS(@ids, i))"
    )

    async def packs_of(self, user_id: str, oids: Iterable[ObjectId]) -> dict[ObjectId, str]:
        """The pack named by a pack document for each of ``oids`` that one lists.

        One partition-scoped query per ``LOOKUP_SLICE`` ids (concurrent); the offsets are
        in the packs' idx blobs.
        """
        ids = sorted({ObjectId(o).hex() for o in oids})
        partition = packs_partition(user_id)

        async def run(chunk: Sequence[str]) -> list[dict[str, Any]]:
            params = [{"name": "@ids", "value": list(chunk)}]
            async with self._sem:
                return await query_all(self.container, self._PACKS_SQL, params, partition=partition)

        out: dict[ObjectId, str] = {}
        for rows in await asyncio.gather(*(run(c) for c in _slices(ids))):
            for row in rows:
                for hexid in row.get("found") or ():
                    out.setdefault(ObjectId.from_hex(str(hexid)), str(row["pack"]))
        return out

    async def list_packs(self, user_id: str) -> AsyncIterator[tuple[str, list[ObjectId]]]:
        """Every pack document of the user as ``(pack name, leaf ids)`` (20 per page: each
        is up to ~135 KB, and a page of a Cosmos DB query is at most 4 MB)."""
        sql = "SELECT c.pack, c.objects FROM c WHERE c.type = 'pack'"
        async for doc in query_iter(
            self.container, sql, partition=packs_partition(user_id), page_size=20
        ):
            yield str(doc["pack"]), [ObjectId.from_hex(str(h)) for h in doc.get("objects") or ()]

    async def unlist(self, user_id: str, oid: ObjectId) -> bool:
        """Remove ``oid`` from every pack document listing it; ``True`` if one did.

        Each document is replaced (or deleted when it lists nothing else) with its etag as
        the precondition; a document another writer changed meanwhile is read again.
        """
        from azure.core import MatchConditions

        hexid = ObjectId(oid).hex()
        partition = packs_partition(user_id)
        sql = "SELECT * FROM c WHERE c.type = 'pack' AND ARRAY_CONTAINS(c.objects, @id)"
        params = [{"name": "@id", "value": hexid}]
        removed = False
        for _ in range(UNLIST_ROUNDS):
            docs = await query_all(self.container, sql, params, partition=partition)
            if not docs:
                return removed
            try:
                for doc in docs:
                    rest = [h for h in doc.get("objects") or () if h != hexid]
                    cond = {"etag": doc["_etag"], "match_condition": MatchConditions.IfNotModified}
                    with cosmos_errors(f"update pack document {doc['id']}"):
                        if rest:
                            new = {**strip_system(doc), "objects": rest}
                            await self.container.replace_item(doc["id"], new, **cond)
                        else:
                            await self.container.delete_item(
                                doc["id"], partition_key=partition, **cond
                            )
                    removed = True
            except (PreconditionFailedError, NotFoundError):
                continue  # changed by another writer: read again
        raise ConflictError(f"object {hexid}: pack documents keep changing; try again")

    async def delete_object(self, user_id: str, oid: ObjectId) -> bool:
        """Forget an object (its object document and its pack listings); ``True`` if it
        was recorded."""
        try:
            with cosmos_errors("delete object document"):
                await self.container.delete_item(
                    ObjectId(oid).hex(), partition_key=objects_partition(user_id)
                )
            found = True
        except NotFoundError:
            found = False
        return await self.unlist(user_id, oid) or found

    # ------------------------------------------------------------------ object lookups
    async def locate(self, user_id: str, oid: ObjectId) -> Location | None:
        """The location of one object (a point read), or ``None``."""
        doc = await read_item(self.container, ObjectId(oid).hex(), objects_partition(user_id))
        return None if doc is None or doc.get("type") != "object" else Location.of(doc)

    async def _select_ids(
        self, partition: str, kind: str, ids: Sequence[str]
    ) -> list[dict[str, Any]]:
        sql = (
            "SELECT c.id, c.pack, c.offset, c.length FROM c "
            "WHERE c.type = @type AND ARRAY_CONTAINS(@ids, c.id)"
        )

        async def run(chunk: Sequence[str]) -> list[dict[str, Any]]:
            params: list[dict[str, Any]] = [
                {"name": "@type", "value": kind},
                {"name": "@ids", "value": list(chunk)},
            ]
            async with self._sem:
                return await query_all(self.container, sql, params, partition=partition)

        results = await asyncio.gather(*(run(s) for s in _slices(ids)))
        return [d for r in results for d in r]

    async def locate_many(self, user_id: str, oids: Iterable[ObjectId]) -> dict[ObjectId, Location]:
        """Locations recorded by object documents (partition-scoped ``ARRAY_CONTAINS``
        queries, ``LOOKUP_SLICE`` ids each); leaves listed by pack documents are not here
        (:meth:`packs_of`)."""
        ids = sorted({ObjectId(o).hex() for o in oids})
        docs = await self._select_ids(objects_partition(user_id), "object", ids)
        return {ObjectId.from_hex(d["id"]): Location.of(d) for d in docs}

    async def missing(self, user_id: str, oids: Iterable[ObjectId]) -> set[ObjectId]:
        """The subset of ``oids`` recorded neither by an object nor by a pack document."""
        wanted = {ObjectId(o) for o in oids}
        rest = wanted - set(await self.locate_many(user_id, wanted))
        return rest - set(await self.packs_of(user_id, rest)) if rest else rest

    async def missing_blocks(
        self, user_id: str, session_id: str, oids: Iterable[ObjectId]
    ) -> set[ObjectId]:
        """The subset of ``oids`` with no block document in the session's partition."""
        wanted = {ObjectId(o) for o in oids}
        ids = sorted(o.hex() for o in wanted)
        docs = await self._select_ids(session_partition(user_id, session_id), "block", ids)
        return wanted - {ObjectId.from_hex(d["id"]) for d in docs}

    async def list_objects(self, user_id: str) -> AsyncIterator[ObjectId]:
        """Every recorded object id of the user (object documents, then pack documents;
        each id once)."""
        seen: set[ObjectId] = set()
        sql = "SELECT VALUE c.id FROM c WHERE c.type = 'object'"
        async for hexid in query_iter(
            self.container, sql, partition=objects_partition(user_id), page_size=1000
        ):
            oid = ObjectId.from_hex(str(hexid))
            seen.add(oid)
            yield oid
        async for _, leaves in self.list_packs(user_id):
            for oid in leaves:
                if oid not in seen:
                    seen.add(oid)
                    yield oid

    # ------------------------------------------------------------------ blocks
    _BLOCKS_SQL = (
        "SELECT * FROM c WHERE c.type = 'block' AND c.session_id = @sid "
        "AND c.sequence > @seq ORDER BY c.sequence"
    )

    async def blocks_since(
        self, user_id: str, session_id: str, sequence: int = 0, *, page_size: int = 500
    ) -> list[dict[str, Any]]:
        """Block documents of a session with ``sequence`` greater than ``sequence``, in order.

        One partition-scoped query, read page by page (continuation tokens).
        """
        params: list[dict[str, Any]] = [
            {"name": "@sid", "value": session_id},
            {"name": "@seq", "value": sequence},
        ]
        partition = session_partition(user_id, session_id)
        return [
            strip_system(d)
            async for d in query_iter(
                self.container, self._BLOCKS_SQL, params, partition=partition, page_size=page_size
            )
        ]

    async def blocks_page(
        self,
        user_id: str,
        session_id: str,
        sequence: int = 0,
        *,
        limit: int = 500,
        continuation: str | None = None,
    ) -> Page:
        """One page of :meth:`blocks_since`, resumable with the Cosmos continuation token."""
        params: list[dict[str, Any]] = [
            {"name": "@sid", "value": session_id},
            {"name": "@seq", "value": sequence},
        ]
        items, token = await query_page(
            self.container,
            self._BLOCKS_SQL,
            params,
            partition=session_partition(user_id, session_id),
            limit=_check_limit(limit),
            continuation=continuation,
        )
        return Page([strip_system(d) for d in items], token)

    # ------------------------------------------------------------------ sessions
    def session_doc(
        self,
        user_id: str,
        session_id: str,
        summary: Mapping[str, Any],
        head: ObjectId | None = None,
    ) -> dict[str, Any]:
        """The session document for a catalog ``summary`` (see the module docstring)."""
        validate_session_id(session_id)
        access = Access.of(summary)
        now = time.time_ns()
        try:
            created_ns = int(summary.get("created_ns") or now)
            updated_ns = int(summary.get("updated_ns") or created_ns)
        except (TypeError, ValueError) as exc:
            raise InvalidInputError("created_ns / updated_ns must be integers") from exc
        slug = summary.get("project_slug")
        if slug is not None:
            validate_project_slug(slug)
        doc: dict[str, Any] = {
            "id": session_id,
            "type": "session",
            self.pk: sessions_partition(user_id),
            "user_id": user_id,
            "session_id": session_id,
            "project_slug": slug,
            "name": summary.get("name"),
            "created": iso(created_ns),
            "updated": iso(updated_ns),
            "created_ns": str(created_ns),
            "updated_ns": str(updated_ns),
            "head": None if head is None else ObjectId(head).hex(),
            "visibility": access.visibility,
            "org_id": access.org_id,
            "team_ids": list(access.team_ids),
            "parent_session_id": summary.get("parent_session_id"),
            "forked_from": summary.get("forked_from"),
            "sort_key": f"{updated_ns:020d}|{user_key(user_id)}|{session_id}",
            "summary": _to_json(summary),
        }
        check_size(doc)
        return doc

    async def put_session(
        self,
        user_id: str,
        session_id: str,
        summary: Mapping[str, Any],
        head: ObjectId | None = None,
        *,
        keep_head: bool = False,
    ) -> dict[str, Any]:
        """Upsert a session document; ``keep_head`` carries the stored head over."""
        if keep_head and head is None:
            old = await self.get_session(user_id, session_id)
            if old is not None and old.get("head"):
                head = ObjectId.from_hex(str(old["head"]))
        doc = self.session_doc(user_id, session_id, summary, head)
        with cosmos_errors(f"write session {session_id}"):
            await self.container.upsert_item(doc)
        return doc

    async def get_session(self, user_id: str, session_id: str) -> dict[str, Any] | None:
        """The session document (without system fields), or ``None``."""
        doc = await read_item(
            self.container, validate_session_id(session_id), sessions_partition(user_id)
        )
        return None if doc is None else strip_system(doc)

    async def delete_session(self, user_id: str, session_id: str) -> bool:
        try:
            with cosmos_errors(f"delete session {session_id}"):
                await self.container.delete_item(
                    validate_session_id(session_id), partition_key=sessions_partition(user_id)
                )
        except NotFoundError:
            return False
        return True

    async def _seek(
        self,
        where: list[str],
        params: list[dict[str, Any]],
        *,
        partition: str | None,
        limit: int,
        continuation: str | None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        after = _decode_token(continuation)
        if after is not None:
            where.append("c.sort_key < @after")
            params.append({"name": "@after", "value": after})
        sql = (
            f"SELECT TOP {_check_limit(limit) + 1} * FROM c WHERE {' AND '.join(where)} "
            "ORDER BY c.sort_key DESC"
        )
        rows = [
            strip_system(d)
            for d in await query_all(self.container, sql, params, partition=partition)
        ]
        if len(rows) > limit:
            rows = rows[:limit]
            return rows, _encode_token(str(rows[-1]["sort_key"]))
        return rows, None

    async def list_sessions(
        self,
        user_id: str,
        project_slug: str | None = None,
        limit: int = 100,
        continuation: str | None = None,
    ) -> Page:
        """The user's session documents, most recently updated first (one partition)."""
        where = ["c.type = 'session'"]
        params: list[dict[str, Any]] = []
        if project_slug is not None:
            where.append("c.project_slug = @slug")
            params.append({"name": "@slug", "value": validate_project_slug(project_slug)})
        rows, token = await self._seek(
            where,
            params,
            partition=sessions_partition(user_id),
            limit=limit,
            continuation=continuation,
        )
        return Page(rows, token)

    async def list_visible_sessions(
        self,
        reader: Reader,
        project_slug: str | None = None,
        limit: int = 100,
        continuation: str | None = None,
    ) -> Page:
        """Other users' sessions that ``reader`` may see (see ``visibility``), newest first.

        A fan-out query (sharing crosses users), filtered in the query and again by
        :func:`can_read`; a page may hold fewer than ``limit`` items.
        """
        user_key(reader.user_id)
        where = ["c.type = 'session'", "c.user_id != @reader"]
        params: list[dict[str, Any]] = [{"name": "@reader", "value": reader.user_id}]
        shared = ["c.visibility = 'public'"]
        if reader.org_id is not None:
            params.append({"name": "@org", "value": reader.org_id})
            shared.append("(c.org_id = @org AND c.visibility = 'org')")
            if reader.team_ids:
                params.append({"name": "@teams", "value": list(reader.team_ids)})
                shared.append(
                    "(c.org_id = @org AND c.visibility = 'team' AND EXISTS("
                    "SELECT VALUE t FROM t IN c.team_ids WHERE ARRAY_CONTAINS(@teams, t)))"
                )
        where.append(f"({' OR '.join(shared)})")
        if project_slug is not None:
            where.append("c.project_slug = @slug")
            params.append({"name": "@slug", "value": validate_project_slug(project_slug)})
        rows, token = await self._seek(
            where, params, partition=None, limit=limit, continuation=continuation
        )
        visible = [d for d in rows if can_read(d, reader.user_id, reader.org_id, reader.team_ids)]
        return Page(visible, token)

    async def get_visible_session(
        self, reader: Reader, owner_user_id: str, session_id: str
    ) -> dict[str, Any] | None:
        """Another user's session document if ``reader`` may see it, else ``None``."""
        doc = await self.get_session(owner_user_id, session_id)
        if doc is None or not can_read(doc, reader.user_id, reader.org_id, reader.team_ids):
            return None
        return doc


class CosmosCatalogStore(CatalogStore):
    """The :class:`CatalogStore` of one user on the session documents of a :class:`CosmosIndex`."""

    def __init__(self, index: CosmosIndex, user_id: str) -> None:
        user_key(user_id)
        self._index = index
        self._user = user_id

    def __repr__(self) -> str:
        return f"CosmosCatalogStore(user_id={self._user!r})"

    async def get(self, session_id: str) -> dict[str, Any] | None:
        doc = await self._index.get_session(self._user, session_id)
        return None if doc is None else _summary(doc)

    async def put(self, session_id: str, doc: dict[str, Any]) -> None:
        await self._index.put_session(self._user, session_id, doc, keep_head=True)

    async def delete(self, session_id: str) -> None:
        await self._index.delete_session(self._user, session_id)

    async def list(self) -> AsyncIterator[dict[str, Any]]:
        sql = "SELECT * FROM c WHERE c.type = 'session'"
        async for doc in query_iter(
            self._index.container, sql, partition=sessions_partition(self._user)
        ):
            yield _summary(doc)


def _to_json(summary: Mapping[str, Any]) -> str:
    try:
        return json.dumps(dict(summary), separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"session summary is not JSON: {exc}") from exc


def _summary(doc: Mapping[str, Any]) -> dict[str, Any]:
    raw = doc.get("summary")
    if isinstance(raw, str):
        try:
            value = json.loads(raw)
        except ValueError:
            value = None
        if isinstance(value, dict):
            return value
    return {k: v for k, v in strip_system(doc).items() if k not in ("summary", "sort_key")}
