"""One statement per search shape: searches that differ only in their values share the
built statement and still get their own answers; anything that changes the SQL changes the
shape."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from catalogue.errors import UnknownPropertyError
from catalogue.repositories import collections as collection_repo
from catalogue.repositories.items import upsert_items
from catalogue.repositories.search_shape import SearchShape, search_parameters
from catalogue.search import ItemQuery, PageToken, SortKey
from catalogue.search.service import ItemSearch, SearchRequest
from catalogue.serializers import item_to_row
from catalogue.times import Interval
from tests.helpers import make_collection, make_item

JUNE = Interval(datetime(2021, 6, 1, tzinfo=UTC), datetime(2021, 6, 30, tzinfo=UTC))
JULY = Interval(datetime(2021, 7, 1, tzinfo=UTC), datetime(2021, 7, 31, tzinfo=UTC))


def test_values_do_not_change_the_shape() -> None:
    first = ItemQuery(collections=("a",), bbox=(0, 0, 1, 1), interval=JUNE, limit=5, text=("x",))
    second = ItemQuery(
        collections=("b",), bbox=(5, 5, 9, 9), interval=JULY, limit=50, text=("y z",)
    )
    assert SearchShape.of(first) == SearchShape.of(second)
    assert search_parameters(first) != search_parameters(second)


def test_what_changes_the_sql_changes_the_shape() -> None:
    base = ItemQuery(collections=("a",), bbox=(0, 0, 1, 1), interval=JUNE)
    variants = [
        ItemQuery(collections=("a", "b"), bbox=(0, 0, 1, 1), interval=JUNE),  # = ANY
        ItemQuery(collections=("a",), bbox=(170, 0, -170, 1), interval=JUNE),  # antimeridian
        ItemQuery(collections=("a",), bbox=(0, 0, 1, 1), interval=Interval(JUNE.start, None)),
        ItemQuery(collections=("a",), bbox=(0, 0, 1, 1), interval=JUNE, text=("x", "y")),
        ItemQuery(collections=("a",), bbox=(0, 0, 1, 1), interval=JUNE, sortby=(SortKey("gsd"),)),
        ItemQuery(
            collections=("a",),
            bbox=(0, 0, 1, 1),
            interval=JUNE,
            token=PageToken((None, "x", "a"), "sig"),  # a NULL in the token
        ),
    ]
    shapes = {SearchShape.of(base), *(SearchShape.of(query) for query in variants)}
    assert len(shapes) == len(variants) + 1
    assert SearchShape.of(base, as_text=True) != SearchShape.of(base)
    assert SearchShape.of(base, True, (("id",),)) != SearchShape.of(
        base, True, (("id",), ("bbox",))
    )


async def test_one_statement_serves_searches_with_other_values(database) -> None:
    search = ItemSearch()
    async with database.write() as conn:
        for name in ("north", "south"):
            await collection_repo.create_collection(conn, make_collection(name))
        await upsert_items(
            conn,
            [
                item_to_row(make_item("n-june", "north", lat=60, when=datetime(2021, 6, 5))),
                item_to_row(make_item("n-july", "north", lat=60, when=datetime(2021, 7, 5))),
                item_to_row(make_item("s-june", "south", lat=-40, when=datetime(2021, 6, 9))),
            ],
        )
        queries = {
            ("north", JUNE): ["n-june"],
            ("north", JULY): ["n-july"],
            ("south", JUNE): ["s-june"],
            ("south", JULY): [],
        }
        for (name, interval), expected in queries.items():
            query = ItemQuery(collections=(name,), bbox=(-20, -60, 40, 80), interval=interval)
            page = await search.items(conn, query)
            assert [item["id"] for item in page.items] == expected
            text_page = await search.page(database, SearchRequest(query))
            assert [item.id for item in text_page.items] == expected
        shapes = {
            SearchShape.of(ItemQuery(collections=(n,), bbox=(-20, -60, 40, 80), interval=i))
            for n, i in queries
        }
        assert len(shapes) == 1
        [shape] = shapes
        statements = search.statements
        assert statements.get(shape, None, None) is statements.get(shape, None, None)


async def test_a_cached_filter_statement_keeps_values_and_the_queryables_check(database) -> None:
    """Filtered statements are kept per filter and queryables: another value is another
    statement, and a filter that passed the check for one collection's names is still
    refused where those names are unknown."""
    search = ItemSearch()
    async with database.write() as conn:
        for name in ("optical", "radar"):
            await collection_repo.create_collection(conn, make_collection(name))
        rows = [
            item_to_row(make_item(f"o-{cover}", "optical", **{"eo:cloud_cover": cover}))
            for cover in (5, 30, 70)
        ]
        rows.append(item_to_row(make_item("r-1", "radar", polarization="VV")))
        await upsert_items(conn, rows)

        def below(limit: float) -> dict:
            return {"op": "<", "args": [{"property": "eo:cloud_cover"}, limit]}

        optical = {"eo:cloud_cover", "datetime"}
        for limit, expected in ((10, ["o-5"]), (50, ["o-30", "o-5"]), (10, ["o-5"])):
            query = ItemQuery(collections=("optical",), filter=below(limit), limit=10)
            page = await search.items(conn, query, optical)
            assert sorted(item["id"] for item in page.items) == expected, limit
        radar_query = ItemQuery(collections=("radar",), filter=below(10))
        with pytest.raises(UnknownPropertyError, match="eo:cloud_cover"):
            await search.items(conn, radar_query, {"polarization", "datetime"})
        with pytest.raises(UnknownPropertyError):  # and again: a 400 is not cached
            await search.items(conn, radar_query, {"polarization", "datetime"})
