"""Collections: read, create, replace, delete; the time spans of their items."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import BindParameter, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from catalogue.errors import CollectionNotEmptyError, ConflictError, NotFoundError
from catalogue.models import CollectionRow, ItemRow
from catalogue.serializers import collection_to_row

collections = CollectionRow.__table__
items = ItemRow.__table__


async def list_collection_ids(conn: AsyncConnection, limit: int | None = None) -> list[str]:
    """Collection ids in order, the first `limit` of them when given."""
    rows = await conn.execute(select(collections.c.id).order_by(collections.c.id).limit(limit))
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


async def delete_collection(
    conn: AsyncConnection, collection_id: str, cascade: bool = False
) -> int:
    """Delete a collection; returns how many items went with it.

    Without `cascade`, a collection that still holds items is refused (CollectionNotEmpty):
    its items would go too (the foreign key cascades), and one mistaken DELETE must not
    lose a catalogue (issue 14). The collection row is locked first, so an item inserted
    meanwhile (its foreign-key check needs a share lock on that row) waits for this
    decision instead of slipping in after the count.
    """
    locked = await conn.scalar(
        select(collections.c.id).where(collections.c.id == collection_id).with_for_update()
    )
    if locked is None:
        raise NotFoundError(f"collection {collection_id!r} not found")
    held = await conn.scalar(
        select(func.count()).select_from(items).where(items.c.collection == collection_id)
    )
    if held and not cascade:
        raise CollectionNotEmptyError(collection_id, held)
    await conn.execute(delete(collections).where(collections.c.id == collection_id))
    return held or 0


def _time_spans(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per collection, max(datetime - start_datetime) and max(end_datetime - datetime)."""
    spans: dict[str, tuple[timedelta, timedelta]] = {}
    for row in rows:
        moment = row["datetime"]
        before, after = moment - row["start_datetime"], row["end_datetime"] - moment
        known = spans.get(row["collection"])
        if known is not None:
            before, after = max(before, known[0]), max(after, known[1])
        spans[row["collection"]] = (before, after)
    return [{"cid": cid, "before": b, "after": a} for cid, (b, a) in spans.items()]


async def record_time_spans(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    """Grow the collections' `max_datetime_minus_start` / `max_end_minus_datetime` to cover
    `rows` (item rows about to be written, in the same transaction).

    Item search turns these into a redundant range on `datetime` (see
    `catalogue.repositories.search.datetime_bound`), so they may be too large (never
    shrunk when items change or go) but never too small. The UPDATE matches only when a
    bound grows, so the usual write costs one primary-key probe per collection and no
    row lock; NULL (unknown) stays NULL.
    """
    spans = _time_spans(rows)
    if not spans:
        return
    before: BindParameter[timedelta] = bindparam("before")
    after: BindParameter[timedelta] = bindparam("after")
    await conn.execute(
        update(collections)
        .where(
            collections.c.id == bindparam("cid"),
            or_(
                collections.c.max_datetime_minus_start < before,
                collections.c.max_end_minus_datetime < after,
            ),
        )
        .values(
            max_datetime_minus_start=func.greatest(collections.c.max_datetime_minus_start, before),
            max_end_minus_datetime=func.greatest(collections.c.max_end_minus_datetime, after),
        ),
        spans,
    )
