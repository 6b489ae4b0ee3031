"""Counts from `item_day_counts` equal COUNT(*) over the items: whole days from the table,
the ends of the interval (partial days, interval items reaching into it) from the items;
and the planner's estimate decides whether any other search is counted."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from catalogue.repositories import collections as collection_repo
from catalogue.repositories import items as item_repo
from catalogue.repositories.search import count_statement
from catalogue.repositories.search_shape import SearchShape, search_parameters
from catalogue.search import ItemQuery, day_counts
from catalogue.search.service import ItemSearch
from catalogue.serializers import item_to_row
from catalogue.times import parse_interval
from tests.helpers import make_collection, make_item

START = datetime(2021, 3, 1, tzinfo=UTC)


def generated(seed: int = 11) -> list[dict[str, Any]]:
    """Instants at any second over 20 days; in `b`, interval items (datetime null, or
    inside its range) of up to three days."""
    rng = random.Random(seed)
    found = []
    for n in range(400):
        collection = "a" if n % 2 else rng.choice("abc")
        moment = START + timedelta(seconds=rng.randrange(20 * 86400))
        item = make_item(f"i{n:04d}", collection, when=moment)
        if collection == "b" and n % 3 == 0:
            end = moment + timedelta(seconds=rng.randrange(3 * 86400))
            item["properties"].update(
                start_datetime=moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
                end_datetime=end.strftime("%Y-%m-%dT%H:%M:%SZ"),
            )
            if n % 2:
                item["properties"]["datetime"] = None
        found.append(item)
    return found


ITEMS = generated()


async def load(conn, items: list[dict[str, Any]] = ITEMS) -> None:
    for name in "abc":
        await collection_repo.create_collection(conn, make_collection(name))
    await item_repo.upsert_items(conn, [item_to_row(item) for item in items])


INTERVALS = [
    None,
    "2021-03-05T00:00:00Z/2021-03-09T00:00:00Z",  # midnight to midnight
    "2021-03-04T13:30:00Z/2021-03-11T07:15:00Z",  # partial days at both ends
    "2021-03-06T10:00:00Z/2021-03-06T20:00:00Z",  # inside one day
    "2021-03-06T22:00:00Z/2021-03-07T02:00:00Z",  # across one midnight, no whole day
    "../2021-03-08T12:00:00Z",
    "2021-03-12T06:00:00+02:00/..",  # another zone: the day is the UTC one
    "2021-03-07T08:00:00Z",  # an instant
    "2021-01-01T00:00:00Z/2021-12-31T23:59:59Z",  # everything
    "2022-01-01T00:00:00Z/2022-02-01T00:00:00Z",  # nothing
]
COLLECTIONS = [(), ("a",), ("b",), ("a", "b"), ("nowhere",)]


def query_of(interval: str | None, collections: tuple[str, ...]) -> ItemQuery:
    return ItemQuery(
        collections=collections,
        interval=None if interval is None else parse_interval(interval),
    )


async def brute(conn, query: ItemQuery) -> int:
    shape = SearchShape.of(query).counted
    return int(await conn.scalar(count_statement(shape), search_parameters(query)))


async def test_counts_by_days_equal_count_star(database) -> None:
    async with database.write() as conn:
        await load(conn)
        for interval in INTERVALS:
            for collections in COLLECTIONS:
                query = query_of(interval, collections)
                counted = await day_counts.count(conn, query, search_parameters(query), 10_000)
                assert counted == await brute(conn, query), (interval, collections)


async def test_after_updates_and_deletes(database) -> None:
    async with database.write() as conn:
        await load(conn)
        moved = [make_item(item["id"], item["collection"], when=START + timedelta(days=30))
                 for item in ITEMS[:80]]  # fmt: skip
        await item_repo.upsert_items(conn, [item_to_row(item) for item in moved])
        await conn.execute(text("DELETE FROM items WHERE id LIKE 'i01%'"))
        await collection_repo.delete_collection(conn, "c", cascade=True)
        for interval in INTERVALS + ["2021-03-30T12:00:00Z/2021-04-02T00:00:00Z"]:
            for collections in COLLECTIONS:
                query = query_of(interval, collections)
                counted = await day_counts.count(conn, query, search_parameters(query), 10_000)
                assert counted == await brute(conn, query), (interval, collections)


async def test_an_odd_item_on_a_whole_day_is_counted_from_the_items(database) -> None:
    """An item whose datetime is outside its own range: its day cannot say whether it
    matches, so a search over that day is not counted by days (and stays exact)."""
    odd = make_item("odd", "a", when=datetime(2021, 3, 6, 12, tzinfo=UTC))
    odd["properties"].update(
        start_datetime="2021-05-01T00:00:00Z", end_datetime="2021-05-02T00:00:00Z"
    )
    async with database.write() as conn:
        await load(conn, [*ITEMS, odd])
        over = query_of("2021-03-05T00:00:00Z/2021-03-09T00:00:00Z", ("a",))
        assert await day_counts.count(conn, over, search_parameters(over), 10_000) == (
            day_counts.NOT_BY_DAYS
        )
        assert await ItemSearch().count(conn, over, 10_000) == await brute(conn, over)
        other = query_of("2021-03-10T00:00:00Z/2021-03-12T00:00:00Z", ("a",))
        assert await day_counts.count(conn, other, search_parameters(other), 10_000) == (
            await brute(conn, other)
        )


@pytest.mark.parametrize(
    ("query", "given"),
    [
        (ItemQuery(bbox=(-180, -90, 180, 90)), False),  # every item: estimated over
        (ItemQuery(ids=("i0001", "i0002")), True),  # two: counted
    ],
)
async def test_the_estimate_decides_whether_to_count(database, query, given) -> None:
    async with database.write() as conn:
        await load(conn)
        await conn.execute(text("ANALYZE items"))
        search = ItemSearch(count_estimate_max=50)
        counted = await search.count(conn, query, 10_000)
        assert counted == (await brute(conn, query) if given else None)
        assert not search.slow._retry_at  # left out at once: not a count that ran over
