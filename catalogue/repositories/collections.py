"""Collections: read, create, replace, delete."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from catalogue.errors import ConflictError, NotFoundError
from catalogue.models import CollectionRow
from catalogue.serializers import collection_to_row

collections = CollectionRow.__table__


async def list_collections(conn: AsyncConnection) -> list[dict[str, Any]]:
    rows = await conn.execute(select(collections.c.content).order_by(collections.c.id))
    return [row.content for row in rows]


async def list_collection_ids(conn: AsyncConnection) -> list[str]:
    rows = await conn.execute(select(collections.c.id).order_by(collections.c.id))
    return [row.id for row in rows]


async def get_collection(conn: AsyncConnection, collection_id: str) -> dict[str, Any]:
    content = await conn.scalar(
        select(collections.c.content).where(collections.c.id == collection_id)
    )
    if content is None:
        raise NotFoundError(f"collection {collection_id!r} not found")
    return content


async def collection_exists(conn: AsyncConnection, collection_id: str) -> bool:
    found = await conn.scalar(select(collections.c.id).where(collections.c.id == collection_id))
    return found is not None


async def create_collection(conn: AsyncConnection, collection: dict[str, Any]) -> dict[str, Any]:
    row = collection_to_row(collection)
    try:
        async with conn.begin_nested():
            await conn.execute(insert(collections).values(**row))
    except IntegrityError as error:
        raise ConflictError(f"collection {row['id']!r} already exists") from error
    return row["content"]


async def upsert_collection(conn: AsyncConnection, collection: dict[str, Any]) -> dict[str, Any]:
    row = collection_to_row(collection)
    statement = pg_insert(collections).values(**row)
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=[collections.c.id],
            set_={
                "content": statement.excluded.content,
                "extent_geometry": statement.excluded.extent_geometry,
                "extent_start": statement.excluded.extent_start,
                "extent_end": statement.excluded.extent_end,
                "updated_at": func.now(),
            },
        )
    )
    return row["content"]


async def replace_collection(
    conn: AsyncConnection, collection_id: str, collection: dict[str, Any]
) -> dict[str, Any]:
    row = collection_to_row({**collection, "id": collection_id})
    result = await conn.execute(
        update(collections)
        .where(collections.c.id == collection_id)
        .values(**{key: value for key, value in row.items() if key != "id"}, updated_at=func.now())
    )
    if result.rowcount == 0:
        raise NotFoundError(f"collection {collection_id!r} not found")
    return row["content"]


async def delete_collection(conn: AsyncConnection, collection_id: str) -> None:
    result = await conn.execute(delete(collections).where(collections.c.id == collection_id))
    if result.rowcount == 0:
        raise NotFoundError(f"collection {collection_id!r} not found")
