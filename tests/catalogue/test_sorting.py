"""Sorted keyset paging: no item skipped or repeated, with ties, JSON nulls and missing values."""

from __future__ import annotations

import base64
import functools
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from catalogue.errors import InvalidInputError
from catalogue.filters import parse_filter
from catalogue.repositories import collections as collection_repo
from catalogue.repositories import items as item_repo
from catalogue.search import ItemQuery, PageToken, SortKey, parse_sortby
from catalogue.search.service import ItemPage, ItemSearch
from catalogue.serializers import item_to_row
from tests.helpers import make_collection, make_item

# one search service for the module, as an app has one: its statements stay cached
SEARCH = ItemSearch()

MISSING = object()


def _items(count: int = 1000) -> list[dict[str, Any]]:
    rng = random.Random(7)
    start = datetime(2022, 1, 1, tzinfo=UTC)
    items = []
    for index in range(count):
        extra: dict[str, Any] = {}
        gsd = rng.choice([10, 10, 20, 60, None, MISSING])  # many ties, JSON nulls, missing
        if gsd is not MISSING:
            extra["gsd"] = gsd
        platform = rng.choice(["sentinel-2a", "sentinel-2b", MISSING])
        if platform is not MISSING:
            extra["platform"] = platform
        when = start + timedelta(days=rng.randrange(30))  # many equal datetimes
        collection = "c-a" if index < 500 else "c-b"
        items.append(make_item(f"it-{index % 500:04d}", collection, when=when, **extra))
    return items  # ids repeat across the two collections on purpose


def _value(item: dict[str, Any], field: str) -> Any:
    if field in ("id", "collection"):
        return item[field]
    if field == "datetime":
        return item["properties"]["datetime"]
    return item["properties"].get(field.removeprefix("properties."), MISSING)


def _compare_values(a: Any, b: Any, descending: bool) -> int:
    """PostgreSQL's order: SQL NULL (missing) last asc / first desc; JSON null below values."""
    if a is MISSING or b is MISSING:
        if a is b:
            return 0
        result = 1 if a is MISSING else -1
        return -result if descending else result
    rank_a, rank_b = (a is not None, a), (b is not None, b)
    if rank_a[0] != rank_b[0]:
        result = -1 if a is None else 1
    elif a is None or a == b:
        return 0
    else:
        result = -1 if a < b else 1
    return -result if descending else result


def expected_order(items: list[dict[str, Any]], keys: list[SortKey]) -> list[tuple[str, str]]:
    fields = [key.field for key in keys]
    full = list(keys)
    for tie in ("id", "collection"):
        if tie not in fields:
            full.append(SortKey(tie, keys[-1].descending))

    def compare(a: dict[str, Any], b: dict[str, Any]) -> int:
        for key in full:
            result = _compare_values(_value(a, key.field), _value(b, key.field), key.descending)
            if result:
                return result
        return 0

    ordered = sorted(items, key=functools.cmp_to_key(compare))
    return [(item["collection"], item["id"]) for item in ordered]


@pytest.fixture
async def sorted_catalogue(database) -> list[dict[str, Any]]:
    items = _items()
    async with database.write() as conn:
        for collection in ("c-a", "c-b"):
            await collection_repo.create_collection(conn, make_collection(collection))
        await item_repo.upsert_items(conn, [item_to_row(item) for item in items])
    return items


SORTS = [
    "-gsd,+platform",
    "+gsd",
    "-properties.platform,-gsd",
    "+datetime",
    "-datetime",
    "+properties.gsd,-datetime",
    "+collection,-id",
]


@pytest.mark.parametrize("sortby", SORTS)
async def test_paging_a_sorted_search_visits_every_item_once_in_order(
    database, sorted_catalogue: list[dict[str, Any]], sortby: str
) -> None:
    keys = list(parse_sortby(sortby.split(",")))
    seen: list[tuple[str, str]] = []
    token = None
    async with database.read() as conn:
        for _ in range(100):
            page = await SEARCH.items(conn, ItemQuery(limit=37, sortby=tuple(keys), token=token))
            seen += [(item["collection"], item["id"]) for item in page.items]
            token = page.next_token
            if token is None:
                break
    assert len(seen) == len(set(seen)) == len(sorted_catalogue)
    assert seen == expected_order(sorted_catalogue, keys)


async def test_a_token_from_another_sort_is_refused(database, sorted_catalogue) -> None:
    async with database.read() as conn:
        page = await SEARCH.items(conn, ItemQuery(limit=5, sortby=(SortKey("gsd"),)))
        with pytest.raises(InvalidInputError, match="sortby"):
            await SEARCH.items(conn, ItemQuery(limit=5, token=page.next_token))


async def test_unknown_sort_property_is_refused_when_queryables_are_known(database) -> None:
    async with database.read() as conn:
        with pytest.raises(InvalidInputError, match="nope"):
            await SEARCH.items(conn, ItemQuery(sortby=(SortKey("properties.nope"),)), names={"gsd"})


async def _walk_forward(conn: Any, query: ItemQuery) -> list[ItemPage]:
    pages = [await SEARCH.items(conn, query)]
    while pages[-1].next_token is not None:
        pages.append(await SEARCH.items(conn, replace(query, token=pages[-1].next_token)))
        assert len(pages) < 100
    return pages


def _ids(page: ItemPage) -> list[tuple[str, str]]:
    return [(item["collection"], item["id"]) for item in page.items]


PREV_FILTERS = [
    None,  # every item
    {"op": "=", "args": [{"property": "platform"}, "sentinel-2a"]},  # ties on everything else
]


@pytest.mark.parametrize("sortby", [*SORTS, ""])
@pytest.mark.parametrize("cql2", PREV_FILTERS, ids=["all", "filtered"])
async def test_prev_walks_back_through_exactly_the_pages_next_gave(
    database, sorted_catalogue: list[dict[str, Any]], sortby: str, cql2: Any
) -> None:
    """Forward with `next` to the last page, then back with `prev` to the first: the same
    pages, with ties, JSON nulls and missing values in the sort keys."""
    keys = parse_sortby(sortby.split(",")) if sortby else ()
    query = ItemQuery(limit=37, sortby=keys, filter=parse_filter(cql2) if cql2 else None)
    async with database.read() as conn:
        forward = await _walk_forward(conn, query)
        assert len(forward) > 3 and forward[0].prev_token is None
        backward = [forward[-1]]
        while backward[-1].prev_token is not None:
            token = backward[-1].prev_token
            backward.append(await SEARCH.items(conn, replace(query, token=token)))
            assert len(backward) <= len(forward)
    assert [_ids(page) for page in reversed(backward)] == [_ids(page) for page in forward]
    # a page reached backwards links onwards exactly like the one reached forwards
    for went_back, went_forward in zip(reversed(backward[1:]), forward, strict=False):
        assert went_back.next_token == went_forward.next_token


async def test_prev_of_a_page_after_an_uneven_start_gives_the_rows_just_before(
    database, sorted_catalogue: list[dict[str, Any]]
) -> None:
    """A limit changed between pages: `prev` gives the `limit` rows just before the page, and
    a `prev` link only while rows remain before those."""
    keys = parse_sortby(["-gsd"])
    async with database.read() as conn:
        first = await SEARCH.items(conn, ItemQuery(limit=5, sortby=keys))
        second = await SEARCH.items(conn, ItemQuery(limit=20, sortby=keys, token=first.next_token))
        back = await SEARCH.items(conn, ItemQuery(limit=20, sortby=keys, token=second.prev_token))
    assert _ids(back) == _ids(first) and back.prev_token is None
    assert back.next_token == first.next_token


async def test_a_prev_token_from_another_sort_is_refused(database, sorted_catalogue) -> None:
    async with database.read() as conn:
        first = await SEARCH.items(conn, ItemQuery(limit=5))
        second = await SEARCH.items(conn, ItemQuery(limit=5, token=first.next_token))
        assert second.prev_token is not None and second.prev_token.backward
        with pytest.raises(InvalidInputError, match="sortby"):
            await SEARCH.items(
                conn, ItemQuery(limit=5, sortby=(SortKey("gsd"),), token=second.prev_token)
            )


@pytest.mark.parametrize("direction", [["next"], ["prev", "prev"], [None], [True]])
def test_a_token_with_a_direction_other_than_prev_is_refused(direction: list[Any]) -> None:
    raw = orjson.dumps(["abc", [1, None], *direction])
    with pytest.raises(InvalidInputError, match="not a valid paging token"):
        PageToken.decode(base64.urlsafe_b64encode(raw).decode())


def test_tokens_keep_their_direction() -> None:
    forward = PageToken((datetime(2022, 1, 1, tzinfo=UTC), "a", None), "sig")
    backward = replace(forward, backward=True)
    assert PageToken.decode(forward.encode()) == forward
    assert PageToken.decode(backward.encode()) == backward
