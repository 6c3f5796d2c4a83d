"""Refs and reflogs as Cosmos DB documents; every update is one etag-guarded transactional batch.

A ref document (partition: see ``cosmos_common.ref_partition``)::

    {"id": "ref:sessions|<sid>", "type": "ref", "<pk>": "<u>_<sid>", "user_id": ..., "name":
     "sessions/<sid>", "head": "<hex>" | null, "log_seq": n, "updated": iso, "updated_ns": "..."}

A reflog document, in the same partition::

    {"id": "log:<hash of name>:<seq>", "type": "reflog", "<pk>": ..., "user_id": ..., "ref":
     name, "seq": n, "old": hex|null, "new": hex|null, "time_ns": "<int>", "time": iso,
     "reason": "..."}

``set_if_equals`` reads the ref document, compares its head with ``old`` and then runs ONE
transactional batch in the ref's partition: ``replace`` with ``if_match_etag`` (or ``create``
when the document does not exist yet) plus ``create`` of reflog entry ``log_seq + 1``. Either
both are written or neither: a 412 (etag moved) or 409 (document or log entry created by a
racing writer) means the race was lost, and the value is read again.

Deleting a ref keeps its document with ``head: null`` (a tombstone), so ``log_seq`` keeps
counting, the reflog stays ordered and ``logged_refs`` still names the ref. Reflog entries
are ordered by ``seq``, not by client clocks.
"""

from __future__ import annotations

import builtins
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from ..core.ids import ObjectId
from ..core.refnames import validate_ref_name
from ..errors import ConflictError, InvalidInputError
from .azure_errors import cosmos_errors
from .base import ReflogEntry, RefStore
from .cosmos_common import (
    check_size,
    iso,
    log_doc_id,
    pk_field,
    query_all,
    query_iter,
    read_item,
    ref_doc_id,
    ref_partition,
    user_key,
)

if TYPE_CHECKING:
    from azure.cosmos.aio import ContainerProxy

__all__ = ["CosmosRefStore"]

MAX_REASON = 16 * 1024
MAX_CAS_ATTEMPTS = 16


def _hex(oid: ObjectId | None) -> str | None:
    return None if oid is None else ObjectId(oid).hex()


def _oid(value: Any) -> ObjectId | None:
    return None if value is None else ObjectId.from_hex(str(value))


class CosmosRefStore(RefStore):
    """A :class:`RefStore` for one user over a Cosmos DB container (see the module docstring)."""

    def __init__(
        self,
        container: ContainerProxy,
        user_id: str,
        *,
        partition_key_path: str = "/partitionKey",
        max_cas_attempts: int = MAX_CAS_ATTEMPTS,
    ) -> None:
        user_key(user_id)
        self._container = container
        self._user = user_id
        self._pk = pk_field(partition_key_path)
        self._attempts = max_cas_attempts

    def __repr__(self) -> str:
        return f"CosmosRefStore(user_id={self._user!r})"

    @property
    def user_id(self) -> str:
        return self._user

    async def _read(self, name: str) -> dict[str, Any] | None:
        return await read_item(self._container, ref_doc_id(name), ref_partition(self._user, name))

    async def get(self, name: str) -> ObjectId | None:
        doc = await self._read(validate_ref_name(name))
        return None if doc is None else _oid(doc.get("head"))

    async def set_if_equals(
        self, name: str, old: ObjectId | None, new: ObjectId | None, reason: str = ""
    ) -> bool:
        validate_ref_name(name)
        old_hex, new_hex = _hex(old), _hex(new)
        if not isinstance(reason, str) or len(reason) > MAX_REASON:
            raise InvalidInputError(f"reflog reason must be a string of <= {MAX_REASON} chars")
        partition = ref_partition(self._user, name)
        for _ in range(self._attempts):
            doc = await self._read(name)
            if (doc.get("head") if doc else None) != old_hex:
                return False
            seq = int(doc.get("log_seq", 0)) + 1 if doc else 1
            now = time.time_ns()
            ref_doc = {
                "id": ref_doc_id(name),
                "type": "ref",
                self._pk: partition,
                "user_id": self._user,
                "name": name,
                "head": new_hex,
                "log_seq": seq,
                "updated": iso(now),
                "updated_ns": str(now),
            }
            log_doc = {
                "id": log_doc_id(name, seq),
                "type": "reflog",
                self._pk: partition,
                "user_id": self._user,
                "ref": name,
                "seq": seq,
                "old": old_hex,
                "new": new_hex,
                "time_ns": str(now),
                "time": iso(now),
                "reason": reason,
            }
            check_size(ref_doc)
            check_size(log_doc)
            ops: list[Any] = (
                [("create", (ref_doc,))]
                if doc is None
                else [("replace", (ref_doc["id"], ref_doc), {"if_match_etag": doc["_etag"]})]
            )
            ops.append(("create", (log_doc,)))
            try:
                with cosmos_errors(f"update ref {name}"):
                    await self._container.execute_item_batch(ops, partition_key=partition)
            except ConflictError:
                continue  # lost a race (409/412): look at the new value
            return True
        return False

    async def list(self, prefix: str = "") -> AsyncIterator[tuple[str, ObjectId]]:
        # Refs live with their sessions: listing them is the one fan-out query of this store.
        sql = (
            "SELECT c.name, c.head FROM c WHERE c.type = 'ref' AND c.user_id = @user "
            "AND IS_STRING(c.head)"
        )
        params: list[dict[str, Any]] = [{"name": "@user", "value": self._user}]
        if prefix:
            sql += " AND STARTSWITH(c.name, @prefix)"
            params.append({"name": "@prefix", "value": prefix})
        rows = await query_all(self._container, sql, params)
        for row in sorted(rows, key=lambda r: str(r["name"])):
            head = _oid(row["head"])
            if head is not None and str(row["name"]).startswith(prefix):
                yield str(row["name"]), head

    async def reflog(self, name: str) -> builtins.list[ReflogEntry]:
        validate_ref_name(name)
        sql = (
            "SELECT * FROM c WHERE c.type = 'reflog' AND c.ref = @name AND c.user_id = @user "
            "ORDER BY c.seq"
        )
        params = [{"name": "@name", "value": name}, {"name": "@user", "value": self._user}]
        out: builtins.list[ReflogEntry] = []
        async for d in query_iter(
            self._container, sql, params, partition=ref_partition(self._user, name)
        ):
            out.append(
                ReflogEntry(_oid(d.get("old")), _oid(d.get("new")), int(d["time_ns"]), d["reason"])
            )
        return out

    async def logged_refs(self) -> builtins.list[str]:
        sql = "SELECT VALUE c.name FROM c WHERE c.type = 'ref' AND c.user_id = @user"
        rows = await query_all(self._container, sql, [{"name": "@user", "value": self._user}])
        return sorted({str(r) for r in rows})
