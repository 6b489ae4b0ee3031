"""Collection search (https://github.com/stac-api-extensions/collection-search): bbox and
datetime against each collection's extent, free text over title/description/keywords,
sortby on any top-level field, keyset paging. Collections are few (hundreds to thousands),
so no index beyond the primary key is needed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, func, literal_column, or_, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection

from catalogue.models import TEXT_SEARCH_CONFIG, CollectionRow
from catalogue.repositories.sorting import OrderKey, after_clause, token_after
from catalogue.search import CollectionQuery, PageToken, SortKey

collections = CollectionRow.__table__
COLLECTION_TEXT_SQL = (
    "to_tsvector('simple'::regconfig, coalesce(content->>'title', '') || ' ' || "
    "coalesce(content->>'description', '') || ' ' || coalesce(content->>'keywords', ''))"
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
        config = literal_column(f"'{TEXT_SEARCH_CONFIG}'::regconfig")
        terms = [func.websearch_to_tsquery(config, term) for term in query.text]
        combined = terms[0]
        for term in terms[1:]:
            combined = combined.op("||")(term)
        clauses.append(literal_column(COLLECTION_TEXT_SQL).op("@@")(combined))
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
