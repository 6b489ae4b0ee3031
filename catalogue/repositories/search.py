"""Item search: one SELECT per page, keyset-paginated so page 1000 costs what page 1 costs.

Order is `datetime DESC, id DESC, collection DESC` (pgstac's default order, with the
collection as the final tie-break so that equal ids in two collections page correctly).
The next-page token is the last row's key; the next page is every row strictly below it,
a row-value comparison that PostgreSQL answers from the (datetime, id, collection) index.
Other orders (`sortby`) are built in `catalogue.repositories.sorting`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import (
    ARRAY,
    ColumnElement,
    DateTime,
    String,
    any_,
    bindparam,
    case,
    func,
    literal,
    literal_column,
    or_,
    select,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from catalogue.errors import InvalidInputError
from catalogue.filters import filter_clause
from catalogue.models import TEXT_SEARCH_CONFIG, CollectionRow, ItemRow, item_text_document
from catalogue.repositories.item_text import item_text_columns, stored_item_text
from catalogue.repositories.sorting import after_clause, order_keys, token_after
from catalogue.search import Interval, ItemQuery, PageToken
from catalogue.serializers import StoredItemText

items = ItemRow.__table__
collections = CollectionRow.__table__


@dataclass(frozen=True)
class ItemPage:
    """One page of results; `number_matched` only when it was free to know."""

    items: list[dict[str, Any]]
    next_token: PageToken | None
    number_matched: int | None


@dataclass(frozen=True)
class ItemTextPage:
    """One page as the database prints its items (for the API, see `item_json_text`)."""

    items: list[StoredItemText]
    next_token: PageToken | None
    number_matched: int | None


def _envelope(west: float, south: float, east: float, north: float) -> Any:
    return func.ST_MakeEnvelope(west, south, east, north, 4326)


def bbox_clause(bbox: tuple[float, float, float, float]) -> ColumnElement[bool]:
    """Intersects the bbox; a west > east bbox crosses the antimeridian and is split in two."""
    west, south, east, north = bbox
    if west <= east:
        return func.ST_Intersects(items.c.geometry, _envelope(west, south, east, north))
    return or_(
        func.ST_Intersects(items.c.geometry, _envelope(west, south, 180.0, north)),
        func.ST_Intersects(items.c.geometry, _envelope(-180.0, south, east, north)),
    )


def intersects_clause(geometry: dict[str, Any]) -> ColumnElement[bool]:
    shape = func.ST_SetSRID(func.ST_GeomFromGeoJSON(orjson.dumps(geometry).decode()), 4326)
    return func.ST_Intersects(items.c.geometry, shape)


# The first column of the GiST index of migration 0008 (constants inline so the planner
# matches it): an item's closed time range [start_datetime, end_datetime].
ITEM_TIME_RANGE = literal_column("tstzrange(start_datetime, end_datetime, '[]')")


def interval_clause(interval: Interval) -> ColumnElement[bool]:
    """Overlap of the item's [start, end] with the query interval (ends inclusive; an open
    end is an unbounded range end), answered by the range index."""
    query_range = func.tstzrange(interval.start, interval.end, literal_column("'[]'"))
    return ITEM_TIME_RANGE.op("&&")(query_range)


def _largest_span(column: Any, collection_ids: tuple[str, ...]) -> Any:
    """The largest of `column` over the named collections (all of them when none is named),
    read in the same statement (so never stale); NULL when any of them is unknown or none
    exists."""
    largest = select(case((func.bool_and(column.is_not(None)), func.max(column))))
    if collection_ids:
        largest = largest.where(collections.c.id.in_(collection_ids))
    return largest.scalar_subquery()


def datetime_bound(interval: Interval, collection_ids: tuple[str, ...]) -> list[Any]:
    """A redundant range on `datetime` implied by the interval overlap (migration 0007).

    An item overlaps [a, b] only if start_datetime <= b and end_datetime >= a; with the
    collections' upper bounds of `datetime - start_datetime` and `end_datetime - datetime`
    that gives `a - max_after <= datetime <= b + max_before`. It drops no row, and lets the
    (collection, datetime, id) index serve a long interval in one collection in the search's
    order (574 ms -> 0.9 ms at 1M items, bench/results/search_1m_findings.md). Unknown
    bounds give an infinite end, that is no bound. Not for searches with a bbox or
    intersects across all collections: the (time range, geometry) GiST serves those better.
    A datetime-only search across all collections needs it: without it the planner walks the
    (datetime, id, collection) index back from the newest item (1.4 s at 1M items for a
    month five years back).
    """
    clauses: list[Any] = []
    if interval.end is not None:
        before = _largest_span(collections.c.max_datetime_minus_start, collection_ids)
        end = literal(interval.end, DateTime(timezone=True)) + before
        clauses.append(
            items.c.datetime <= func.coalesce(end, literal_column("'infinity'::timestamptz"))
        )
    if interval.start is not None:
        after = _largest_span(collections.c.max_end_minus_datetime, collection_ids)
        start = literal(interval.start, DateTime(timezone=True)) - after
        clauses.append(
            items.c.datetime >= func.coalesce(start, literal_column("'-infinity'::timestamptz"))
        )
    return clauses


def text_clause(terms: tuple[str, ...]) -> ColumnElement[bool]:
    """Any of the terms (each may be a quoted phrase) in title, description or keywords."""
    queries = [
        func.websearch_to_tsquery(literal_column(f"'{TEXT_SEARCH_CONFIG}'::regconfig"), term)
        for term in terms
    ]
    combined = queries[0]
    for extra in queries[1:]:
        combined = combined.op("||")(extra)
    return item_text_document().op("@@")(combined)


def _one_of(column: Any, values: tuple[str, ...]) -> ColumnElement[bool]:
    """`column = value` for one value; `column = ANY(array)` for several: one bound parameter
    where IN binds (and SQLAlchemy expands) one per value, 5 % of an `ids=` search's API
    time for 20 ids, and PostgreSQL plans the two alike. One value must stay an equality:
    PostgreSQL 15 cannot read a B-tree in order under `= ANY`, and the search's order on
    (collection, datetime, id) depends on it (with ANY, a year of one collection at 1M
    items walked the all-collections index: 27.8 ms instead of 0.3 ms of SQL, h_fields
    250 -> 26 req/s).
    """
    if len(values) == 1:
        return column == values[0]
    return column == any_(bindparam(None, list(values), type_=ARRAY(String), unique=True))


def where_clauses(
    query: ItemQuery, known_properties: set[str] | None = None
) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = []
    if query.collections:
        clauses.append(_one_of(items.c.collection, query.collections))
    if query.ids:
        clauses.append(_one_of(items.c.id, query.ids))
    if query.bbox is not None:
        clauses.append(bbox_clause(query.bbox))
    if query.intersects is not None:
        clauses.append(intersects_clause(query.intersects))
    if query.interval is not None:
        clauses.append(interval_clause(query.interval))
        spatial = query.bbox is not None or query.intersects is not None
        if query.collections or not spatial:
            clauses.extend(datetime_bound(query.interval, query.collections))
    if query.text:
        clauses.append(text_clause(query.text))
    if query.filter is not None:
        clauses.append(filter_clause(query.filter, known_properties))
    return clauses


# `item_text_columns` over the page subquery of `search_statement`, built once.
PAGE_CONTENT_COLUMNS = (
    literal_column("page.collection"),
    literal_column("page.id"),
    literal_column("page.content"),
)
PAGE_TEXT_COLUMNS = item_text_columns(*PAGE_CONTENT_COLUMNS)


def search_statement(
    query: ItemQuery,
    keys: list[Any],
    known_properties: set[str] | None = None,
    as_text: bool = False,
    members: tuple[str, ...] | None = None,
) -> Any:
    """The SELECT of one page (plus one row, to know whether a next page exists).

    `as_text` selects the `item_text_columns` (of `members` only, when given) instead of
    `content`. They are computed in an
    outer query over the sorted, limited page: in a single SELECT PostgreSQL would print
    every matching row's JSON before the top-N sort (700 rows for 51 at 1M items, measured
    12 -> 25 ms), because it postpones only expensive expressions past a sort.
    """
    clauses = where_clauses(query, known_properties)
    if query.token is not None:
        clauses.append(after_clause(keys, query.token))
    key_columns = [key.selected().label(f"k{i}") for i, key in enumerate(keys)]
    order = [key.order_clause() for key in keys]
    if not as_text:
        return (
            select(items.c.content, *key_columns)
            .where(*clauses)
            .order_by(*order)
            .limit(query.limit + 1)
        )
    page = (
        select(
            items.c.collection,
            items.c.id,
            items.c.content,
            *key_columns,
            *(key.expression.label(f"o{i}") for i, key in enumerate(keys) if key.is_property),
        )
        .where(*clauses)
        .order_by(*order)
        .limit(query.limit + 1)
        .subquery("page")
    )
    # The outer query names the page's columns as text instead of through `page.c`: building
    # that column collection (SQLAlchemy proxies) took 12 % of a search's API time.
    return (
        select(
            *(
                PAGE_TEXT_COLUMNS
                if members is None
                else item_text_columns(*PAGE_CONTENT_COLUMNS, members=members)
            ),
            *(literal_column(f"page.k{i}").label(f"k{i}") for i in range(len(keys))),
        )
        .select_from(page)
        .order_by(
            *(
                key.order_clause(literal_column(f"page.{'o' if key.is_property else 'k'}{i}"))
                for i, key in enumerate(keys)
            )
        )
    )


async def _search_rows(
    conn: AsyncConnection,
    query: ItemQuery,
    known_properties: set[str] | None,
    as_text: bool,
    members: tuple[str, ...] | None = None,
) -> tuple[list[Any], PageToken | None, int | None]:
    """One page of rows in the query's order, its next-page token and, when free, the count."""
    keys = order_keys(query.sortby, known_properties)
    statement = search_statement(query, keys, known_properties, as_text, members)
    try:
        rows = (await conn.execute(statement)).all()
    except DBAPIError as error:  # class 22, data exception: a filter's arithmetic overflowed ...
        if not str(getattr(error.orig, "sqlstate", "")).startswith("22"):
            raise
        raise InvalidInputError(f"search: the database refused a value: {error.orig}") from error
    page, more = rows[: query.limit], len(rows) > query.limit
    next_token = token_after(keys, page[-1]) if more and page else None
    matched = len(page) if (query.token is None and not more) else None
    return page, next_token, matched


async def search_items(
    conn: AsyncConnection, query: ItemQuery, known_properties: set[str] | None = None
) -> ItemPage:
    """One page in the query's order, items as dicts; `known_properties` (the queryables)
    guards sortby."""
    page, next_token, matched = await _search_rows(conn, query, known_properties, as_text=False)
    return ItemPage([row.content for row in page], next_token, matched)


async def search_item_texts(
    conn: AsyncConnection,
    query: ItemQuery,
    known_properties: set[str] | None = None,
    members: tuple[str, ...] | None = None,
) -> ItemTextPage:
    """The same page as `search_items`, items as the database prints them (the API's path);
    only their `members` (top-level keys) and no links when those are given."""
    page, next_token, matched = await _search_rows(
        conn, query, known_properties, as_text=True, members=members
    )
    return ItemTextPage([stored_item_text(row) for row in page], next_token, matched)
