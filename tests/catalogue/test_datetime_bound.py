"""The redundant `datetime` range of a search in named collections (migration 0007).

It must never change an answer (in named collections, and across all collections when the
search has no bbox or intersects): the items found with it are those an independent
evaluation of the interval overlap finds, for instants, intervals and items whose
`datetime` lies inside or after their interval; the per-collection bounds grow with every
write through the repository; unknown bounds mean no range. And it must be what the
planner uses: the (collection, datetime, id) index with `datetime` in its Index Cond.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text, update

from catalogue.models import CollectionRow
from catalogue.repositories import collections as collection_repo
from catalogue.repositories.items import upsert_items
from catalogue.repositories.search import search_statement, where_clauses
from catalogue.repositories.search_shape import SearchShape, search_parameters
from catalogue.repositories.sorting import order_keys
from catalogue.search import ItemQuery
from catalogue.search.service import ItemSearch
from catalogue.serializers import item_to_row
from catalogue.times import Interval
from tests.helpers import explain, make_collection, make_item

# one search service for the module, as an app has one: its statements stay cached
SEARCH = ItemSearch()

ORIGIN = datetime(2020, 1, 1, tzinfo=UTC)


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _item(rng: random.Random, index: int, collection: str) -> dict[str, Any]:
    """An instant, an interval with `datetime` null, an interval around its `datetime`, or
    a `datetime` with a start and no end (the end is then the datetime)."""
    moment = ORIGIN + timedelta(hours=rng.randrange(0, 24 * 365))
    item = make_item(f"{collection}-{index}", collection, when=moment)
    props = item["properties"]
    kind = index % 4
    if kind == 1:
        props["datetime"] = None
        props["start_datetime"] = _stamp(moment)
        props["end_datetime"] = _stamp(moment + timedelta(days=rng.randrange(0, 40)))
    elif kind == 2:
        props["start_datetime"] = _stamp(moment - timedelta(days=rng.randrange(0, 20)))
        props["end_datetime"] = _stamp(moment + timedelta(hours=rng.randrange(0, 100)))
    elif kind == 3:
        props["start_datetime"] = _stamp(moment - timedelta(days=rng.randrange(1, 10)))
    return item


def _span(item: dict[str, Any]) -> tuple[datetime, datetime]:
    row = item_to_row(item)
    return row["start_datetime"], row["end_datetime"]


def _expected(
    catalogue: list[dict[str, Any]], collections: tuple[str, ...], interval: Interval
) -> set[str]:
    """Plain Python: the items of those collections whose [start, end] meets the interval."""
    found = set()
    for item in catalogue:
        start, end = _span(item)
        if collections and item["collection"] not in collections:
            continue
        if interval.end is not None and start > interval.end:
            continue
        if interval.start is not None and end < interval.start:
            continue
        found.add(item["id"])
    return found


async def _write(database, items: list[dict[str, Any]]) -> None:
    async with database.write() as conn:
        await upsert_items(conn, [item_to_row(item) for item in items])


@pytest.fixture
async def catalogue(database) -> list[dict[str, Any]]:
    rng = random.Random(7)
    async with database.write() as conn:
        for collection in ("c-a", "c-b"):
            await collection_repo.create_collection(conn, make_collection(collection))
    items = [_item(rng, i, "c-a" if i % 3 else "c-b") for i in range(600)]
    await _write(database, items)
    return items


def _intervals() -> list[Interval]:
    rng = random.Random(11)
    intervals = [Interval(None, ORIGIN + timedelta(days=100)), Interval(ORIGIN, None)]
    for _ in range(25):
        start = ORIGIN + timedelta(hours=rng.randrange(-24 * 30, 24 * 380))
        intervals.append(Interval(start, start + timedelta(hours=rng.choice([0, 5, 72, 900]))))
    return intervals


async def _ids(database, query: ItemQuery) -> set[str]:
    async with database.read() as conn:
        page = await SEARCH.items(conn, query)
    assert page.next_token is None
    return {item["id"] for item in page.items}


@pytest.mark.parametrize("collections", [("c-a",), ("c-b",), ("c-a", "c-b"), ()])
async def test_the_bound_finds_exactly_the_overlapping_items(
    database, catalogue, collections
) -> None:
    for interval in _intervals():
        query = ItemQuery(collections=collections, interval=interval, limit=1000)
        assert await _ids(database, query) == _expected(catalogue, collections, interval)


async def test_bounds_grow_with_each_write(database, catalogue) -> None:
    """An item whose end lies far past its datetime raises the bound at once, so a search
    that meets only its end still finds it."""
    long = make_item("long-one", "c-b", when=ORIGIN - timedelta(days=400))
    long["properties"]["start_datetime"] = _stamp(ORIGIN - timedelta(days=400))
    long["properties"]["end_datetime"] = _stamp(ORIGIN + timedelta(days=500))
    await _write(database, [long])
    interval = Interval(ORIGIN + timedelta(days=450), ORIGIN + timedelta(days=460))
    for collections in (("c-b",), ()):  # () : all collections, bounded by their largest spans
        query = ItemQuery(collections=collections, interval=interval, limit=1000)
        found = await _ids(database, query)
        assert "long-one" in found
        assert found == _expected([*catalogue, long], collections, interval)


async def test_unknown_bounds_mean_no_bound(database, catalogue) -> None:
    async with database.write() as conn:
        await conn.execute(
            update(CollectionRow.__table__)
            .where(CollectionRow.__table__.c.id == "c-a")
            .values(max_datetime_minus_start=None, max_end_minus_datetime=None)
        )
    # written while unknown: the bound stays unknown rather than becoming this item's span
    late = make_item("late-end", "c-a", when=ORIGIN - timedelta(days=90))
    late["properties"]["start_datetime"] = _stamp(ORIGIN - timedelta(days=90))
    late["properties"]["end_datetime"] = _stamp(ORIGIN + timedelta(days=30))
    await _write(database, [late])
    for interval in _intervals():
        for collections in (("c-a",), ("c-a", "c-b"), ()):
            query = ItemQuery(collections=collections, interval=interval, limit=1000)
            expected = _expected([*catalogue, late], collections, interval)
            assert await _ids(database, query) == expected


async def test_the_planner_uses_the_datetime_bound(database) -> None:
    """A long interval in one collection, in the default order: an ordered scan of a
    datetime B-tree whose Index Cond holds the datetime range (not the range overlap)."""
    async with database.write() as conn:
        await collection_repo.create_collection(conn, make_collection("many"))
        rows = [
            item_to_row(make_item(f"m-{i}", "many", when=ORIGIN + timedelta(minutes=7 * i)))
            for i in range(20_000)
        ]
        await upsert_items(conn, rows)
        await conn.execute(text("ANALYZE items"))
        await conn.execute(text("ANALYZE collections"))
        await conn.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
        await conn.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))
        query = ItemQuery(
            collections=("many",),
            interval=Interval(ORIGIN, ORIGIN + timedelta(days=20)),
            limit=100,
        )
        plan = await explain(
            conn,
            search_statement(SearchShape.of(query), order_keys(())),
            search_parameters(query),
        )
    index_conds = [line for line in plan.splitlines() if "Index Cond" in line]
    # either B-tree that leads with (collection,) datetime; here the table holds one collection
    assert "ix_items_collection_datetime_id" in plan or "ix_items_datetime_id_collection" in plan
    assert any("datetime <=" in line and "datetime >=" in line for line in index_conds), plan
    assert not any("tstzrange" in line for line in index_conds), plan
    # read in order, no sort: one collection must stay `collection = $1` (PostgreSQL 15
    # cannot read a B-tree in order under `collection = ANY(...)`)
    assert "Sort" not in plan, plan


def test_one_collection_is_an_equality_several_an_array() -> None:
    """PostgreSQL 15 reads a B-tree in order only under an equality, not under
    `collection = ANY(...)`: one collection must stay `=` for the ordered scans above (at 1M
    items, ANY sent a one-year search of one collection to the all-collections datetime
    index, filtering: 27.8 ms instead of 0.3 ms). Several collections (or ids) go as one
    array parameter."""
    [one] = where_clauses(SearchShape.of(ItemQuery(collections=("a",))))
    assert "ANY" not in str(one) and "items.collection = " in str(one)
    [several, ids] = where_clauses(
        SearchShape.of(ItemQuery(collections=("a", "b"), ids=("x", "y", "z")))
    )
    assert "ANY" in str(several) and "ANY" in str(ids)
