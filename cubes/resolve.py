"""Which catalogue items feed each input: collection, ids and CQL2 filter, clipped to the
grid's WGS84 bbox and the cube's time range (issue 5, "Build" step 1) -- one catalogue search,
so filters mean exactly what they mean on /search."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from catalogue.database import Database
from catalogue.errors import InvalidInputError, NotFoundError
from catalogue.filters import parse_filter
from catalogue.repositories.collections import get_collection
from catalogue.search import ItemQuery, PageToken
from catalogue.search.service import ItemSearch
from catalogue.times import Interval
from cubes.errors import InputError, input_label
from cubes.spec import CubeSpec, InputSpec

PAGE_SIZE = 500
MAX_ITEMS = 5000  # per input: beyond this a single cube's dask graph stops being small


@dataclass(frozen=True)
class ResolvedInput:
    """An input with its items, newest first (the catalogue's order; the mosaic keeps the
    first valid pixel, so the newest item wins where items overlap)."""

    index: int
    spec: InputSpec
    items: list[dict[str, Any]]

    @property
    def label(self) -> str:
        return input_label(self.index, self.spec.collection)


async def resolve_inputs(
    database: Database, cube: CubeSpec, wgs84_bbox: tuple[float, float, float, float]
) -> list[ResolvedInput]:
    """Every input's items; an input without any fails the cube, naming that input."""
    return [
        ResolvedInput(index, spec, await _input_items(database, cube, index, spec, wgs84_bbox))
        for index, spec in enumerate(cube.inputs)
    ]


async def _input_items(
    database: Database,
    cube: CubeSpec,
    index: int,
    spec: InputSpec,
    wgs84_bbox: tuple[float, float, float, float],
) -> list[dict[str, Any]]:
    where = input_label(index, spec.collection)
    start, end = cube.time.bounds if cube.time else (None, None)
    interval = Interval(start, end) if (start or end) else None
    query = ItemQuery(
        collections=(spec.collection,),
        ids=tuple(spec.ids or ()),
        bbox=_clamped(wgs84_bbox),
        interval=interval,
        limit=PAGE_SIZE,
        filter=parse_filter(spec.filter),
    )
    async with database.read() as conn:
        try:
            await get_collection(conn, spec.collection)
        except NotFoundError as error:
            raise InputError(
                f"collection {spec.collection!r} is not in the catalogue", cube=cube.id, where=where
            ) from error
        try:
            items = await _all_pages(conn, query, cube.id, where)
        except InvalidInputError as error:  # e.g. a filter on a property no item has
            raise InputError(f"filter: {error}", cube=cube.id, where=where) from error
    if not items:
        raise InputError(_nothing_found(spec, wgs84_bbox, interval), cube=cube.id, where=where)
    missing = sorted(set(spec.ids or ()) - {item["id"] for item in items})
    if missing:
        raise InputError(
            f"items not found within the grid's bbox and time range: {', '.join(missing)}",
            cube=cube.id,
            where=where,
        )
    return items


async def _all_pages(conn: Any, query: ItemQuery, cube: str, where: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    token: PageToken | None = None
    search = ItemSearch()  # any property name: a filter on one no item has finds nothing
    while True:
        page = await search.items(conn, replace(query, token=token))
        items.extend(page.items)
        if len(items) > MAX_ITEMS:
            raise InputError(
                f"more than {MAX_ITEMS} items match; narrow the input with ids, filter, "
                "the grid's bbox or the time range",
                cube=cube,
                where=where,
            )
        token = page.next_token
        if token is None:
            return items


def _clamped(bbox: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    west, south, east, north = bbox
    return (max(west, -180.0), max(south, -90.0), min(east, 180.0), min(north, 90.0))


def _nothing_found(
    spec: InputSpec, bbox: tuple[float, float, float, float], interval: Interval | None
) -> str:
    parts = [
        f"no item of collection {spec.collection!r} intersects the grid's bbox "
        f"[{', '.join(f'{v:.5f}' for v in bbox)}] (WGS84)"
    ]
    if interval is not None:
        start, end = (
            t.isoformat(timespec="seconds") if t else ".." for t in (interval.start, interval.end)
        )
        parts.append(f"within the time range {start}/{end}")
    if spec.ids:
        parts.append(f"among ids {', '.join(spec.ids)}")
    if spec.filter is not None:
        parts.append("matching the filter")
    return " ".join(parts)
