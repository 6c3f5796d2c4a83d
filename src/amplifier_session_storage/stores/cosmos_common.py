"""What the Cosmos DB stores share: partitions, document ids, queries and the container.

Every document lives in one container whose partition key path comes from the config
(default ``/partitionKey``). Partition key values (``<u>`` is the user id with ``%`` and
``_`` percent-escaped, so that no two (user, session) pairs can produce the same value)::

    <u>_<session_id>     a session's ref doc, its reflog docs and its block docs
    <u>_#refs            every other ref of the user (remotes/..., ...) and their reflogs
    <u>_#objects         object location docs of blocks (pack, offset, length)
    <u>_#packs           pack docs: the leaf objects (chunks, links) each uploaded pack holds
    <u>_#sessions        session docs (the listing / catalog)

``#`` cannot occur in a session id, so the special partitions never collide with a
session's. Every read of one user's data names its partition; the only fan-out queries
are the listing of a user's refs (refs live with their sessions) and of other users'
shared sessions.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from blake3 import blake3

from ..compat.config import StorageConfig
from ..core.ids import validate_name, validate_session_id
from ..core.refnames import validate_ref_name
from ..errors import ConfigurationError, InvalidInputError, NotFoundError
from .azure_errors import cosmos_errors

if TYPE_CHECKING:
    from azure.cosmos.aio import ContainerProxy, CosmosClient

__all__ = [
    "INDEXING_POLICY",
    "MAX_DOC_BYTES",
    "check_size",
    "ensure_container",
    "get_container",
    "iso",
    "log_doc_id",
    "objects_partition",
    "packs_partition",
    "pk_field",
    "query_all",
    "query_iter",
    "query_page",
    "read_item",
    "ref_doc_id",
    "ref_partition",
    "refs_partition",
    "session_partition",
    "sessions_partition",
    "strip_system",
    "user_key",
]

MAX_DOC_BYTES = 256 * 1024  # Cosmos DB allows 2 MB; our documents are index entries, never payloads
MAX_ID_LEN = 255
SYSTEM_FIELDS = ("_rid", "_self", "_etag", "_attachments", "_ts")

# The seed README's policy plus exclusions for fields that are read but never queried.
INDEXING_POLICY: dict[str, Any] = {
    "indexingMode": "consistent",
    "automatic": True,
    "includedPaths": [{"path": "/*"}],
    "excludedPaths": [
        {"path": "/data/*"},
        {"path": '/"_etag"/?'},
        {"path": "/summary/?"},
        {"path": "/parents/*"},
        {"path": "/pack/?"},
        {"path": "/offset/?"},
        {"path": "/length/?"},
        {"path": "/old/?"},
        {"path": "/new/?"},
        {"path": "/reason/?"},
        {"path": "/created_ns/?"},
        {"path": "/updated_ns/?"},
        {"path": "/time_ns/?"},
        {"path": "/part/?"},
    ],
    "compositeIndexes": [
        [
            {"path": "/user_id", "order": "ascending"},
            {"path": "/timestamp", "order": "descending"},
        ],
        [
            {"path": "/session_id", "order": "ascending"},
            {"path": "/sequence", "order": "ascending"},
        ],
        [
            {"path": "/org_id", "order": "ascending"},
            {"path": "/visibility", "order": "ascending"},
            {"path": "/timestamp", "order": "descending"},
        ],
    ],
}


def pk_field(path: str) -> str:
    """The document field of a partition key path (only top-level paths are supported)."""
    if not isinstance(path, str) or not path.startswith("/") or len(path) < 2 or "/" in path[1:]:
        raise ConfigurationError(f"partition key path must be a top-level path like /pk: {path!r}")
    field = path[1:]
    if field in ("id", "_rid", "_etag", "_ts", "_self"):
        raise ConfigurationError(f"partition key path {path!r} names a system field")
    return field


def user_key(user_id: str) -> str:
    """The user id as it appears in partition key values (validated, ``%`` and ``_`` escaped)."""
    validate_name(user_id, "user id")
    return user_id.replace("%", "%25").replace("_", "%5F")


def session_partition(user_id: str, session_id: str) -> str:
    return f"{user_key(user_id)}_{validate_session_id(session_id)}"


def objects_partition(user_id: str) -> str:
    return f"{user_key(user_id)}_#objects"


def packs_partition(user_id: str) -> str:
    return f"{user_key(user_id)}_#packs"


def refs_partition(user_id: str) -> str:
    return f"{user_key(user_id)}_#refs"


def sessions_partition(user_id: str) -> str:
    return f"{user_key(user_id)}_#sessions"


def ref_partition(user_id: str, name: str) -> str:
    """``sessions/<id>`` lives with its session's blocks; every other ref in ``<u>_#refs``."""
    parts = validate_ref_name(name).split("/")
    if len(parts) == 2 and parts[0] == "sessions":
        return session_partition(user_id, parts[1])
    return refs_partition(user_id)


def _name_hash(name: str) -> str:
    return blake3(name.encode()).hexdigest()[:40]


def ref_doc_id(name: str) -> str:
    """``ref:<name with / as |>`` (``|`` never occurs in a ref name); hashed when too long."""
    readable = "ref:" + validate_ref_name(name).replace("/", "|")
    return readable if len(readable) <= MAX_ID_LEN else "refh:" + _name_hash(name)


def log_doc_id(name: str, seq: int) -> str:
    """The id of reflog entry number ``seq`` of ``name`` (unique: a racing writer gets 409)."""
    return f"log:{_name_hash(name)}:{seq:012d}"


def iso(ns: int) -> str:
    """An ISO-8601 UTC timestamp (microseconds) for display and range filters."""
    return datetime.fromtimestamp(ns // 1000 / 1e6, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def check_size(doc: Mapping[str, Any]) -> int:
    """The JSON size of ``doc``; InvalidInputError when it is not far below Cosmos' 2 MB."""
    n = len(json.dumps(doc, separators=(",", ":")).encode())
    if n > MAX_DOC_BYTES:
        raise InvalidInputError(f"document {doc.get('id')!r} is {n} bytes (limit {MAX_DOC_BYTES})")
    return n


def strip_system(doc: Mapping[str, Any]) -> dict[str, Any]:
    """``doc`` without Cosmos DB's system properties."""
    return {k: v for k, v in doc.items() if k not in SYSTEM_FIELDS}


# ---------------------------------------------------------------------- SDK calls
async def read_item(
    container: ContainerProxy, item_id: str, partition: str
) -> dict[str, Any] | None:
    """A point read; ``None`` when the document does not exist."""
    try:
        with cosmos_errors(f"read {item_id}"):
            doc: dict[str, Any] = await container.read_item(item_id, partition_key=partition)
    except NotFoundError:
        return None
    return doc


async def query_iter(
    container: ContainerProxy,
    sql: str,
    parameters: Sequence[Mapping[str, Any]] = (),
    *,
    partition: str | None = None,
    page_size: int | None = None,
) -> AsyncIterator[dict[str, Any]]:
    """Every result of a query (partition-scoped when ``partition`` is given), page by page."""
    kwargs: dict[str, Any] = {"query": sql, "parameters": [dict(p) for p in parameters]}
    if partition is not None:
        kwargs["partition_key"] = partition
    if page_size is not None:
        kwargs["max_item_count"] = page_size
    with cosmos_errors("query"):
        async for item in container.query_items(**kwargs):
            yield item


async def query_all(
    container: ContainerProxy,
    sql: str,
    parameters: Sequence[Mapping[str, Any]] = (),
    *,
    partition: str | None = None,
    page_size: int | None = None,
) -> list[Any]:
    return [
        item
        async for item in query_iter(
            container, sql, parameters, partition=partition, page_size=page_size
        )
    ]


async def query_page(
    container: ContainerProxy,
    sql: str,
    parameters: Sequence[Mapping[str, Any]],
    *,
    partition: str,
    limit: int,
    continuation: str | None,
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of a partition-scoped query and the SDK's continuation token (or None)."""
    with cosmos_errors("query page"):
        pager: Any = container.query_items(
            query=sql,
            parameters=[dict(p) for p in parameters],
            partition_key=partition,
            max_item_count=limit,
        ).by_page(continuation)
        try:
            page = await pager.__anext__()
        except StopAsyncIteration:
            return [], None
        items = [item async for item in page]
        token = pager.continuation_token
    return items, (str(token) if token else None)


# ---------------------------------------------------------------------- the container
def get_container(config: StorageConfig, client: CosmosClient) -> ContainerProxy:
    """The configured container (not created; see :func:`ensure_container`)."""
    return client.get_database_client(config.cosmos_database).get_container_client(
        config.cosmos_container
    )


async def ensure_container(config: StorageConfig, client: CosmosClient) -> ContainerProxy:
    """Create the database and container if missing (idempotent: ``remote init``).

    The container gets the partition key path of ``config`` and :data:`INDEXING_POLICY`; an
    existing container whose partition key path differs is a :class:`ConfigurationError`.
    """
    from azure.cosmos import PartitionKey

    path = config.cosmos_partition_key_path
    pk_field(path)
    with cosmos_errors(f"create database {config.cosmos_database}"):
        database = await client.create_database_if_not_exists(config.cosmos_database)
    with cosmos_errors(f"create container {config.cosmos_container}"):
        container = await database.create_container_if_not_exists(
            config.cosmos_container,
            partition_key=PartitionKey(path=path),
            indexing_policy=INDEXING_POLICY,
        )
        props = await container.read()
    paths = list((props.get("partitionKey") or {}).get("paths") or [])
    if paths != [path]:
        raise ConfigurationError(
            f"container {config.cosmos_container!r} is partitioned by {paths}, "
            f"the configuration says {path!r}"
        )
    return container
