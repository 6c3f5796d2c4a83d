"""Proves the emulator harness behaves like real Azure where the stock emulators do not.

Uses the real SDKs (azure.cosmos.aio, azure.storage.blob.aio) against the
emulators of scripts/emulators (see docs/emulators.md).  Every Cosmos DB test
here covers a gap of the stock @vercel/cosmosdb-server that the launcher
corrects, or a call that the launcher refuses because it cannot reproduce it.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError
from azure.core.pipeline.transport import AioHttpTransport
from azure.cosmos import PartitionKey, exceptions
from azure.cosmos.aio import ContainerProxy, CosmosClient, DatabaseProxy
from azure.storage.blob import BlobBlock
from azure.storage.blob.aio import BlobServiceClient, ContainerClient

try:
    from tests.emulators import Emulators, ensure_emulators
except ImportError:  # tests/ itself on sys.path, or the repository root not on it
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from emulators import Emulators, ensure_emulators  # type: ignore[no-redef]

pytestmark = [pytest.mark.emulators, pytest.mark.asyncio]


@pytest.fixture(scope="module")
def emu(request: pytest.FixtureRequest) -> Iterator[Emulators]:
    """The session ``emulators`` fixture when registered, else a shared private set."""
    try:
        shared = request.getfixturevalue("emulators")
    except pytest.FixtureLookupError:
        shared = None
    if shared is not None:
        yield shared
        return
    try:
        cm = ensure_emulators()
        started = cm.__enter__()
    except Exception as exc:  # EmulatorError: fail loudly, never skip
        pytest.fail(f"Azure emulators unavailable: {exc}", pytrace=False)
    try:
        yield started
    finally:
        cm.__exit__(None, None, None)


# --------------------------------------------------------------------------
# Cosmos DB fixtures
# --------------------------------------------------------------------------


@pytest.fixture
async def cosmos(emu: Emulators) -> AsyncIterator[CosmosClient]:
    async with CosmosClient(
        emu.cosmos_endpoint, emu.cosmos_key, connection_verify=emu.cosmos_connection_verify
    ) as client:
        yield client


@pytest.fixture
async def database(cosmos: CosmosClient) -> DatabaseProxy:
    return await cosmos.create_database_if_not_exists("harness-gaps")


@pytest.fixture
async def container(database: DatabaseProxy) -> AsyncIterator[ContainerProxy]:
    name = f"c-{uuid.uuid4().hex[:12]}"
    ctr = await database.create_container(name, partition_key=PartitionKey(path="/pk"))
    yield ctr
    await database.delete_container(name)


async def collect(it: Any) -> list[Any]:
    return [item async for item in it]


def ids(items: list[dict[str, Any]]) -> list[str]:
    return [i["id"] for i in items]


# --------------------------------------------------------------------------
# Point operations: 404 instead of 500
# --------------------------------------------------------------------------


async def test_read_missing_item_and_wrong_partition_key_are_404(container: ContainerProxy) -> None:
    await container.create_item({"id": "a", "pk": "p1", "v": 1})
    assert (await container.read_item("a", partition_key="p1"))["v"] == 1
    with pytest.raises(exceptions.CosmosResourceNotFoundError):
        await container.read_item("missing", partition_key="p1")
    with pytest.raises(exceptions.CosmosResourceNotFoundError):
        await container.read_item("a", partition_key="p2")  # right id, wrong partition


async def test_replace_delete_patch_of_missing_item_are_404(container: ContainerProxy) -> None:
    await container.create_item({"id": "a", "pk": "p1"})
    with pytest.raises(exceptions.CosmosResourceNotFoundError):
        await container.replace_item("missing", {"id": "missing", "pk": "p1"})
    with pytest.raises(exceptions.CosmosResourceNotFoundError):
        await container.delete_item("missing", partition_key="p1")
    with pytest.raises(exceptions.CosmosResourceNotFoundError):
        await container.delete_item("a", partition_key="p2")
    with pytest.raises(exceptions.CosmosResourceNotFoundError):
        await container.patch_item("missing", "p1", [{"op": "set", "path": "/x", "value": 1}])
    await container.delete_item("a", partition_key="p1")
    with pytest.raises(exceptions.CosmosResourceNotFoundError):
        await container.delete_item("a", partition_key="p1")


async def test_create_duplicate_is_409_and_same_id_in_other_partition_is_allowed(
    container: ContainerProxy,
) -> None:
    await container.create_item({"id": "a", "pk": "p1"})
    with pytest.raises(exceptions.CosmosResourceExistsError):
        await container.create_item({"id": "a", "pk": "p1"})
    await container.create_item({"id": "a", "pk": "p2"})
    assert (await container.read_item("a", partition_key="p2"))["pk"] == "p2"


async def test_partition_key_values_are_typed(container: ContainerProxy) -> None:
    # real Cosmos DB keeps partition key 1 and "1" apart (the stock server merged them)
    await container.create_item({"id": "a", "pk": 1, "kind": "number"})
    await container.create_item({"id": "a", "pk": "1", "kind": "string"})
    assert (await container.read_item("a", partition_key=1))["kind"] == "number"
    assert (await container.read_item("a", partition_key="1"))["kind"] == "string"


async def test_item_over_2_mb_is_rejected_with_413(container: ContainerProxy) -> None:
    with pytest.raises(exceptions.CosmosHttpResponseError) as info:
        await container.upsert_item({"id": "big", "pk": "p1", "blob": "x" * (2 * 1024 * 1024)})
    assert info.value.status_code == 413


async def test_invalid_id_characters_are_rejected(container: ContainerProxy) -> None:
    # create_item validates ids in the SDK; a batch sends them to the server unchecked
    for bad in ("a/b", "a\\b", "a?b", "a#b"):
        with pytest.raises(exceptions.CosmosBatchOperationError) as info:
            await container.execute_item_batch([("create", ({"id": bad, "pk": "p1"},))], "p1")
        assert info.value.status_code == 400


# --------------------------------------------------------------------------
# Optimistic concurrency (etag / If-Match)
# --------------------------------------------------------------------------


async def test_etag_compare_and_swap_412(container: ContainerProxy) -> None:
    first = await container.create_item({"id": "a", "pk": "p1", "v": 1})
    second = await container.replace_item(
        "a",
        {"id": "a", "pk": "p1", "v": 2},
        etag=first["_etag"],
        match_condition=MatchConditions.IfNotModified,
    )
    assert second["_etag"] != first["_etag"]
    stale = first["_etag"]
    with pytest.raises(exceptions.CosmosAccessConditionFailedError):
        await container.replace_item(
            "a",
            {"id": "a", "pk": "p1", "v": 3},
            etag=stale,
            match_condition=MatchConditions.IfNotModified,
        )
    with pytest.raises(exceptions.CosmosAccessConditionFailedError):
        await container.upsert_item(
            {"id": "a", "pk": "p1", "v": 3},
            etag=stale,
            match_condition=MatchConditions.IfNotModified,
        )
    with pytest.raises(exceptions.CosmosAccessConditionFailedError):
        await container.patch_item(
            "a",
            "p1",
            [{"op": "set", "path": "/v", "value": 3}],
            etag=stale,
            match_condition=MatchConditions.IfNotModified,
        )
    with pytest.raises(exceptions.CosmosAccessConditionFailedError):
        await container.delete_item(
            "a", partition_key="p1", etag=stale, match_condition=MatchConditions.IfNotModified
        )
    assert (await container.read_item("a", partition_key="p1"))["v"] == 2
    await container.delete_item(
        "a", partition_key="p1", etag=second["_etag"], match_condition=MatchConditions.IfNotModified
    )


async def test_concurrent_cas_exactly_one_writer_wins(container: ContainerProxy) -> None:
    base = await container.create_item({"id": "a", "pk": "p1", "n": 0})

    async def attempt(i: int) -> bool:
        try:
            await container.replace_item(
                "a",
                {"id": "a", "pk": "p1", "n": i},
                etag=base["_etag"],
                match_condition=MatchConditions.IfNotModified,
            )
            return True
        except exceptions.CosmosAccessConditionFailedError:
            return False

    results = await asyncio.gather(*(attempt(i) for i in range(1, 9)))
    assert results.count(True) == 1


async def test_patch_filter_predicate_keeps_string_case(container: ContainerProxy) -> None:
    await container.create_item({"id": "a", "pk": "p1", "state": "Open"})
    patched = await container.patch_item(
        "a",
        "p1",
        [{"op": "set", "path": "/n", "value": 1}],
        filter_predicate="FROM c WHERE c.state = 'Open'",
    )
    assert patched["n"] == 1
    with pytest.raises(exceptions.CosmosAccessConditionFailedError):
        await container.patch_item(
            "a",
            "p1",
            [{"op": "set", "path": "/n", "value": 2}],
            filter_predicate="FROM c WHERE c.state = 'open'",
        )


# --------------------------------------------------------------------------
# Queries
# --------------------------------------------------------------------------


async def test_query_with_partition_key_only_sees_that_partition(container: ContainerProxy) -> None:
    for pk, n in (("p1", 3), ("p2", 4), ("p3", 2)):
        for i in range(n):
            await container.create_item({"id": f"{pk}-{i}", "pk": pk, "i": i})
    # The WHERE clause does not name the partition key path (the stock server answered 400).
    got = await collect(container.query_items("SELECT * FROM c", partition_key="p2"))
    assert sorted(ids(got)) == [f"p2-{i}" for i in range(4)]
    got = await collect(
        container.query_items(
            "SELECT * FROM c WHERE c.i >= @min",
            parameters=[{"name": "@min", "value": 1}],
            partition_key="p1",
        )
    )
    assert sorted(ids(got)) == ["p1-1", "p1-2"]
    count = await collect(container.query_items("SELECT VALUE COUNT(1) FROM c", partition_key="p3"))
    assert count == [2]
    everything = await collect(container.query_items("SELECT * FROM c"))
    assert len(everything) == 9


async def test_continuation_token_paging_within_a_partition(container: ContainerProxy) -> None:
    for i in range(25):
        await container.create_item({"id": f"i{i:02d}", "pk": "p1", "i": i})
    await container.create_item({"id": "other", "pk": "p2", "i": 0})

    pages = container.query_items(
        "SELECT * FROM c ORDER BY c.i", partition_key="p1", max_item_count=10
    ).by_page()
    first = await collect(await pages.__anext__())
    token = pages.continuation_token
    assert ids(first) == [f"i{i:02d}" for i in range(10)]
    assert token

    # resume from the token in a fresh iterator, as a stateless API would
    resumed = container.query_items(
        "SELECT * FROM c ORDER BY c.i", partition_key="p1", max_item_count=10
    ).by_page(token)
    rest: list[list[dict[str, Any]]] = []
    async for page in resumed:
        rest.append(await collect(page))
    assert [len(p) for p in rest] == [10, 5]
    assert ids(first) + [i["id"] for p in rest for i in p] == [f"i{i:02d}" for i in range(25)]


async def test_offset_limit_and_distinct(container: ContainerProxy) -> None:
    for i in range(10):
        await container.create_item({"id": f"i{i}", "pk": "p1", "i": i, "colour": "rgb"[i % 3]})
    got = await collect(
        container.query_items(
            "SELECT VALUE c.i FROM c ORDER BY c.i OFFSET 2 LIMIT 3", partition_key="p1"
        )
    )
    assert got == [2, 3, 4]
    got = await collect(
        container.query_items(
            "SELECT VALUE c.i FROM c ORDER BY c.i DESC OFFSET @o LIMIT @l",
            parameters=[{"name": "@o", "value": 8}, {"name": "@l", "value": 5}],
            partition_key="p1",
        )
    )
    assert got == [1, 0]
    colours = await collect(
        container.query_items("SELECT DISTINCT VALUE c.colour FROM c", partition_key="p1")
    )
    assert sorted(colours) == ["b", "g", "r"]
    rows = await collect(
        container.query_items("SELECT DISTINCT c.colour FROM c", partition_key="p1")
    )
    assert sorted(r["colour"] for r in rows) == ["b", "g", "r"]


async def test_cross_partition_queries_follow_the_python_sdk(container: ContainerProxy) -> None:
    for i in range(6):
        await container.create_item({"id": f"i{i}", "pk": f"p{i % 3}", "i": i})
    ordered = await collect(container.query_items("SELECT VALUE c.i FROM c ORDER BY c.i DESC"))
    assert ordered == [5, 4, 3, 2, 1, 0]
    assert await collect(container.query_items("SELECT VALUE COUNT(1) FROM c")) == [6]
    # Real Cosmos DB + the Python SDK refuse non-VALUE aggregates across partitions.
    with pytest.raises(exceptions.CosmosHttpResponseError) as info:
        await collect(container.query_items("SELECT COUNT(1) AS n FROM c"))
    assert info.value.status_code == 400


async def test_unsupported_sql_is_refused_loudly(container: ContainerProxy) -> None:
    await container.create_item({"id": "a", "pk": "p1", "name": "alpha"})
    for sql in (
        "SELECT c.pk, COUNT(1) AS n FROM c GROUP BY c.pk",
        "SELECT * FROM c WHERE c.name LIKE 'al%'",
    ):
        with pytest.raises(exceptions.CosmosHttpResponseError) as info:
            await collect(container.query_items(sql, partition_key="p1"))
        assert info.value.status_code == 400
        assert "cosmos-harness" in str(info.value.message)


# --------------------------------------------------------------------------
# Transactional batch
# --------------------------------------------------------------------------


async def test_batch_supports_every_operation_type(container: ContainerProxy) -> None:
    await container.create_item({"id": "r", "pk": "p1", "v": 1})
    await container.create_item({"id": "x", "pk": "p1", "v": 1})
    await container.create_item({"id": "d", "pk": "p1"})
    results = await container.execute_item_batch(
        [
            ("create", ({"id": "new", "pk": "p1", "v": 1},)),
            ("read", ("r",)),
            ("replace", ("x", {"id": "x", "pk": "p1", "v": 2})),
            ("upsert", ({"id": "u", "pk": "p1", "v": 1},)),
            ("upsert", ({"id": "r", "pk": "p1", "v": 5},)),
            ("patch", ("x", [{"op": "incr", "path": "/v", "value": 10}])),
            ("delete", ("d",)),
        ],
        partition_key="p1",
    )
    assert [r["statusCode"] for r in results] == [201, 200, 200, 201, 200, 200, 204]
    assert results[1]["resourceBody"]["v"] == 1
    assert results[5]["resourceBody"]["v"] == 12
    assert (await container.read_item("x", partition_key="p1"))["v"] == 12
    assert (await container.read_item("r", partition_key="p1"))["v"] == 5
    with pytest.raises(exceptions.CosmosResourceNotFoundError):
        await container.read_item("d", partition_key="p1")


async def test_batch_is_atomic_and_rolls_back(container: ContainerProxy) -> None:
    await container.create_item({"id": "keep", "pk": "p1", "v": 1})
    await container.create_item({"id": "dup", "pk": "p1"})
    with pytest.raises(exceptions.CosmosBatchOperationError) as info:
        await container.execute_item_batch(
            [
                ("create", ({"id": "n1", "pk": "p1"},)),
                ("replace", ("keep", {"id": "keep", "pk": "p1", "v": 99})),
                ("delete", ("dup",)),
                ("create", ({"id": "n1", "pk": "p1"},)),  # 409: created above in this batch
                ("create", ({"id": "n2", "pk": "p1"},)),
            ],
            partition_key="p1",
        )
    err = info.value
    assert err.error_index == 3
    assert err.status_code == 409
    assert [r["statusCode"] for r in err.operation_responses] == [424, 424, 424, 409, 424]
    # nothing of the batch is left behind
    with pytest.raises(exceptions.CosmosResourceNotFoundError):
        await container.read_item("n1", partition_key="p1")
    assert (await container.read_item("keep", partition_key="p1"))["v"] == 1
    await container.read_item("dup", partition_key="p1")
    got = await collect(container.query_items("SELECT VALUE c.id FROM c", partition_key="p1"))
    assert sorted(got) == ["dup", "keep"]


async def test_batch_precondition_failure_rolls_back(container: ContainerProxy) -> None:
    item = await container.create_item({"id": "a", "pk": "p1", "v": 1})
    await container.replace_item("a", {"id": "a", "pk": "p1", "v": 2})
    with pytest.raises(exceptions.CosmosBatchOperationError) as info:
        await container.execute_item_batch(
            [
                ("upsert", ({"id": "b", "pk": "p1"},)),
                (
                    "replace",
                    ("a", {"id": "a", "pk": "p1", "v": 3}),
                    {"if_match_etag": item["_etag"]},
                ),
            ],
            partition_key="p1",
        )
    assert info.value.status_code == 412
    assert info.value.error_index == 1
    with pytest.raises(exceptions.CosmosResourceNotFoundError):
        await container.read_item("b", partition_key="p1")


async def test_batch_missing_item_and_foreign_partition_fail(container: ContainerProxy) -> None:
    with pytest.raises(exceptions.CosmosBatchOperationError) as info:
        await container.execute_item_batch([("read", ("nope",))], partition_key="p1")
    assert info.value.status_code == 404
    with pytest.raises(exceptions.CosmosBatchOperationError) as info:
        await container.execute_item_batch(
            [("create", ({"id": "a", "pk": "p2"},))], partition_key="p1"
        )
    assert info.value.status_code == 400


async def test_batch_holds_at_most_100_operations(container: ContainerProxy) -> None:
    ok = await container.execute_item_batch(
        [("upsert", ({"id": f"i{i}", "pk": "p1"},)) for i in range(100)], partition_key="p1"
    )
    assert len(ok) == 100
    with pytest.raises(exceptions.CosmosHttpResponseError) as info:
        await container.execute_item_batch(
            [("upsert", ({"id": f"j{i}", "pk": "p1"},)) for i in range(101)], partition_key="p1"
        )
    assert info.value.status_code == 400
    with pytest.raises(exceptions.CosmosResourceNotFoundError):
        await container.read_item("j0", partition_key="p1")


async def test_batch_rollback_restores_order_etags_and_change_feed(
    container: ContainerProxy,
) -> None:
    # The harness undoes a failed batch from a journal of what it touched (not from a
    # copy of the container): everything must be exactly as before.
    before = [await container.create_item({"id": f"d{i}", "pk": "p1", "v": i}) for i in range(4)]
    await container.create_item({"id": "other", "pk": "p2"})
    await container.replace_item("d1", {"id": "d1", "pk": "p1", "v": 10})
    start = await collect(container.query_items_change_feed(start_time="Beginning"))
    snapshot = await collect(container.query_items("SELECT * FROM c", partition_key="p1"))
    with pytest.raises(exceptions.CosmosBatchOperationError):
        await container.execute_item_batch(
            [
                ("replace", ("d0", {"id": "d0", "pk": "p1", "v": 99})),
                ("delete", ("d2",)),
                ("create", ({"id": "n1", "pk": "p1"},)),
                ("upsert", ({"id": "d3", "pk": "p1", "v": 33},)),
                ("patch", ("d1", [{"op": "set", "path": "/v", "value": 11}])),
                ("create", ({"id": "d1", "pk": "p1"},)),  # 409
            ],
            partition_key="p1",
        )
    after = await collect(container.query_items("SELECT * FROM c", partition_key="p1"))
    assert after == snapshot  # same documents, etags, _ts, in the same (creation) order
    assert ids(after) == ["d0", "d1", "d2", "d3"]
    assert [d["_etag"] for d in after if d["id"] != "d1"] == [
        d["_etag"] for d in before if d["id"] != "d1"
    ]
    assert await collect(container.query_items_change_feed(start_time="Beginning")) == start
    # later writes continue the sequences: order, change feed
    await container.create_item({"id": "d4", "pk": "p1"})
    await container.upsert_item({"id": "d0", "pk": "p1", "v": 5})
    got = await collect(container.query_items("SELECT VALUE c.id FROM c", partition_key="p1"))
    assert got == ["d0", "d1", "d2", "d3", "d4"]
    feed = await collect(container.query_items_change_feed(start_time="Beginning"))
    assert [d["id"] for d in feed][-2:] == ["d4", "d0"]


def _retrieved(container: ContainerProxy) -> int:
    metrics = container.client_connection.last_response_headers["x-ms-documentdb-query-metrics"]
    fields = dict(kv.split("=") for kv in metrics.split(";"))
    return int(fields["retrievedDocumentCount"])


async def test_partition_scoped_queries_read_that_partition_only(
    container: ContainerProxy,
) -> None:
    # Real Cosmos DB reads one logical partition for a partition-scoped query, and
    # looks documents up by id through its index; the harness does the same, with the
    # same results as a scan. The query metrics report the documents it looked at.
    for p in range(3):
        await container.execute_item_batch(
            [("create", ({"id": f"i{k}", "pk": f"p{p}", "k": k, "t": k % 3},)) for k in range(90)],
            partition_key=f"p{p}",
        )
    scan = "SELECT * FROM c WHERE c.t = 1"
    got = await collect(
        container.query_items(scan, partition_key="p1", populate_query_metrics=True)
    )
    assert len(got) == 30 and {d["pk"] for d in got} == {"p1"}
    assert _retrieved(container) == 90  # that partition only
    wanted = ["i5", "i7", "i40", "i41", "nope", "i89"]
    lookups: list[tuple[str, list[dict[str, Any]]]] = [
        ("c.id IN (@a, @b, 'i40', @c)", [{"name": "@a", "value": "i7"},
                                          {"name": "@b", "value": "i5"},
                                          {"name": "@c", "value": 41}]),
        ("ARRAY_CONTAINS(@ids, c.id)", [{"name": "@ids", "value": wanted}]),
        ("ARRAY_CONTAINS(['i7', 'i5', 'i40'], c.id)", []),
        ("c.id = @a", [{"name": "@a", "value": "i40"}]),
    ]  # fmt: skip
    for cond, params in lookups:
        for rest in ("", " AND c.t >= 1", " ORDER BY c.k DESC"):
            where = f"{cond}{rest}" if not rest.startswith(" ORDER") else cond
            order = rest if rest.startswith(" ORDER") else ""
            sql = f"SELECT c.id, c.k FROM c WHERE {where}{order}"
            fast = await collect(container.query_items(
                sql, parameters=params, partition_key="p1", populate_query_metrics=True))
            assert _retrieved(container) <= len(wanted), sql  # looked up by id
            slow_sql = f"SELECT c.id, c.k FROM c WHERE ({cond} OR false){rest}"
            slow = await collect(container.query_items(
                slow_sql, parameters=params, partition_key="p1", populate_query_metrics=True))
            assert _retrieved(container) == 90  # a scan: same rows, same order
            assert fast == slow, sql
    # unsorted results in creation order, pages and tokens as for a scan
    pager = container.query_items(
        "SELECT VALUE c.id FROM c WHERE ARRAY_CONTAINS(@ids, c.id)",
        parameters=[{"name": "@ids", "value": [f"i{k}" for k in range(89, -1, -1)]}],
        partition_key="p2",
        max_item_count=40,
    ).by_page()
    pages = [await collect(page) async for page in pager]
    assert [len(p) for p in pages] == [40, 40, 10]
    assert [i for p in pages for i in p] == [f"i{k}" for k in range(90)]


# --------------------------------------------------------------------------
# Keep-alive, TTL, container replace, change feed, refusals
# --------------------------------------------------------------------------


async def test_connections_are_kept_alive(emu: Emulators, database: DatabaseProxy) -> None:
    created = 0

    async def on_create(*_args: Any) -> None:
        nonlocal created
        created += 1

    trace = aiohttp.TraceConfig()
    trace.on_connection_create_end.append(on_create)
    session = aiohttp.ClientSession(trace_configs=[trace])
    name = f"c-{uuid.uuid4().hex[:12]}"
    try:
        transport = AioHttpTransport(session=session, session_owner=False)
        async with CosmosClient(
            emu.cosmos_endpoint, emu.cosmos_key, connection_verify=False, transport=transport
        ) as client:
            ctr = await client.get_database_client(database.id).create_container(
                name, partition_key=PartitionKey(path="/pk")
            )
            before = created
            headers: dict[str, str] = {}
            for i in range(100):
                await ctr.upsert_item(
                    {"id": f"i{i}", "pk": "p1"},
                    response_hook=lambda h, _b: headers.update(
                        {k.lower(): v for k, v in h.items()}
                    ),
                )
            assert headers.get("connection", "").lower() != "close"
            assert created - before <= 1, f"{created - before} new connections for 100 upserts"
            await client.get_database_client(database.id).delete_container(name)
    finally:
        await session.close()


async def test_ttl_expires_items(database: DatabaseProxy) -> None:
    name = f"ttl-{uuid.uuid4().hex[:12]}"
    ctr = await database.create_container(
        name, partition_key=PartitionKey(path="/pk"), default_ttl=1
    )
    try:
        await ctr.create_item({"id": "short", "pk": "p1"})
        await ctr.create_item({"id": "forever", "pk": "p1", "ttl": -1})
        await ctr.read_item("short", partition_key="p1")
        await asyncio.sleep(2.2)
        with pytest.raises(exceptions.CosmosResourceNotFoundError):
            await ctr.read_item("short", partition_key="p1")
        await ctr.read_item("forever", partition_key="p1")
        left = await collect(ctr.query_items("SELECT VALUE c.id FROM c", partition_key="p1"))
        assert left == ["forever"]
    finally:
        await database.delete_container(name)


async def test_replace_container_keeps_items(
    database: DatabaseProxy, container: ContainerProxy
) -> None:
    await container.create_item({"id": "a", "pk": "p1"})
    await database.replace_container(
        container, partition_key=PartitionKey(path="/pk"), default_ttl=3600
    )
    assert (await container.read_item("a", partition_key="p1"))["id"] == "a"


async def test_change_feed_whole_container(container: ContainerProxy) -> None:
    for i in range(3):
        await container.create_item({"id": f"i{i}", "pk": f"p{i}"})
    feed = container.query_items_change_feed(start_time="Beginning")
    pages = feed.by_page()
    seen: list[str] = []
    async for page in pages:
        seen += ids(await collect(page))
    token = pages.continuation_token
    assert sorted(seen) == ["i0", "i1", "i2"]
    await container.upsert_item({"id": "i1", "pk": "p1", "changed": True})
    await container.create_item({"id": "i3", "pk": "p3"})
    later = await collect(container.query_items_change_feed(continuation=token))
    assert sorted(ids(later)) == ["i1", "i3"]


async def test_change_feed_for_one_partition_is_refused(container: ContainerProxy) -> None:
    await container.create_item({"id": "a", "pk": "p1"})
    with pytest.raises(exceptions.CosmosHttpResponseError) as info:
        await collect(container.query_items_change_feed(partition_key="p1", start_time="Beginning"))
    assert "cosmos-harness" in str(info.value.message)


async def test_hierarchical_partition_keys_are_refused(database: DatabaseProxy) -> None:
    with pytest.raises(exceptions.CosmosHttpResponseError) as info:
        await database.create_container(
            f"h-{uuid.uuid4().hex[:12]}",
            partition_key=PartitionKey(path=["/tenant", "/user"], kind="MultiHash"),
        )
    assert info.value.status_code == 400
    assert "cosmos-harness" in str(info.value.message)


# --------------------------------------------------------------------------
# Azurite (Blob)
# --------------------------------------------------------------------------


@pytest.fixture
async def blob_container(emu: Emulators) -> AsyncIterator[ContainerClient]:
    async with BlobServiceClient.from_connection_string(emu.blob_connection_string) as service:
        ctr = service.get_container_client(f"gaps-{uuid.uuid4().hex[:12]}")
        await ctr.create_container()
        try:
            yield ctr
        finally:
            await ctr.delete_container()


async def test_blob_upload_without_overwrite_twice_conflicts(
    blob_container: ContainerClient,
) -> None:
    blob = blob_container.get_blob_client("obj")
    await blob.upload_blob(b"one", overwrite=False)
    with pytest.raises(ResourceExistsError):
        await blob.upload_blob(b"two", overwrite=False)
    assert await (await blob.download_blob()).readall() == b"one"


async def test_blob_if_none_match_star_conflicts(blob_container: ContainerClient) -> None:
    blob = blob_container.get_blob_client("obj")
    await blob.upload_blob(b"one", if_none_match="*")
    with pytest.raises(ResourceExistsError):
        await blob.upload_blob(b"two", overwrite=True, if_none_match="*")


async def test_blob_stale_etag_is_412(blob_container: ContainerClient) -> None:
    blob = blob_container.get_blob_client("obj")
    first = await blob.upload_blob(b"one")
    await blob.upload_blob(b"two", overwrite=True)
    with pytest.raises(ResourceModifiedError):
        await blob.upload_blob(
            b"three",
            overwrite=True,
            etag=first["etag"],
            match_condition=MatchConditions.IfNotModified,
        )


async def test_blob_range_download(blob_container: ContainerClient) -> None:
    blob = blob_container.get_blob_client("obj")
    data = bytes(range(256)) * 64
    await blob.upload_blob(data)
    part = await (await blob.download_blob(offset=1000, length=300)).readall()
    assert part == data[1000:1300]


async def test_blob_stage_and_commit_blocks(blob_container: ContainerClient) -> None:
    blob = blob_container.get_blob_client("blocks")
    chunks = [b"a" * 1000, b"b" * 10, b"c" * 500]
    block_ids = [f"{i:08d}" for i in range(len(chunks))]
    for block_id, chunk in zip(block_ids, chunks, strict=True):
        await blob.stage_block(block_id, chunk)
    await blob.commit_block_list([BlobBlock(block_id=b) for b in block_ids])
    assert await (await blob.download_blob()).readall() == b"".join(chunks)
