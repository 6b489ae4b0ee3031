"""The SQL of the Aggregation extension: grouped counts over the rows a search matches.

Every statement takes the search's own conditions (`where_clauses` of its counted shape and
the CQL2 filter's clause), so an aggregation counts exactly the items `/search` would page
through, and its values are the search's named parameters (`search_parameters`) plus the
aggregation's own (`agg_interval`, `agg_precision`). A bucket key is computed in a subquery
and grouped outside it: PostgreSQL then sees one expression, not two copies with their own
placeholders. Ordering follows Elasticsearch's (what SFEOS and stac-server answer): terms
and grid cells by frequency, then key; datetime and numeric buckets by key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Float,
    Integer,
    String,
    and_,
    bindparam,
    cast,
    func,
    literal,
    select,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from catalogue.models import ItemRow
from catalogue.repositories.sorting import property_value

items = ItemRow.__table__

# The latitude at which the web-mercator square ends (EPSG:3857's y of +/- 20037508.34 m).
MERCATOR_MAX_LATITUDE = 85.0511287798066


@dataclass(frozen=True)
class Stats:
    """The single values: how many items match, their earliest and latest `datetime`."""

    count: int
    datetime_min: datetime | None
    datetime_max: datetime | None


@dataclass(frozen=True)
class Frequencies:
    """The first buckets of a distribution, in answer order, and how many items have a key
    (in any bucket, listed or not)."""

    buckets: list[tuple[Any, int]]
    keyed: int


def _matching(clauses: Sequence[ColumnElement[bool]], *columns: Any) -> Any:
    return select(*columns).select_from(items).where(*clauses)


async def stats(
    conn: AsyncConnection, clauses: Sequence[ColumnElement[bool]], parameters: dict[str, Any]
) -> Stats:
    """`count(*)`, `min(datetime)` and `max(datetime)` in one statement."""
    statement = _matching(
        clauses, func.count(), func.min(items.c.datetime), func.max(items.c.datetime)
    )
    count, earliest, latest = (await conn.execute(statement, parameters)).one()
    return Stats(int(count), earliest, latest)


async def frequencies(
    conn: AsyncConnection,
    key: ColumnElement[Any],
    clauses: Sequence[ColumnElement[bool]],
    parameters: dict[str, Any],
    size: int,
    by_key: bool = False,
) -> Frequencies:
    """The `size` first buckets of `key` over the matching items (items whose key is NULL
    are in none): by frequency then key, or by key when `by_key`. The window sum counts the
    items of every bucket, listed or not, so the overflow needs no second scan."""
    keyed = _matching(clauses, key.label("k")).subquery("keyed")
    frequency = func.count().label("n")
    order = [keyed.c.k] if by_key else [frequency.desc(), keyed.c.k]
    statement = (
        select(keyed.c.k, frequency, func.sum(func.count()).over().label("total"))
        .where(keyed.c.k.is_not(None))
        .group_by(keyed.c.k)
        .order_by(*order)
        .limit(bindparam("agg_size", type_=Integer))
    )
    rows = (await conn.execute(statement, {**parameters, "agg_size": size})).all()
    keyed_total = int(rows[0].total) if rows else 0
    return Frequencies([(row.k, int(row.n)) for row in rows], keyed_total)


async def range_counts(
    conn: AsyncConnection,
    value: ColumnElement[Any],
    bounds: Sequence[tuple[float | None, float | None]],
    clauses: Sequence[ColumnElement[bool]],
    parameters: dict[str, Any],
) -> list[int]:
    """How many matching items have `value` in each [from, to) range (None: open end)."""
    counts = []
    for index, (low, high) in enumerate(bounds):
        conditions: list[ColumnElement[bool]] = [value.is_not(None)]
        if low is not None:
            conditions.append(value >= bindparam(f"agg_from_{index}", low, type_=Float))
        if high is not None:
            conditions.append(value < bindparam(f"agg_to_{index}", high, type_=Float))
        counts.append(func.count().filter(and_(*conditions)))
    row = (await conn.execute(_matching(clauses, *counts), parameters)).one()
    return [int(count) for count in row]


# -- bucket keys ----------------------------------------------------------------------------
def datetime_key() -> ColumnElement[Any]:
    """The start of the `agg_interval` (year, month, day ...) that holds the item's
    `datetime`, in UTC whatever the session's time zone."""
    unit = bindparam("agg_interval", type_=String)
    return func.date_trunc(unit, items.c.datetime, literal("UTC", String))


def collection_key() -> ColumnElement[Any]:
    return items.c.collection


def text_property_key(name: str) -> ColumnElement[Any]:
    """The property's value when it is a string (other JSON types are in no bucket)."""
    return func.cubestac_text(property_value(name))


def number_property(name: str) -> ColumnElement[Any]:
    """The property's value when it is a number (numeric: bucket edges are exact)."""
    return func.cubestac_number(property_value(name))


def histogram_key(name: str, interval: float) -> ColumnElement[Any]:
    """The lower edge of the `interval`-wide bucket that holds the property's number."""
    width = bindparam("agg_width", interval, type_=Float)
    return func.floor(cast(number_property(name), Float) / width) * width


def geohash_key() -> ColumnElement[Any]:
    """The geohash, `agg_precision` characters long, of the item geometry's centroid."""
    precision = bindparam("agg_precision", type_=Integer)
    return func.ST_GeoHash(func.ST_Centroid(items.c.geometry), precision)


def _tile_index(position: ColumnElement[Any], tiles: ColumnElement[Any]) -> ColumnElement[Any]:
    """floor(position * tiles), kept inside [0, tiles - 1] (the east and south edges)."""
    index = func.floor(position * tiles)
    return cast(func.greatest(func.least(index, tiles - 1.0), 0.0), BigInteger)


def geotile_key() -> ColumnElement[Any]:
    """`zoom/x/y` of the web-mercator tile (XYZ numbering) that holds the item geometry's
    centroid, at zoom `agg_precision`; latitudes beyond the mercator square are clamped to
    its edge, as Elasticsearch's geotile grid does."""
    zoom = bindparam("agg_precision", type_=Integer)
    tiles = func.power(literal(2.0, Float), cast(zoom, Float))
    centroid = func.ST_Centroid(items.c.geometry)
    longitude = func.ST_X(centroid)
    bound = literal(MERCATOR_MAX_LATITUDE, Float)
    latitude = func.radians(func.least(func.greatest(func.ST_Y(centroid), -bound), bound))
    x = (longitude + 180.0) / 360.0
    mercator = func.ln(func.tan(latitude) + 1.0 / func.cos(latitude))
    y = (1.0 - mercator / func.pi()) / 2.0
    return func.concat(
        cast(zoom, String),
        "/",
        cast(_tile_index(x, tiles), String),
        "/",
        cast(_tile_index(y, tiles), String),
    )
