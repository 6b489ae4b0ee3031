"""Publish a cube item: its collection created if missing, the collection's extent and
summaries grown to cover it, the item upserted -- in one transaction, so the href switch
and the collection's metadata change together (issue 5, "STAC").

Extents only grow: cube builds never remove items, so a union is always correct and needs
no scan of the collection. A collection-wide advisory lock serialises this read-modify-write
between concurrent runs that publish different cubes into the same collection.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from catalogue.database import Database
from catalogue.errors import CatalogueError, NotFoundError
from catalogue.repositories.collections import get_collection, upsert_collection
from catalogue.repositories.items import get_item, upsert_items
from catalogue.repositories.jobs import target_lock
from catalogue.serializers import item_to_row
from catalogue.times import read_timestamp
from cubes.errors import OutputError
from cubes.spec import CubeSpec

LOCK_WAIT_S = 60.0
LOCK_POLL_S = 0.2


async def current_href(database: Database, cube: CubeSpec) -> str | None:
    """The href readers are given now, or None when the cube was never published."""
    async with database.read() as conn:
        try:
            item = await get_item(conn, cube.collection, cube.id)
        except NotFoundError:
            return None
    href = ((item.get("assets") or {}).get("zarr") or {}).get("href")
    return href if isinstance(href, str) else None


async def publish(database: Database, cube: CubeSpec, item: dict[str, Any]) -> None:
    try:
        async with _collection_lock(database.engine, cube.collection, cube.id):
            await database.transaction(lambda conn: _publish_in(conn, cube, item))
    except CatalogueError as error:
        raise OutputError(f"cannot publish the item: {error}", cube=cube.id) from error


async def _publish_in(conn: AsyncConnection, cube: CubeSpec, item: dict[str, Any]) -> None:
    """The collection grown to cover the item, and the item, in the caller's transaction."""
    try:
        collection = await get_collection(conn, cube.collection)
    except NotFoundError:
        collection = new_collection(cube.collection)
    await upsert_collection(conn, grown_collection(collection, item))
    await upsert_items(conn, [item_to_row(item)])


@asynccontextmanager
async def _collection_lock(engine: AsyncEngine, collection: str, cube: str) -> AsyncIterator[None]:
    deadline = time.monotonic() + LOCK_WAIT_S
    while True:
        async with target_lock(engine, "collection", collection) as acquired:
            if acquired:
                yield
                return
        if time.monotonic() > deadline:
            raise OutputError(
                f"collection {collection!r} stayed locked by another run for {LOCK_WAIT_S:.0f} s",
                cube=cube,
            )
        await asyncio.sleep(LOCK_POLL_S)


def new_collection(collection_id: str) -> dict[str, Any]:
    return {
        "type": "Collection",
        "stac_version": "1.1.0",
        "id": collection_id,
        "title": collection_id,
        "description": "Analysis-ready data cubes built by cubestac.",
        "license": "other",
        "extent": {"spatial": {"bbox": []}, "temporal": {"interval": []}},
        "summaries": {},
        "links": [],
    }


def grown_collection(collection: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    """A copy of `collection` whose extent covers `item` and whose summaries list its CRS."""
    grown = dict(collection)
    extent = dict(grown.get("extent") or {})
    spatial = dict(extent.get("spatial") or {})
    temporal = dict(extent.get("temporal") or {})
    boxes = list(spatial.get("bbox") or [])
    boxes[:1] = [_union_bbox(boxes[0] if boxes else None, item["bbox"])]
    intervals = list(temporal.get("interval") or [])
    intervals[:1] = [_union_interval(intervals[0] if intervals else None, _item_interval(item))]
    extent["spatial"] = {**spatial, "bbox": boxes}
    extent["temporal"] = {**temporal, "interval": intervals}
    grown["extent"] = extent
    summaries = dict(grown.get("summaries") or {})
    code = item["properties"].get("proj:code")
    if code:
        summaries["proj:code"] = sorted({*summaries.get("proj:code", []), code})
    grown["summaries"] = summaries
    return grown


def _union_bbox(current: list[float] | None, new: list[float]) -> list[float]:
    if not current or len(current) != 4:
        return list(new)
    return [
        min(current[0], new[0]),
        min(current[1], new[1]),
        max(current[2], new[2]),
        max(current[3], new[3]),
    ]


def _item_interval(item: dict[str, Any]) -> list[str]:
    properties = item["properties"]
    start = properties.get("start_datetime") or properties["datetime"]
    end = properties.get("end_datetime") or properties["datetime"]
    return [start, end]


def _union_interval(current: list[str | None] | None, new: list[str]) -> list[str | None]:
    """Earliest start, latest end; None is an open end and stays open."""
    if not current or len(current) != 2:
        return list(new)
    start = None if current[0] is None else min(current[0], new[0], key=_instant)
    end = None if current[1] is None else max(current[1], new[1], key=_instant)
    return [start, end]


def _instant(value: str) -> datetime:
    moment = read_timestamp(value)
    if moment is None:
        raise ValueError(f"{value!r} is not an RFC 3339 timestamp")
    return moment
