"""Items: single reads and writes, and the bulk upsert every write path shares.

Small writes (an API PUT, a handful of items) go row by row through one prepared INSERT;
bulk writes (harvests, bulk transactions) COPY into a staging table and merge with one
INSERT ... SELECT (see `catalogue.repositories.staging`). Both paths have the same semantics.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import (
    Column,
    DateTime,
    String,
    bindparam,
    delete,
    func,
    literal_column,
    select,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from catalogue import json_codec
from catalogue.errors import ConflictError, NotFoundError
from catalogue.models import ItemRow
from catalogue.repositories.collections import collection_exists, record_time_spans
from catalogue.repositories.item_text import ITEM_TEXT_COLUMNS, stored_item_text
from catalogue.repositories.queryables import record_properties
from catalogue.repositories.staging import copy_to_staging, staging_table
from catalogue.serializers import StoredItemText

items = ItemRow.__table__
WRITE_BATCH = 1000
COPY_MIN_ROWS = 64  # below this, a prepared INSERT per row beats creating and merging a staging
ROW_COLUMNS = (
    "collection", "id", "geometry", "datetime", "start_datetime", "end_datetime",
    "properties", "content",
)  # fmt: skip
ITEMS_STAGING = staging_table(
    "items_staging",
    Column("collection", String),
    Column("id", String),
    Column("geometry", String),  # GeoJSON text, parsed by PostGIS in the merge
    Column("datetime", DateTime(timezone=True)),
    Column("start_datetime", DateTime(timezone=True)),
    Column("end_datetime", DateTime(timezone=True)),
    Column("content", JSONB),  # `properties` is taken from it: parsed and sent once, not twice
)


@dataclass(frozen=True)
class ItemExtent:
    """Where and when a collection's items are: what its `extent` should say."""

    bbox: tuple[float, float, float, float]
    start: datetime
    end: datetime


@dataclass(frozen=True)
class UpsertCounts:
    """What a bulk write did; `unchanged` rows were identical and left untouched."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0


async def get_item(conn: AsyncConnection, collection_id: str, item_id: str) -> dict[str, Any]:
    content = await conn.scalar(
        select(items.c.content).where(items.c.collection == collection_id, items.c.id == item_id)
    )
    if content is None:
        if not await collection_exists(conn, collection_id):
            raise NotFoundError(f"collection {collection_id!r} not found")
        raise NotFoundError(f"item {item_id!r} not found in collection {collection_id!r}")
    return content


async def get_item_text(conn: AsyncConnection, collection_id: str, item_id: str) -> StoredItemText:
    """The item as the database prints it (the API's path, see `item_json_text`)."""
    row = (
        await conn.execute(
            select(*ITEM_TEXT_COLUMNS).where(
                items.c.collection == collection_id, items.c.id == item_id
            )
        )
    ).first()
    if row is None:
        if not await collection_exists(conn, collection_id):
            raise NotFoundError(f"collection {collection_id!r} not found")
        raise NotFoundError(f"item {item_id!r} not found in collection {collection_id!r}")
    return stored_item_text(row)


def _values_statement() -> Any:
    """INSERT with the geometry parsed from GeoJSON by PostGIS (bound, never formatted)."""
    return pg_insert(items).values(
        collection=bindparam("collection"),
        id=bindparam("id"),
        geometry=func.ST_SetSRID(func.ST_GeomFromGeoJSON(bindparam("geometry")), 4326),
        datetime=bindparam("datetime"),
        start_datetime=bindparam("start_datetime"),
        end_datetime=bindparam("end_datetime"),
        properties=bindparam("properties", type_=items.c.properties.type),
        content=bindparam("content", type_=items.c.content.type),
    )


async def _require_collections(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    for collection_id in {row["collection"] for row in rows}:
        if not await collection_exists(conn, collection_id):
            raise NotFoundError(f"collection {collection_id!r} not found")


async def insert_items(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> int:
    """Insert new items; any that exists already makes the whole call a conflict."""
    await _require_collections(conn, rows)
    await record_properties(conn, rows)
    await record_time_spans(conn, rows)
    if len(rows) >= COPY_MIN_ROWS:
        return await _insert_staged(conn, rows)
    statement = _values_statement().on_conflict_do_nothing(
        index_elements=[items.c.collection, items.c.id]
    )
    inserted = 0
    for batch in _batches(rows):
        result = await conn.execute(statement.returning(items.c.id), batch)
        returned = [row.id for row in result]
        inserted += len(returned)
        if len(returned) != len(batch):
            duplicates = sorted({row["id"] for row in batch} - set(returned))
            raise ConflictError(f"items already exist: {', '.join(duplicates[:10])}")
    return inserted


def _upsert_clause(statement: Any) -> Any:
    """ON CONFLICT replace, skipped for identical content: unchanged rows cost no WAL."""
    excluded = statement.excluded
    return statement.on_conflict_do_update(
        index_elements=[items.c.collection, items.c.id],
        set_={
            "geometry": excluded.geometry,
            "datetime": excluded.datetime,
            "start_datetime": excluded.start_datetime,
            "end_datetime": excluded.end_datetime,
            "properties": excluded.properties,
            "content": excluded.content,
            "updated_at": func.now(),
        },
        where=items.c.content.is_distinct_from(excluded.content),
    )


async def upsert_items(
    conn: AsyncConnection, rows: Sequence[dict[str, Any]], method: Literal["upsert"] = "upsert"
) -> UpsertCounts:
    """Insert or replace items; identical items are not rewritten.

    `xmax = 0` tells a freshly inserted row from an updated one (a PostgreSQL idiom);
    the `WHERE ... IS DISTINCT FROM` skips the update, so unchanged rows cost no WAL.
    An item given twice counts once, the last one wins.
    """
    await _require_collections(conn, rows)
    await record_properties(conn, rows)
    await record_time_spans(conn, rows)
    if len(rows) >= COPY_MIN_ROWS:
        return await _upsert_staged(conn, rows)
    statement = _upsert_clause(_values_statement()).returning(
        literal_column("(xmax = 0)").label("inserted")
    )
    inserted = updated = 0
    for batch in _batches(rows):
        flags = [row.inserted for row in await conn.execute(statement, batch)]
        inserted += sum(flags)
        updated += len(flags) - sum(flags)
    return UpsertCounts(inserted, updated, len(rows) - inserted - updated)


def _staging_records(rows: Sequence[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """One tuple per distinct (collection, id), the last given winning; JSON as text."""
    latest = {(row["collection"], row["id"]): row for row in rows}
    return [
        (
            row["collection"],
            row["id"],
            row["geometry"],
            row["datetime"],
            row["start_datetime"],
            row["end_datetime"],
            json_codec.dumps(row["content"]),
        )
        for row in latest.values()
    ]


def _from_staging() -> Any:
    staged = ITEMS_STAGING.c
    return pg_insert(items).from_select(
        list(ROW_COLUMNS),
        select(
            staged.collection,
            staged.id,
            func.ST_SetSRID(func.ST_GeomFromGeoJSON(staged.geometry), 4326),
            staged.datetime,
            staged.start_datetime,
            staged.end_datetime,
            staged.content["properties"],
            staged.content,
        ),
    )


async def _upsert_staged(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> UpsertCounts:
    await copy_to_staging(conn, ITEMS_STAGING, _staging_records(rows))
    written = (
        _upsert_clause(_from_staging())
        .returning(literal_column("(xmax = 0)").label("inserted"))
        .cte("written")
    )
    counts = await conn.execute(
        select(
            func.count().filter(written.c.inserted),
            func.count().filter(~written.c.inserted),
        )
    )
    inserted, updated = counts.one()
    return UpsertCounts(inserted, updated, len(rows) - inserted - updated)


async def _insert_staged(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> int:
    records = _staging_records(rows)
    if len(records) != len(rows):
        raise ConflictError("items given more than once: " + ", ".join(_repeated_ids(rows)))
    await copy_to_staging(conn, ITEMS_STAGING, records)
    statement = (
        _from_staging()
        .on_conflict_do_nothing(index_elements=[items.c.collection, items.c.id])
        .returning(items.c.id)
    )
    returned = {row.id for row in await conn.execute(statement)}
    if len(returned) != len(records):
        duplicates = sorted({row["id"] for row in rows} - returned)
        raise ConflictError(f"items already exist: {', '.join(duplicates[:10])}")
    return len(returned)


def _repeated_ids(rows: Sequence[dict[str, Any]]) -> list[str]:
    seen: set[tuple[str, str]] = set()
    repeated: list[str] = []
    for row in rows:
        key = (row["collection"], row["id"])
        if key in seen:
            repeated.append(row["id"])
        seen.add(key)
    return repeated[:10]


async def create_item(conn: AsyncConnection, row: dict[str, Any]) -> None:
    try:
        async with conn.begin_nested():
            await insert_items(conn, [row])
    except IntegrityError as error:
        raise ConflictError(f"item {row['id']!r} could not be created: {error.orig}") from error


async def replace_item(conn: AsyncConnection, row: dict[str, Any]) -> None:
    """Replace an existing item (PUT semantics: it must exist)."""
    exists = await conn.scalar(
        select(items.c.id).where(items.c.collection == row["collection"], items.c.id == row["id"])
    )
    if exists is None:
        await get_item(conn, row["collection"], row["id"])  # raises the precise NotFound
    await upsert_items(conn, [row])


async def delete_item(conn: AsyncConnection, collection_id: str, item_id: str) -> None:
    result = await conn.execute(
        delete(items).where(items.c.collection == collection_id, items.c.id == item_id)
    )
    if result.rowcount == 0:
        await get_item(conn, collection_id, item_id)


async def item_extent(conn: AsyncConnection, collection_id: str) -> ItemExtent | None:
    """The bounding box and time span of a collection's items (None when it has none)."""
    box = func.ST_Extent(items.c.geometry)
    row = (
        await conn.execute(
            select(
                func.ST_XMin(box),
                func.ST_YMin(box),
                func.ST_XMax(box),
                func.ST_YMax(box),
                func.min(items.c.start_datetime),
                func.max(items.c.end_datetime),
            ).where(items.c.collection == collection_id)
        )
    ).one()
    if row[0] is None:
        return None
    west, south, east, north, start, end = row
    return ItemExtent((west, south, east, north), start, end)


def _batches(rows: Sequence[dict[str, Any]]) -> Iterable[list[dict[str, Any]]]:
    for start in range(0, len(rows), WRITE_BATCH):
        yield list(rows[start : start + WRITE_BATCH])
