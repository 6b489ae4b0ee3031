"""The time-bounded exact count behind `numberMatched` (`ItemSearch.count`, with the SQL of
`catalogue.repositories.search.count_within`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from sqlalchemy import text

from catalogue.database import Database, create_engine
from catalogue.filters import parse_filter
from catalogue.repositories import collections as collection_repo
from catalogue.repositories import items as item_repo
from catalogue.search import ItemQuery, parse_sortby
from catalogue.search.service import ItemSearch
from catalogue.serializers import item_to_row
from catalogue.times import parse_interval
from tests.helpers import grid_items, make_collection, make_settings

ITEMS = grid_items(300, "scenes")  # one hour apart from 2021-01-01, 40 per grid row


async def _load(database: Database) -> None:
    async with database.write() as conn:
        await collection_repo.create_collection(conn, make_collection("scenes"))
        await item_repo.upsert_items(conn, [item_to_row(item) for item in ITEMS])


QUERIES = {
    "all": ItemQuery(limit=10),
    "bbox": ItemQuery(limit=7, collections=("scenes",), bbox=(-10, 35, 5, 37)),
    "datetime": ItemQuery(
        limit=5, interval=parse_interval("2021-01-02T00:00:00Z/2021-01-03T12:00:00Z")
    ),
    "filter+sortby": ItemQuery(
        limit=5, sortby=parse_sortby(["-id"]), filter=parse_filter("id LIKE 'item-01%'")
    ),
}


@pytest.mark.parametrize("query", QUERIES.values(), ids=QUERIES.keys())
async def test_the_count_is_exact_on_every_page(database, query: ItemQuery) -> None:
    """The count of a search's first, second and (via `prev`) first page again equals the
    number of items all its pages hold."""
    await _load(database)
    search = ItemSearch()
    async with database.read() as conn:
        whole = await search.items(conn, replace(query, limit=10_000))
        first = await search.items(conn, query)
        second = await search.items(conn, replace(query, token=first.next_token))
    assert whole.number_matched == len(whole.items) > query.limit
    assert first.number_matched is None  # a first page with a next one: not free to know
    for page in (
        query,
        replace(query, token=first.next_token),
        replace(query, token=second.prev_token),
    ):
        async with database.read_in_transaction() as conn:
            assert await search.count(conn, page, budget_ms=5_000) == len(whole.items)


async def test_the_short_timeout_ends_with_the_count(database) -> None:
    """The budget is transaction-local: statements after the count run under the usual one."""
    await _load(database)
    async with database.read() as conn:
        before = (await conn.execute(text("SHOW statement_timeout"))).scalar_one()
    async with database.read_in_transaction() as conn:
        assert await ItemSearch().count(conn, ItemQuery(), budget_ms=1_234) == 300
        assert (await conn.execute(text("SHOW statement_timeout"))).scalar_one() == "1234ms"
    async with database.read() as conn:
        assert (await conn.execute(text("SHOW statement_timeout"))).scalar_one() == before


@pytest.fixture
async def committed(fresh_db_url) -> AsyncIterator[Database]:
    """Items committed in a database of their own, so another connection can lock them."""
    database = Database(create_engine(make_settings(fresh_db_url)))
    await _load(database)
    yield database
    await database.dispose()


async def test_a_count_over_budget_is_left_out_and_remembered(committed: Database) -> None:
    """Deterministically over budget: another transaction holds an ACCESS EXCLUSIVE lock on
    the items, so the count waits for it until PostgreSQL cancels it at the budget."""
    bbox = ItemQuery(limit=10, bbox=(-10, 35, 30, 40))
    search = ItemSearch()
    async with committed.engine.connect() as locker:
        await locker.execute(text("LOCK TABLE items IN ACCESS EXCLUSIVE MODE"))
        async with committed.read_in_transaction() as conn:
            assert await search.count(conn, bbox, budget_ms=50) is None
        await locker.rollback()
    async with committed.read_in_transaction() as conn:  # the lock is gone, but remembered:
        assert await search.count(conn, ItemQuery(limit=3, bbox=bbox.bbox), 5_000) is None
        assert await search.count(conn, ItemQuery(limit=3), 5_000) == 300  # another search
    async with committed.read() as conn:  # the connection went back to the pool sound
        assert (await conn.execute(text("SHOW statement_timeout"))).scalar_one() == "15s"
    search.slow.clear()
    async with committed.read_in_transaction() as conn:
        assert await search.count(conn, bbox, budget_ms=5_000) == 240
