"""The GiST indexes of migration 0008 match what a search writes.

`ix_items_time_range_geometry` (time range first, then geometry) must answer a bbox or
intersects search with a datetime in one index scan, both conditions in its Index Cond,
and a datetime-only search on its first column; `ix_items_geometry` serves searches
without a datetime. Sequential scans are switched off so that the test checks that the
expressions match the indexes, not what a planner prefers on a small table.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text

from catalogue.models import ItemRow
from catalogue.repositories import collections as collection_repo
from catalogue.repositories.items import upsert_items
from catalogue.repositories.search import interval_clause, where_clauses
from catalogue.repositories.search_shape import SearchShape, search_parameters
from catalogue.search import ItemQuery, parse_geometry
from catalogue.serializers import item_to_row
from catalogue.times import Interval
from tests.helpers import explain, make_collection, make_item

ORIGIN = datetime(2021, 1, 1, tzinfo=UTC)
JUNE = Interval(datetime(2021, 6, 1, tzinfo=UTC), datetime(2021, 6, 30, tzinfo=UTC))
ALPS = {
    "type": "Polygon",
    "coordinates": [[[5.9, 45.8], [10.5, 45.6], [13.5, 46.6], [12.0, 48.0], [5.9, 45.8]]],
}


async def _plan(database, query: ItemQuery | None, *clauses: Any, **parameters: Any) -> str:
    items = ItemRow.__table__
    async with database.write() as conn:
        await collection_repo.create_collection(conn, make_collection("st"))
        rows = [
            item_to_row(make_item(f"st-{i}", "st", when=ORIGIN + timedelta(hours=5 * i)))
            for i in range(2_000)
        ]
        await upsert_items(conn, rows)
        await conn.execute(text("ANALYZE items"))
        await conn.execute(text("SET LOCAL enable_seqscan = off"))
        if query is not None:
            clauses = tuple(where_clauses(SearchShape.of(query)))
            parameters = search_parameters(query)
        return await explain(conn, select(items.c.id).where(*clauses), parameters)


def _index_conds(plan: str) -> list[str]:
    return [line for line in plan.splitlines() if "Index Cond" in line]


@pytest.mark.parametrize(
    "query",
    [
        ItemQuery(bbox=(6.0, 45.0, 15.0, 55.0), interval=JUNE),
        ItemQuery(intersects=parse_geometry(ALPS), interval=JUNE),
    ],
    ids=["bbox", "intersects"],
)
async def test_space_and_time_is_one_scan_of_the_time_first_gist(database, query) -> None:
    plan = await _plan(database, query)
    assert "ix_items_time_range_geometry" in plan, plan
    assert "BitmapAnd" not in plan, plan
    conds = " ".join(_index_conds(plan))
    assert "tstzrange" in conds and "geometry &&" in conds, plan


async def test_the_interval_overlap_alone_uses_the_first_column(database) -> None:
    """(A datetime-only search adds the redundant `datetime` bound, which a B-tree may
    answer instead: tests/catalogue/test_datetime_bound.py.)"""
    plan = await _plan(database, None, interval_clause(), start=JUNE.start, end=JUNE.end)
    assert "ix_items_time_range_geometry" in plan, plan
    assert any("tstzrange" in line for line in _index_conds(plan)), plan


async def test_geometry_only_uses_the_geometry_gist(database) -> None:
    plan = await _plan(database, ItemQuery(bbox=(6.0, 45.0, 15.0, 55.0)))
    assert "ix_items_geometry" in plan, plan
    assert "ix_items_time_range_geometry" not in plan, plan
