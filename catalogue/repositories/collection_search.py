"""Collection search (https://github.com/stac-api-extensions/collection-search): bbox and
datetime against each collection's extent, free text over title/description/keywords, a
CQL2 filter over the collection's fields, sortby on any top-level field, keyset paging.
Collections are few (hundreds to thousands), so no index beyond the primary key is needed.

Names in a collection filter (`COLLECTION_FIELDS`): `id`; `geometry` (alias `extent`) is
the overall spatial extent, the whole world when the collection gives none; `datetime` is
the overall temporal extent as an interval in temporal functions (open ends unbounded), and
its start in comparisons; `start_datetime` / `end_datetime` are its ends; any other name
(`title`, `description`, `keywords`, `license`, `providers` ...) is that top-level field of
the collection document, compared by its JSON type as item properties are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, func, literal_column, or_, select, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection

from catalogue.filters import filter_clause
from catalogue.filters.operands import Fields, Kind
from catalogue.models import CollectionRow
from catalogue.repositories.free_text import matches_any
from catalogue.repositories.sorting import OrderKey, after_clause, token_after
from catalogue.search.query import CollectionQuery, PageToken, SortKey

collections = CollectionRow.__table__
COLLECTION_TEXT_SQL = (
    "to_tsvector('simple'::regconfig, coalesce(content->>'title', '') || ' ' || "
    "coalesce(content->>'description', '') || ' ' || coalesce(content->>'keywords', ''))"
)


def _document(name: str) -> Any:
    return collections.c.content.op("->", return_type=JSONB)(name)


_WORLD = func.ST_MakeEnvelope(-180.0, -90.0, 180.0, 90.0, 4326)
_EXTENT_GEOMETRY = func.coalesce(collections.c.extent_geometry, _WORLD)
_EXTENT_START = func.coalesce(collections.c.extent_start, text("'-infinity'::timestamptz"))
_EXTENT_END = func.coalesce(collections.c.extent_end, text("'infinity'::timestamptz"))
COLLECTION_FIELDS = Fields(
    columns={
        "id": (Kind.STRING, collections.c.id),
        "geometry": (Kind.GEOMETRY, _EXTENT_GEOMETRY),
        "extent": (Kind.GEOMETRY, _EXTENT_GEOMETRY),
        "datetime": (Kind.TIMESTAMP, collections.c.extent_start),
        "start_datetime": (Kind.TIMESTAMP, collections.c.extent_start),
        "end_datetime": (Kind.TIMESTAMP, collections.c.extent_end),
    },
    document=_document,
    interval=(_EXTENT_START, _EXTENT_END),
)


@dataclass(frozen=True)
class CollectionPage:
    collections: list[dict[str, Any]]
    next_token: PageToken | None
    number_matched: int


def _order_keys(sortby: tuple[SortKey, ...]) -> list[OrderKey]:
    keys = []
    for key in sortby:
        if key.field == "id":
            keys.append(OrderKey("id", collections.c.id, key.descending, is_property=False))
        else:
            value = collections.c.content.op("->", return_type=JSONB)(key.field)
            keys.append(OrderKey(key.field, value, key.descending, is_property=True))
    if not any(key.field == "id" for key in keys):
        keys.append(OrderKey("id", collections.c.id, False, is_property=False))
    return keys


def _where(query: CollectionQuery) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = []
    if query.bbox is not None:
        west, south, east, north = query.bbox
        envelopes = (
            [(west, south, east, north)]
            if west <= east
            else [(west, south, 180.0, north), (-180.0, south, east, north)]
        )
        clauses.append(
            or_(
                collections.c.extent_geometry.is_(None),
                *(
                    func.ST_Intersects(
                        collections.c.extent_geometry, func.ST_MakeEnvelope(*e, 4326)
                    )
                    for e in envelopes
                ),
            )
        )
    if query.interval is not None:
        if query.interval.end is not None:
            clauses.append(
                or_(
                    collections.c.extent_start.is_(None),
                    collections.c.extent_start <= query.interval.end,
                )
            )
        if query.interval.start is not None:
            clauses.append(
                or_(
                    collections.c.extent_end.is_(None),
                    collections.c.extent_end >= query.interval.start,
                )
            )
    if query.text:
        clauses.append(matches_any(literal_column(COLLECTION_TEXT_SQL), query.text))
    if query.filter is not None:
        clauses.append(filter_clause(query.filter, None, COLLECTION_FIELDS))
    return clauses


async def search_collections(conn: AsyncConnection, query: CollectionQuery) -> CollectionPage:
    keys = _order_keys(query.sortby)
    clauses = _where(query)
    matched = await conn.scalar(select(func.count()).select_from(collections).where(*clauses))
    if query.token is not None:
        clauses.append(after_clause(keys, query.token))
    statement = (
        select(
            collections.c.content, *(key.selected().label(f"k{i}") for i, key in enumerate(keys))
        )
        .where(*clauses)
        .order_by(*(key.order_clause() for key in keys))
        .limit(query.limit + 1)
    )
    rows = (await conn.execute(statement)).all()
    page, more = rows[: query.limit], len(rows) > query.limit
    next_token = token_after(keys, page[-1]) if more and page else None
    return CollectionPage([row.content for row in page], next_token, matched or 0)


SORTABLE_JSON_TYPES = ("string", "number", "boolean")


async def sortable_fields(conn: AsyncConnection) -> dict[str, set[str]]:
    """Top-level fields of the stored collections that hold a string, number or boolean
    somewhere, with those JSON types: what collection search can usefully sort on (it
    sorts on any field, `_order_keys`). Collections are few, so this reads them all."""
    fields = func.jsonb_each(collections.c.content).table_valued("key", "value").alias("field")
    kind = func.jsonb_typeof(fields.c.value)
    statement = (
        select(fields.c.key, kind.label("kind"))
        .select_from(collections.join(fields, literal_column("true")))
        .where(kind.in_(SORTABLE_JSON_TYPES))
        .distinct()
    )
    found: dict[str, set[str]] = {}
    for row in await conn.execute(statement):
        found.setdefault(row.key, set()).add(row.kind)
    return found
