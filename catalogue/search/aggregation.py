"""The Aggregation extension's answers: which aggregations exist, and computing them.

https://github.com/stac-api-extensions/aggregation (v0.3.0), with the names, bucket ranges
and precision parameters SFEOS and stac-server use, so that clients written for those
(STAC Browser's and Filmdrop's aggregation views) work here unchanged:

- always: `total_count`, `datetime_min`, `datetime_max`, `datetime_frequency` (interval
  `datetime_frequency_interval`, default month), `collection_frequency`,
  `centroid_geohash_grid_frequency` (precision 1..12, default 1) and
  `centroid_geotile_grid_frequency` (zoom 0..29, default 0), on the centroid of each
  item's geometry;
- where items carry the property as a number: `cloud_cover_frequency` (`eo:cloud_cover` in
  SFEOS's ranges) and 5-wide histograms of `view:sun_elevation`, `view:sun_azimuth` and
  `view:off_nadir`;
- one term frequency per string property the catalogue's items carry (its queryables):
  `platform_frequency`, `grid_code_frequency` (`grid:code`), `constellation_frequency` ...:
  the name with every run of other characters than a-z and 0-9 made `_`, then `_frequency`.

Each aggregation is one grouped statement over the search's own WHERE clause
(`catalogue.repositories.aggregation`), in one read-only transaction under a
`statement_timeout`: a request over the budget is a `StatementTimeoutError` (504). For a
search constrained only by collections and/or datetime, `total_count`, `datetime_min`,
`datetime_max`, `datetime_frequency` (intervals of whole days: year to day) and
`collection_frequency` are read from the per-day counts instead
(`catalogue.search.day_counts`): the same answers, without reading millions of index
entries for a collection of millions.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import String, bindparam
from sqlalchemy.ext.asyncio import AsyncConnection

from catalogue.database import Database
from catalogue.errors import InvalidInputError
from catalogue.filters import filter_clause
from catalogue.repositories import aggregation as sql
from catalogue.repositories.collections import get_collection
from catalogue.repositories.day_counts import counts, day_key
from catalogue.repositories.queryables import list_queryables, property_names
from catalogue.repositories.search import where_clauses
from catalogue.repositories.search_shape import SearchShape, search_parameters
from catalogue.search import day_counts
from catalogue.search.query import ItemQuery

INTERVALS = ("year", "quarter", "month", "week", "day", "hour", "minute", "second")
DEFAULT_INTERVAL = "month"
GEOHASH_PRECISION = (1, 12)  # (lowest, highest); the default is the lowest, as in SFEOS
GEOTILE_PRECISION = (0, 29)
TERMS_SIZE = 100  # buckets of a term frequency (Elasticsearch's terms `size` in SFEOS)
GRID_SIZE = 10_000  # buckets of a grid, a datetime or a numeric histogram
# SFEOS's `eo:cloud_cover` ranges: [from, to), None an open end
CLOUD_COVER_RANGES: tuple[tuple[float | None, float | None], ...] = (
    (None, 5.0),
    (5.0, 15.0),
    (15.0, 40.0),
    (40.0, None),
)
HISTOGRAM_INTERVAL = 5.0
# string properties that are times or prose, not terms worth counting
NOT_TERMS = frozenset({"datetime", "start_datetime", "end_datetime", "created", "updated"})
NOT_TERMS |= {"title", "description", "license"}


class Kind(StrEnum):
    TOTAL_COUNT = "total_count"
    DATETIME_MIN = "datetime_min"
    DATETIME_MAX = "datetime_max"
    DATETIME = "datetime_frequency"
    TERMS = "terms"
    RANGES = "ranges"
    HISTOGRAM = "histogram"
    GEOHASH = "geohash"
    GEOTILE = "geotile"


@dataclass(frozen=True)
class Definition:
    """One aggregation a client may name: what it computes, and over which property."""

    name: str
    kind: Kind
    data_type: str  # of the aggregation: integer, datetime or frequency_distribution
    bucket_type: str | None = None  # of its buckets' keys: string, datetime or numeric
    property: str | None = None  # the item property (None: a column or the geometry)
    ranges: tuple[tuple[float | None, float | None], ...] = ()

    def describe(self) -> dict[str, Any]:
        """The entry `/aggregations` lists (SFEOS's shape)."""
        entry: dict[str, Any] = {"name": self.name, "data_type": self.data_type}
        if self.bucket_type is not None:
            entry["frequency_distribution_data_type"] = self.bucket_type
        if self.property is not None:
            entry["property"] = self.property
        return entry


FREQUENCY = "frequency_distribution"
ALWAYS = (
    Definition("total_count", Kind.TOTAL_COUNT, "integer"),
    Definition("datetime_max", Kind.DATETIME_MAX, "datetime"),
    Definition("datetime_min", Kind.DATETIME_MIN, "datetime"),
    Definition("datetime_frequency", Kind.DATETIME, FREQUENCY, "datetime"),
    Definition("collection_frequency", Kind.TERMS, FREQUENCY, "string"),
    Definition("centroid_geohash_grid_frequency", Kind.GEOHASH, FREQUENCY, "string"),
    Definition("centroid_geotile_grid_frequency", Kind.GEOTILE, FREQUENCY, "string"),
)
NUMERIC = (
    Definition(
        "cloud_cover_frequency",
        Kind.RANGES,
        FREQUENCY,
        "numeric",
        "eo:cloud_cover",
        CLOUD_COVER_RANGES,
    ),
    Definition(
        "sun_elevation_frequency", Kind.HISTOGRAM, FREQUENCY, "numeric", "view:sun_elevation"
    ),
    Definition("sun_azimuth_frequency", Kind.HISTOGRAM, FREQUENCY, "numeric", "view:sun_azimuth"),
    Definition("off_nadir_frequency", Kind.HISTOGRAM, FREQUENCY, "numeric", "view:off_nadir"),
)


def terms_name(property_name: str) -> str:
    """`grid:code` -> `grid_code_frequency`."""
    return re.sub(r"[^a-z0-9]+", "_", property_name.lower()).strip("_") + "_frequency"


def definitions(properties: dict[str, tuple[set[str], Any]]) -> list[Definition]:
    """What may be asked of items carrying `properties` (name -> (JSON types, enum))."""
    found = list(ALWAYS)
    found += [d for d in NUMERIC if "number" in properties.get(d.property or "", ((), None))[0]]
    taken = {d.name for d in found}
    for name in sorted(properties):
        types, _ = properties[name]
        aggregation = terms_name(name)
        if "string" in types and name not in NOT_TERMS and aggregation not in taken:
            taken.add(aggregation)
            found.append(Definition(aggregation, Kind.TERMS, FREQUENCY, "string", name))
    return found


def check_precision(name: str, value: int | None, bounds: tuple[int, int]) -> int:
    """The precision asked for, or the lowest when none; a 400 outside `bounds`."""
    low, high = bounds
    if value is None:
        return low
    if not low <= value <= high:
        raise InvalidInputError(f"{name}: {value} is not between {low} and {high}")
    return value


def check_interval(value: str | None) -> str:
    if value is None or value == "":
        return DEFAULT_INTERVAL
    if value not in INTERVALS:
        raise InvalidInputError(
            f"datetime_frequency_interval: {value!r} is not one of {', '.join(INTERVALS)}"
        )
    return value


@dataclass(frozen=True)
class AggregateRequest:
    """An `/aggregate` request: the search (its limit, token and order play no part), the
    aggregations named, their parameters and, for `/collections/{id}/aggregate`, the
    collection (which must exist)."""

    query: ItemQuery
    names: tuple[str, ...]
    collection: str | None = None
    geohash_precision: int = GEOHASH_PRECISION[0]
    geotile_precision: int = GEOTILE_PRECISION[0]
    interval: str = DEFAULT_INTERVAL
    timeout_ms: int = 10_000
    by_days: bool = True  # False: never from the per-day counts (settings.api.count_by_days)


def rfc3339(value: datetime) -> str:
    """`2021-06-01T00:00:00.000Z`: UTC with milliseconds, as Elasticsearch prints dates
    (a naive value is UTC already: the datetime buckets' keys)."""
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def _number_text(value: float) -> str:
    return str(float(value))


def _range_key(low: float | None, high: float | None) -> str:
    """Elasticsearch's range key: `*-5.0`, `5.0-15.0`, `40.0-*`."""
    start = "*" if low is None else _number_text(low)
    end = "*" if high is None else _number_text(high)
    return f"{start}-{end}"


def _bucket(key: str, data_type: str, frequency: int, **edges: float | None) -> dict[str, Any]:
    bucket: dict[str, Any] = {"key": key, "data_type": data_type, "frequency": frequency}
    bucket.update({name: value for name, value in edges.items() if value is not None})
    return bucket


def _distribution(
    definition: Definition, buckets: list[dict[str, Any]], overflow: int
) -> dict[str, Any]:
    return {
        "name": definition.name,
        "data_type": FREQUENCY,
        "buckets": buckets,
        "overflow": overflow,
    }


class Aggregator:
    """Computes the aggregations of one request on one connection (see the module doc)."""

    def __init__(
        self,
        conn: AsyncConnection,
        request: AggregateRequest,
        clauses: list[Any],
        days: day_counts.Split | None = None,
    ) -> None:
        self.conn = conn
        self.request = request
        self.clauses = clauses
        self.parameters = search_parameters(request.query)
        self.days = days  # the search split by days, when the per-day counts answer it
        self._stats: sql.Stats | None = None

    async def stats(self) -> sql.Stats:
        if self._stats is None:
            if self.days is not None:
                self._stats = await day_counts.stats(self.conn, self.days)
            else:
                self._stats = await sql.stats(self.conn, self.clauses, self.parameters)
        return self._stats

    async def compute(self, definition: Definition) -> dict[str, Any]:
        kind = definition.kind
        if kind in (Kind.TOTAL_COUNT, Kind.DATETIME_MIN, Kind.DATETIME_MAX):
            return await self._single(definition)
        if kind == Kind.RANGES:
            return await self._ranges(definition)
        return await self._frequencies(definition)

    async def _single(self, definition: Definition) -> dict[str, Any]:
        stats = await self.stats()
        value: Any = stats.count
        if definition.kind != Kind.TOTAL_COUNT:
            moment = (
                stats.datetime_min if definition.kind == Kind.DATETIME_MIN else stats.datetime_max
            )
            value = None if moment is None else rfc3339(moment)
        return {"name": definition.name, "data_type": definition.data_type, "value": value}

    async def _ranges(self, definition: Definition) -> dict[str, Any]:
        """Every range, in order, empty ones too (as Elasticsearch's range aggregation)."""
        edges = [low for low, _ in definition.ranges[1:] if low is not None]
        value = sql.number_property(definition.property or "")
        keyed = sql.keyed_by(sql.range_index(value, edges))
        size = len(definition.ranges)
        found = await sql.frequencies(
            self.conn, keyed, self.clauses, self.parameters, size, by_key=True
        )
        counts = dict(found.buckets)
        buckets = [
            _bucket(
                _range_key(low, high), "numeric", counts.get(index, 0), **{"from": low, "to": high}
            )
            for index, (low, high) in enumerate(definition.ranges)
        ]
        return _distribution(definition, buckets, 0)

    def _day_keys(self, definition: Definition) -> tuple[Any, Any] | None:
        """The bucket key on the per-day counts and on the items, when the days answer
        this aggregation (else None)."""
        if self.days is None:
            return None
        if definition.kind == Kind.DATETIME and self.request.interval in day_counts.DAY_UNITS:
            return day_key(bindparam("agg_interval", type_=String)), sql.datetime_key()
        if definition.kind == Kind.TERMS and definition.property is None:
            return counts.c.collection, sql.collection_key()
        return None

    async def _frequencies(self, definition: Definition) -> dict[str, Any]:
        keyed, parameters, size, by_key, label = self._key(definition)
        day_keys = self._day_keys(definition)
        if self.days is not None and day_keys is not None:
            found = await day_counts.frequencies(
                self.conn, self.days, *day_keys, parameters, size, by_key
            )
        else:
            found = await sql.frequencies(
                self.conn, keyed, self.clauses, {**self.parameters, **parameters}, size, by_key
            )
        buckets = [label(value, count) for value, count in found.buckets]
        overflow = found.keyed - sum(count for _, count in found.buckets)
        return _distribution(definition, buckets, overflow)

    def _key(
        self, definition: Definition
    ) -> tuple[sql.KeyedRows, dict[str, Any], int, bool, Callable[[Any, int], dict[str, Any]]]:
        """The bucket keys' rows, their parameters, how many buckets, whether ordered by key,
        and how a (key, frequency) row becomes a bucket."""
        request = self.request

        def text(value: Any, count: int) -> dict[str, Any]:
            return _bucket(str(value), "string", count)

        match definition.kind:
            case Kind.DATETIME:

                def moment(value: Any, count: int) -> dict[str, Any]:
                    return _bucket(rfc3339(value), "datetime", count)

                return (
                    sql.keyed_by(sql.datetime_key()),
                    {"agg_interval": request.interval},
                    GRID_SIZE,
                    True,
                    moment,
                )
            case Kind.HISTOGRAM:

                def number(value: Any, count: int) -> dict[str, Any]:
                    low = float(value)
                    return _bucket(
                        _number_text(low),
                        "numeric",
                        count,
                        **{"from": low, "to": low + HISTOGRAM_INTERVAL},
                    )

                key = sql.histogram_key(definition.property or "", HISTOGRAM_INTERVAL)
                return sql.keyed_by(key), {}, GRID_SIZE, True, number
            case Kind.GEOHASH:
                precision = {"agg_precision": request.geohash_precision}
                return sql.keyed_by(sql.geohash_key()), precision, GRID_SIZE, False, text
            case Kind.GEOTILE:
                precision = {"agg_precision": request.geotile_precision}
                return sql.geotile_rows, precision, GRID_SIZE, False, text
        if definition.property is None:
            return sql.keyed_by(sql.collection_key()), {}, TERMS_SIZE, False, text
        key = sql.text_property_key(definition.property)
        return sql.keyed_by(key), {}, TERMS_SIZE, False, text


def _unique(names: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(name.strip() for name in names if name and name.strip()))


def select_definitions(
    available: Sequence[Definition], names: Sequence[str], scope: str
) -> list[Definition]:
    """The definitions named, in the order asked; a 400 listing what exists otherwise."""
    wanted = _unique(names)
    if not wanted:
        raise InvalidInputError(
            f"aggregations: none named; {scope} offers {', '.join(d.name for d in available)}"
        )
    by_name = {definition.name: definition for definition in available}
    unknown = [name for name in wanted if name not in by_name]
    if unknown:
        raise InvalidInputError(
            f"aggregations: {', '.join(map(repr, unknown))} not offered by {scope}; "
            f"valid: {', '.join(by_name)}"
        )
    return [by_name[name] for name in wanted]


async def available(conn: AsyncConnection, collection: str | None = None) -> list[Definition]:
    """What `/aggregations` (or a collection's) lists; a 404 for an unknown collection."""
    if collection is not None:
        await get_collection(conn, collection)
    return definitions(await list_queryables(conn, collection))


async def aggregate(database: Database, request: AggregateRequest) -> list[dict[str, Any]]:
    """The aggregations of `request`, in the order named (see the module docstring)."""
    scope = "/aggregate" if request.collection is None else f"collection {request.collection!r}"
    async with database.read_in_transaction() as conn:
        chosen = select_definitions(await available(conn, request.collection), request.names, scope)
        await conn.exec_driver_sql(
            "SELECT set_config('statement_timeout', $1, true)", (str(request.timeout_ms),)
        )
        query = request.query
        clauses = where_clauses(SearchShape.of(query).counted)
        if query.filter is not None:
            clauses.append(filter_clause(query.filter, frozenset(await property_names(conn))))
        days = None
        if request.by_days and day_counts.by_days(query):
            days = await day_counts.split(conn, query, search_parameters(query))
        aggregator = Aggregator(conn, request, clauses, days)
        return [await aggregator.compute(definition) for definition in chosen]
