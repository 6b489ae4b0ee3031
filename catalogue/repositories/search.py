"""Item search: one SELECT per page, keyset-paginated so page 1000 costs what page 1 costs.

Order is `datetime DESC, id DESC, collection DESC` (pgstac's default order, with the
collection as the final tie-break so that equal ids in two collections page correctly).
The next-page token is the last row's key; the next page is every row strictly below it,
a row-value comparison that PostgreSQL answers from the (datetime, id, collection) index.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import ColumnElement, and_, func, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from catalogue.models import ItemRow
from catalogue.search import Interval, ItemQuery, PageToken

items = ItemRow.__table__
ORDER = (items.c.datetime.desc(), items.c.id.desc(), items.c.collection.desc())


@dataclass(frozen=True)
class ItemPage:
    """One page of results; `number_matched` only when it was free to know."""

    items: list[dict[str, Any]]
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


def interval_clause(interval: Interval) -> ColumnElement[bool]:
    """Overlap of the item's [start, end] with the query interval (ends inclusive)."""
    clauses = []
    if interval.end is not None:
        clauses.append(items.c.start_datetime <= interval.end)
    if interval.start is not None:
        clauses.append(items.c.end_datetime >= interval.start)
    return and_(*clauses)


def where_clauses(query: ItemQuery) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = []
    if query.collections:
        clauses.append(items.c.collection.in_(query.collections))
    if query.ids:
        clauses.append(items.c.id.in_(query.ids))
    if query.bbox is not None:
        clauses.append(bbox_clause(query.bbox))
    if query.intersects is not None:
        clauses.append(intersects_clause(query.intersects))
    if query.interval is not None:
        clauses.append(interval_clause(query.interval))
    return clauses


async def search_items(conn: AsyncConnection, query: ItemQuery) -> ItemPage:
    clauses = where_clauses(query)
    if query.token is not None:
        token = query.token
        clauses.append(
            tuple_(items.c.datetime, items.c.id, items.c.collection)
            < tuple_(token.datetime, token.id, token.collection)
        )
    statement = (
        select(items.c.content, items.c.datetime)
        .where(*clauses)
        .order_by(*ORDER)
        .limit(query.limit + 1)
    )
    rows = (await conn.execute(statement)).all()
    page, more = rows[: query.limit], len(rows) > query.limit
    next_token = None
    if more and page:
        last = page[-1]
        next_token = PageToken(last.datetime, last.content["id"], last.content["collection"])
    matched = len(page) if (query.token is None and not more) else None
    return ItemPage([row.content for row in page], next_token, matched)
