"""`ItemSearch`, the one call of item search: the names policy (kept names, read once more
when they refuse one, then retry or refuse), the collection scope, the count budget and
the caches each instance owns."""

from __future__ import annotations

from typing import Any

import pytest

from catalogue.errors import NotFoundError, UnknownPropertyError
from catalogue.filters import parse_filter
from catalogue.repositories import collections as collection_repo
from catalogue.repositories.items import upsert_items
from catalogue.repositories.search_shape import SearchShape
from catalogue.search import ItemQuery, parse_sortby
from catalogue.search.service import (
    MAX_CACHED_FILTER_CHARS,
    ItemSearch,
    SearchRequest,
    SlowSearches,
    Statements,
)
from catalogue.serializers import item_to_row
from tests.helpers import grid_items, make_collection, make_item


async def _write(database: Any, *items: dict[str, Any]) -> None:
    async with database.write() as conn:
        await upsert_items(conn, [item_to_row(item) for item in items])


@pytest.fixture
async def scenes(database: Any) -> Any:
    async with database.write() as conn:
        await collection_repo.create_collection(conn, make_collection("scenes"))
    await _write(database, make_item("old", "scenes", cloud=5))
    return database


class ReadCounter:
    """Counts how often the search reads the catalogue's names (a spy on `KnownNames`)."""

    def __init__(self, search: ItemSearch) -> None:
        self.reads = 0
        original = search.names.read

        async def read(conn: Any) -> frozenset[str]:
            self.reads += 1
            return await original(conn)

        search.names.read = read  # type: ignore[method-assign]  # a spy on the instance


def _ids(page: Any) -> list[str]:
    return [item.id for item in page.items]


async def test_a_name_added_after_the_names_were_kept_is_read_once_and_accepted(
    scenes: Any,
) -> None:
    search = ItemSearch()
    reads = ReadCounter(search)
    request = SearchRequest(ItemQuery(filter=parse_filter("cloud < 10")))
    assert _ids(await search.page(scenes, request)) == ["old"]
    assert await search.page(scenes, request) and reads.reads == 1  # kept: not read again
    await _write(scenes, make_item("new", "scenes", snow=3))
    for query in (
        ItemQuery(filter=parse_filter("snow = 3")),
        ItemQuery(sortby=parse_sortby(["snow"]), limit=1),  # ascending: NULLs last
    ):
        assert _ids(await search.page(scenes, SearchRequest(query))) == ["new"]
    assert reads.reads == 2  # once for `snow`, which the second search found kept


@pytest.mark.parametrize(
    "query",
    [ItemQuery(filter=parse_filter("nosuch = 1")), ItemQuery(sortby=parse_sortby(["nosuch"]))],
    ids=["filter", "sortby"],
)
async def test_a_name_the_catalogue_does_not_hold_is_refused_after_one_more_read(
    scenes: Any, query: ItemQuery
) -> None:
    search = ItemSearch()
    reads = ReadCounter(search)
    await search.page(scenes, SearchRequest(ItemQuery(filter=parse_filter("cloud < 10"))))
    with pytest.raises(UnknownPropertyError, match="unknown property 'nosuch'"):
        await search.page(scenes, SearchRequest(query))
    assert reads.reads == 2


async def test_a_search_naming_no_property_reads_no_names(scenes: Any) -> None:
    search = ItemSearch()
    reads = ReadCounter(search)
    page = await search.page(scenes, SearchRequest(ItemQuery(collections=("scenes",))))
    assert _ids(page) == ["old"] and reads.reads == 0 and search.names.kept() is None


async def test_the_items_of_a_collection_that_does_not_exist_are_a_not_found(
    scenes: Any,
) -> None:
    request = SearchRequest(ItemQuery(collections=("nosuch",)), collection="nosuch")
    with pytest.raises(NotFoundError):
        await ItemSearch().page(scenes, request)
    known = SearchRequest(ItemQuery(collections=("scenes",)), collection="scenes")
    assert _ids(await ItemSearch().page(scenes, known)) == ["old"]


@pytest.mark.parametrize("budget_ms, matched", [(0, None), (5_000, 30)])
async def test_number_matched_is_counted_within_the_budget_only(
    database: Any, budget_ms: int, matched: int | None
) -> None:
    async with database.write() as conn:
        await collection_repo.create_collection(conn, make_collection("grid"))
    await _write(database, *grid_items(30, "grid"))
    search = ItemSearch(count_budget_ms=budget_ms)
    first = await search.page(database, SearchRequest(ItemQuery(limit=10)))
    assert len(first.items) == 10 and first.number_matched == matched
    whole = await search.page(database, SearchRequest(ItemQuery(limit=100)))
    assert whole.number_matched == 30  # a page holding every match knows it for free


def test_each_search_remembers_its_own_slow_counts() -> None:
    """Two apps in one process (the tests, bench/count_cost.py) do not share the memory."""
    one, other = ItemSearch(), ItemSearch()
    query = ItemQuery(bbox=(0, 0, 1, 1))
    key = SlowSearches.key(SearchShape.of(query).counted, query, {"west": 0})
    one.slow.remember(key)
    assert key in one.slow and key not in other.slow
    one.slow.clear()
    assert key not in one.slow


def test_statements_keep_the_most_recently_used_shapes() -> None:
    statements = Statements(size=2)
    shapes = [SearchShape.of(ItemQuery(limit=1, text=("x",) * n)) for n in range(3)]
    first = statements.get(shapes[0], None, None)
    second = statements.get(shapes[1], None, None)
    assert statements.get(shapes[0], None, None) is first  # used again: now the newest
    statements.get(shapes[2], None, None)  # drops shapes[1], the least recently used
    assert statements.get(shapes[0], None, None) is first
    assert statements.get(shapes[1], None, None) is not second  # built again


def test_a_filter_is_kept_per_names_and_not_when_long() -> None:
    statements = Statements()
    shape = SearchShape.of(ItemQuery())
    tree = parse_filter("cloud < 10")
    kept = statements.get(shape, tree, frozenset({"cloud"}))
    assert statements.get(shape, tree, frozenset({"cloud"})) is kept
    assert statements.get(shape, tree, frozenset({"cloud", "snow"})) is not kept
    with pytest.raises(UnknownPropertyError):
        statements.get(shape, tree, frozenset({"snow"}))
    long = {"op": "in", "args": [{"property": "id"}, ["x" * 100] * 100]}
    assert len(repr(long)) > MAX_CACHED_FILTER_CHARS
    assert statements.get(shape, long, None) is not statements.get(shape, long, None)
