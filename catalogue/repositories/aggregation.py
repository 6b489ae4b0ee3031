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

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    ColumnElement,
    Float,
    Integer,
    String,
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


# A bucket key's rows: the matching items' keys as a subquery with the one column `k`.
KeyedRows = Callable[[Sequence[ColumnElement[bool]]], Any]


def keyed_by(key: ColumnElement[Any]) -> KeyedRows:
    """The rows of `key` computed on each matching item."""

    def rows(clauses: Sequence[ColumnElement[bool]]) -> Any:
        return _matching(clauses, key.label("k")).subquery("keyed")

    return rows


async def frequencies(
    conn: AsyncConnection,
    keyed: KeyedRows,
    clauses: Sequence[ColumnElement[bool]],
    parameters: dict[str, Any],
    size: int,
    by_key: bool = False,
) -> Frequencies:
    """The `size` first buckets of the keys over the matching items (items whose key is
    NULL are in none): by frequency then key, or by key when `by_key`. The window sum counts
    the items of every bucket, listed or not, so the overflow needs no second scan."""
    rows = keyed(clauses)
    frequency = func.count().label("n")
    order = [rows.c.k] if by_key else [frequency.desc(), rows.c.k]
    statement = (
        select(rows.c.k, frequency, func.sum(func.count()).over().label("total"))
        .where(rows.c.k.is_not(None))
        .group_by(rows.c.k)
        .order_by(*order)
        .limit(bindparam("agg_size", type_=Integer))
    )
    found = (await conn.execute(statement, {**parameters, "agg_size": size})).all()
    keyed_total = int(found[0].total) if found else 0
    return Frequencies([(row.k, int(row.n)) for row in found], keyed_total)


def range_index(value: ColumnElement[Any], edges: Sequence[float]) -> ColumnElement[Any]:
    """Which of the contiguous ranges split at `edges` (ascending) holds `value`: 0 below
    the first edge, i for [edges[i-1], edges[i]), len(edges) from the last one on. One
    `width_bucket` call: the value is read once per item, not once per range."""
    bounds = bindparam("agg_edges", list(edges), type_=ARRAY(Float))
    return func.width_bucket(cast(value, Float), bounds)


# -- bucket keys ----------------------------------------------------------------------------
def datetime_key() -> ColumnElement[Any]:
    """The start of the `agg_interval` (year, month, day ...) that holds the item's
    `datetime`, as a UTC timestamp without time zone: truncating that is plain arithmetic,
    where `date_trunc(unit, timestamptz, zone)` converts through the zone for every row."""
    unit = bindparam("agg_interval", type_=String)
    return func.date_trunc(unit, func.timezone(literal("UTC", String), items.c.datetime))


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


def geotile_rows(clauses: Sequence[ColumnElement[bool]]) -> Any:
    """`zoom/x/y` of the web-mercator tile (XYZ numbering) that holds each matching item
    geometry's centroid, at zoom `agg_precision`; latitudes beyond the mercator square are
    clamped to its edge, as Elasticsearch's geotile grid does. The centroid is computed
    once per item in a subquery that PostgreSQL does not flatten (`OFFSET 0`): flattened,
    x and y would each compute it again."""
    centroids = _matching(clauses, func.ST_Centroid(items.c.geometry).label("c"))
    point = centroids.offset(0).subquery("centroids").c.c
    zoom = bindparam("agg_precision", type_=Integer)
    tiles = func.power(literal(2.0, Float), cast(zoom, Float))
    bound = literal(MERCATOR_MAX_LATITUDE, Float)
    latitude = func.radians(func.least(func.greatest(func.ST_Y(point), -bound), bound))
    x = (func.ST_X(point) + 180.0) / 360.0
    mercator = func.ln(func.tan(latitude) + 1.0 / func.cos(latitude))
    y = (1.0 - mercator / func.pi()) / 2.0
    key = func.concat(
        cast(zoom, String),
        "/",
        cast(_tile_index(x, tiles), String),
        "/",
        cast(_tile_index(y, tiles), String),
    )
    return select(key.label("k")).subquery("keyed")
