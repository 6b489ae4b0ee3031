"""Item search: one SELECT per page, keyset-paginated so page 1000 costs what page 1 costs.

Order is `datetime DESC, id DESC, collection DESC` (pgstac's default order, with the
collection as the final tie-break so that equal ids in two collections page correctly).
The next-page token is the last row's key; the next page is every row strictly below it,
a row-value comparison that PostgreSQL answers from the (datetime, id, collection) index.
Other orders (`sortby`) are built in `catalogue.repositories.sorting`. A `prev` token (the
first row of a page, `backward`) reads the rows before it: the same statement in the reversed
order, its rows turned back to front. The count of every match (`numberMatched`) is a
separate, time-bounded statement (`count_within`). Statements are built once per search
shape and kept by `catalogue.search.service`, the one caller.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from collections.abc import Set as AbstractSet
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    DateTime,
    Float,
    Integer,
    String,
    Text,
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

from catalogue.filters import filter_clause
from catalogue.models import CollectionRow, ItemRow, item_text_document
from catalogue.repositories.free_text import matches_any
from catalogue.repositories.item_text import item_text_columns
from catalogue.repositories.search_shape import (
    ONE,
    PLAIN_BBOX,
    SearchShape,
)
from catalogue.repositories.sorting import (
    OrderKey,
    after_placeholders,
    check_token,
    order_keys,
    reversed_keys,
    token_after,
)
from catalogue.search.query import ItemQuery, PageToken

logger = logging.getLogger(__name__)
T = TypeVar("T")

items = ItemRow.__table__
collections = CollectionRow.__table__


def _envelope(west: Any, south: Any, east: Any, north: Any) -> Any:
    return func.ST_MakeEnvelope(west, south, east, north, 4326)


def _float(name: str) -> Any:
    return bindparam(name, type_=Float)


def bbox_clause(shape: SearchShape) -> ColumnElement[bool]:
    """Intersects the bbox; a west > east bbox crosses the antimeridian and is split in two."""
    west, south, east, north = (_float(name) for name in ("west", "south", "east", "north"))
    if shape.bbox == PLAIN_BBOX:
        return func.ST_Intersects(items.c.geometry, _envelope(west, south, east, north))
    return or_(
        func.ST_Intersects(items.c.geometry, _envelope(west, south, literal(180.0), north)),
        func.ST_Intersects(items.c.geometry, _envelope(literal(-180.0), south, east, north)),
    )


def intersects_clause() -> ColumnElement[bool]:
    """Intersects the GeoJSON geometry of the `intersects` parameter."""
    geojson = bindparam("intersects", type_=Text)
    return func.ST_Intersects(
        items.c.geometry, func.ST_SetSRID(func.ST_GeomFromGeoJSON(geojson), 4326)
    )


# The first column of the GiST index of migration 0008 (constants inline so the planner
# matches it): an item's closed time range [start_datetime, end_datetime].
ITEM_TIME_RANGE: ColumnElement[Any] = literal_column(
    "tstzrange(start_datetime, end_datetime, '[]')"
)
INTERVAL_START = bindparam("start", type_=DateTime(timezone=True))
INTERVAL_END = bindparam("end", type_=DateTime(timezone=True))


def interval_clause() -> ColumnElement[bool]:
    """Overlap of the item's [start, end] with the query interval (ends inclusive; an open
    end, a NULL `start` or `end`, is an unbounded range end), answered by the range index."""
    query_range = func.tstzrange(INTERVAL_START, INTERVAL_END, literal_column("'[]'"))
    return ITEM_TIME_RANGE.op("&&")(query_range)


def _largest_span(column: Any, collection_ids: Any | None) -> Any:
    """The largest of `column` over the named collections (all of them when None), read in
    the same statement (so never stale); NULL when any of them is unknown or none exists."""
    largest = select(case((func.bool_and(column.is_not(None)), func.max(column))))
    if collection_ids is not None:
        largest = largest.where(collection_ids)
    return largest.scalar_subquery()


def datetime_bound(shape: SearchShape, collection_ids: Any | None) -> list[Any]:
    """A redundant range on `datetime` implied by the interval overlap (migration 0007).

    An item overlaps [a, b] only if start_datetime <= b and end_datetime >= a; with the
    collections' upper bounds of `datetime - start_datetime` and `end_datetime - datetime`
    that gives `a - max_after <= datetime <= b + max_before`. It drops no row, and lets the
    (collection, datetime, id) index serve a long interval in one collection in the search's
    order (bench/results/code_figures.md). Unknown
    bounds give an infinite end, that is no bound. Not for searches with a bbox or
    intersects across all collections: the (time range, geometry) GiST serves those better.
    A datetime-only search across all collections needs it: without it the planner walks the
    (datetime, id, collection) index back from the newest item, which takes seconds for a
    month years back. `collection_ids` is the condition on `collections.id` that
    names the searched collections.
    """
    clauses: list[Any] = []
    if shape.has_end:
        before = _largest_span(collections.c.max_datetime_minus_start, collection_ids)
        clauses.append(
            items.c.datetime
            <= func.coalesce(INTERVAL_END + before, literal_column("'infinity'::timestamptz"))
        )
    if shape.has_start:
        after = _largest_span(collections.c.max_end_minus_datetime, collection_ids)
        clauses.append(
            items.c.datetime
            >= func.coalesce(INTERVAL_START - after, literal_column("'-infinity'::timestamptz"))
        )
    return clauses


def text_clause(terms: int) -> ColumnElement[bool]:
    """Any of the terms `text_0 ..` (each may be a quoted phrase) in title, description or
    keywords."""
    return matches_any(
        item_text_document(),
        [bindparam(f"text_{index}", type_=String) for index in range(terms)],
    )


def _one_of(column: Any, name: str, how_many: int) -> ColumnElement[bool]:
    """`column = :name` for one value; `column = ANY(:name)` for several, one array
    parameter: IN binds (and SQLAlchemy expands) one per value, which shows in an `ids=`
    search's API time, and PostgreSQL plans the two alike. One value must stay an equality:
    PostgreSQL 15 cannot read a B-tree in order under `= ANY`, and the search's order on
    (collection, datetime, id) depends on it (with ANY, a year of one collection walked the
    all-collections index; bench/results/code_figures.md).
    """
    if how_many == ONE:
        return column == bindparam(name, type_=String)
    return column == any_(bindparam(name, type_=ARRAY(String)))


def where_clauses(shape: SearchShape) -> list[ColumnElement[bool]]:
    """The conditions of every search of this shape, as named parameters
    (`catalogue.repositories.search_shape.search_parameters`); the filter is not among
    them (see `search_statement`)."""
    clauses: list[ColumnElement[bool]] = []
    if shape.collections:
        clauses.append(_one_of(items.c.collection, "collections", shape.collections))
    if shape.ids:
        clauses.append(_one_of(items.c.id, "ids", shape.ids))
    if shape.bbox:
        clauses.append(bbox_clause(shape))
    if shape.intersects:
        clauses.append(intersects_clause())
    if shape.interval:
        clauses.append(interval_clause())
        if shape.collections or not shape.spatial:
            named = (
                _one_of(collections.c.id, "collections", shape.collections)
                if shape.collections
                else None
            )
            clauses.extend(datetime_bound(shape, named))
    if shape.text_terms:
        clauses.append(text_clause(shape.text_terms))
    return clauses


# `item_text_columns` over the page subquery of `search_statement`, built once.
PAGE_CONTENT_COLUMNS: tuple[ColumnElement[Any], ColumnElement[Any], ColumnElement[Any]] = (
    literal_column("page.collection"),
    literal_column("page.id"),
    literal_column("page.content"),
)
PAGE_TEXT_COLUMNS = item_text_columns(*PAGE_CONTENT_COLUMNS)


def search_statement(
    shape: SearchShape, keys: list[OrderKey], condition: ColumnElement[bool] | None = None
) -> Any:
    """The SELECT of one page (plus one row, to know whether a next page exists), its values
    as named parameters; `condition` (a CQL2 filter) is added with its values bound.

    `shape.as_text` selects the `item_text_columns` (of `shape.paths` only, when given)
    instead of `content`. They are computed in an outer query over the sorted, limited
    page: in a single SELECT PostgreSQL would print every matching row's JSON before the
    top-N sort (bench/results/code_figures.md), because it postpones
    only expensive expressions past a sort.
    """
    clauses = where_clauses(shape)
    if condition is not None:
        clauses.append(condition)
    if shape.token_nulls is not None:
        clauses.append(after_placeholders(keys, shape.token_nulls))
    key_columns = [key.selected().label(f"k{i}") for i, key in enumerate(keys)]
    order = [key.order_clause() for key in keys]
    limit = bindparam("limit", type_=Integer)
    if not shape.as_text:
        return select(items.c.content, *key_columns).where(*clauses).order_by(*order).limit(limit)
    page = (
        select(
            items.c.collection,
            items.c.id,
            items.c.content,
            *([items.c.properties] if shape.paths is not None else []),
            *key_columns,
            *(key.expression.label(f"o{i}") for i, key in enumerate(keys) if key.is_property),
        )
        .where(*clauses)
        .order_by(*order)
        .limit(limit)
        .subquery("page")
    )
    # The outer query names the page's columns as text instead of through `page.c`: building
    # that column collection (SQLAlchemy proxies) was a large share of a search's API time.
    return (
        select(
            *(
                PAGE_TEXT_COLUMNS
                if shape.paths is None
                else item_text_columns(
                    *PAGE_CONTENT_COLUMNS,
                    paths=shape.paths,
                    properties=literal_column("page.properties"),
                )
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


def count_statement(shape: SearchShape, condition: ColumnElement[bool] | None = None) -> Any:
    """`SELECT count(*)` of every row a search of this shape matches (no token, no order)."""
    clauses = where_clauses(shape)
    if condition is not None:
        clauses.append(condition)
    return select(func.count()).select_from(items).where(*clauses)


class PreparedSearch(NamedTuple):
    """The statement of every search of one shape, with its resolved order."""

    statement: Any
    keys: list[OrderKey]


def build_statement(
    shape: SearchShape, tree: Any = None, names: AbstractSet[str] | None = None
) -> PreparedSearch:
    """The statement of the shape, with the CQL2 filter `tree` when given (a filter naming
    a property outside `names` is refused; None accepts any name). Sort fields are checked
    before (`check_sort_fields`): a built statement serves any names. `keys` are always the
    search's own order (the one its tokens are signed with), also when a `prev` token has
    the statement read it reversed. Kept built by `catalogue.search.service.Statements`."""
    condition = None if tree is None else filter_clause(tree, names)
    keys = order_keys(shape.sortby)
    if shape.count:
        return PreparedSearch(count_statement(shape, condition), keys)
    ordered = reversed_keys(keys) if shape.backward else keys
    return PreparedSearch(search_statement(shape, ordered, condition), keys)


class Rows(NamedTuple):
    """One page of rows in the search's order, with its neighbours' tokens."""

    page: list[Any]
    next_token: PageToken | None
    prev_token: PageToken | None
    number_matched: int | None


def _paged(rows: Sequence[Any], query: ItemQuery, keys: list[OrderKey]) -> Rows:
    """The page (`limit` of the `limit + 1` rows read) and its `next` and `prev` tokens.

    Forward, the extra row says a next page exists; a page reached with a token has one
    before it. Backward (a `prev` token) the rows came in the reversed order: the extra row
    says an earlier page exists, and the token's own row follows the page."""
    page, more = list(rows[: query.limit]), len(rows) > query.limit
    if query.token is not None and query.token.backward:
        page.reverse()
        first_more, last_more = more, True
    else:
        first_more, last_more = query.token is not None, more
    next_token = token_after(keys, page[-1]) if last_more and page else None
    prev_token = token_after(keys, page[0], backward=True) if first_more and page else None
    matched = len(page) if (query.token is None and not more) else None
    return Rows(page, next_token, prev_token, matched)


async def read_rows(
    conn: AsyncConnection, prepared: PreparedSearch, query: ItemQuery, parameters: dict[str, Any]
) -> Rows:
    """One page of rows of `query` (whose shape `prepared` is built for, with its
    `search_parameters`) in its order, its tokens and, when free, the count."""
    statement, keys = prepared
    if query.token is not None:
        check_token(keys, query.token)
    # a value PostgreSQL refuses (class 22: a filter's arithmetic overflowed ...) becomes an
    # InvalidInputError in `Database`'s one translator (catalogue.driver_errors)
    rows = (await conn.execute(statement, parameters)).all()
    return _paged(rows, query, keys)


QUERY_CANCELED = "57014"  # what PostgreSQL raises when statement_timeout fires


async def within_budget(
    conn: AsyncConnection, timeout_ms: int, run: Callable[[], Awaitable[T]]
) -> T | None:
    """What `run` (statements on `conn`) gives, or None when it takes over `timeout_ms`.

    A page never needs the count: keyset paging reads `limit + 1` rows whatever the size of
    the result, while counting every match of a broad search at a million items is a full
    index scan. So the count runs under a transaction-local `statement_timeout`
    (`set_config(..., true)`, a bound parameter): exact when it ends within the budget,
    None when PostgreSQL cancels it. `conn` must be in a transaction of its own that the
    caller rolls back after this (a cancelled statement aborts the transaction).
    """
    await conn.exec_driver_sql(
        "SELECT set_config('statement_timeout', $1, true)", (str(timeout_ms),)
    )
    try:
        return await run()
    except DBAPIError as error:
        if str(getattr(error.orig, "sqlstate", "")) != QUERY_CANCELED:
            raise
        logger.debug("count over %d ms, numberMatched left out", timeout_ms)
        return None


async def count_within(
    conn: AsyncConnection, statement: Any, parameters: dict[str, Any], timeout_ms: int
) -> int | None:
    """The count `statement` (of a counted shape) gives, or None when it takes over
    `timeout_ms` (`within_budget`)."""

    async def run() -> int:
        return int((await conn.execute(statement, parameters)).scalar_one())

    return await within_budget(conn, timeout_ms, run)
