"""Items: single reads and writes, and the bulk upsert every write path shares."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import bindparam, delete, func, literal_column, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from catalogue.errors import ConflictError, NotFoundError
from catalogue.models import ItemRow
from catalogue.repositories.collections import collection_exists

items = ItemRow.__table__
WRITE_BATCH = 1000


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


async def upsert_items(
    conn: AsyncConnection, rows: Sequence[dict[str, Any]], method: Literal["upsert"] = "upsert"
) -> UpsertCounts:
    """Insert or replace items in batches; identical items are not rewritten.

    `xmax = 0` tells a freshly inserted row from an updated one (a PostgreSQL idiom);
    the `WHERE ... IS DISTINCT FROM` skips the update, so unchanged rows cost no WAL.
    """
    await _require_collections(conn, rows)
    base = _values_statement()
    statement = base.on_conflict_do_update(
        index_elements=[items.c.collection, items.c.id],
        set_={
            "geometry": base.excluded.geometry,
            "datetime": base.excluded.datetime,
            "start_datetime": base.excluded.start_datetime,
            "end_datetime": base.excluded.end_datetime,
            "properties": base.excluded.properties,
            "content": base.excluded.content,
            "updated_at": func.now(),
        },
        where=items.c.content.is_distinct_from(base.excluded.content),
    ).returning(literal_column("(xmax = 0)").label("inserted"))
    inserted = updated = 0
    for batch in _batches(rows):
        flags = [row.inserted for row in await conn.execute(statement, batch)]
        inserted += sum(flags)
        updated += len(flags) - sum(flags)
    return UpsertCounts(inserted, updated, len(rows) - inserted - updated)


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


def _batches(rows: Sequence[dict[str, Any]]) -> Iterable[list[dict[str, Any]]]:
    for start in range(0, len(rows), WRITE_BATCH):
        yield list(rows[start : start + WRITE_BATCH])
