"""What an item search asks for, parsed and checked before any SQL is built.

The API turns its request models into an `ItemQuery`; the repository turns an `ItemQuery`
into one SQL statement. Parsing lives here so that `ingest` and `cubes` can search too.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import shapely
from shapely.geometry import shape

from catalogue.errors import InvalidInputError
from catalogue.serializers import parse_datetime

OPEN_ENDS = frozenset({"", ".."})


@dataclass(frozen=True)
class Interval:
    """A closed or half-open time interval; None is an open end."""

    start: datetime | None
    end: datetime | None


@dataclass(frozen=True)
class PageToken:
    """The keyset position after the last item of a page: (datetime, id, collection)."""

    datetime: datetime
    id: str
    collection: str

    def encode(self) -> str:
        raw = orjson.dumps([self.datetime.isoformat(), self.id, self.collection])
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> PageToken:
        try:
            padded = token + "=" * (-len(token) % 4)
            moment, item_id, collection = orjson.loads(base64.urlsafe_b64decode(padded))
            return cls(datetime.fromisoformat(moment), str(item_id), str(collection))
        except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError) as error:
            raise InvalidInputError(f"token: {token[:64]!r} is not a valid paging token") from error


@dataclass(frozen=True)
class ItemQuery:
    """A search over items; every field is optional and they combine with AND."""

    collections: tuple[str, ...] = ()
    ids: tuple[str, ...] = ()
    bbox: tuple[float, float, float, float] | None = None
    intersects: dict[str, Any] | None = None
    interval: Interval | None = None
    limit: int = 10
    token: PageToken | None = None


def parse_interval(value: str | None) -> Interval | None:
    """A STAC `datetime` parameter: an instant, `a/b`, `../b`, `a/..` (RFC 3339)."""
    if value is None or value == "":
        return None
    parts = value.split("/")
    if len(parts) == 1:
        moment = parse_datetime(parts[0], "datetime")
        return Interval(moment, moment)
    if len(parts) != 2:
        raise InvalidInputError(f"datetime: {value!r} must be an instant or start/end")
    start = None if parts[0] in OPEN_ENDS else parse_datetime(parts[0], "datetime start")
    end = None if parts[1] in OPEN_ENDS else parse_datetime(parts[1], "datetime end")
    if start is None and end is None:
        raise InvalidInputError("datetime: '../..' leaves both ends open")
    if start is not None and end is not None and start > end:
        raise InvalidInputError(f"datetime: start {parts[0]} is after end {parts[1]}")
    return Interval(start, end)


def parse_bbox(values: Any) -> tuple[float, float, float, float] | None:
    """A 2D or 3D bbox as (west, south, east, north); west > east crosses the antimeridian."""
    if values is None:
        return None
    numbers = list(values)
    if len(numbers) not in (4, 6):
        raise InvalidInputError(f"bbox: expected 4 or 6 numbers, got {len(numbers)}")
    try:
        floats = [float(number) for number in numbers]
    except (TypeError, ValueError) as error:
        raise InvalidInputError(f"bbox: {numbers!r} are not all numbers") from error
    west, south, east, north = floats if len(floats) == 4 else [floats[i] for i in (0, 1, 3, 4)]
    if south > north:
        raise InvalidInputError(f"bbox: south {south} is greater than north {north}")
    if not (-90 <= south <= 90 and -90 <= north <= 90):
        raise InvalidInputError("bbox: latitudes must lie within [-90, 90]")
    if not (-180 <= west <= 180 and -180 <= east <= 180):
        raise InvalidInputError("bbox: longitudes must lie within [-180, 180]")
    return (west, south, east, north)


def parse_geometry(value: Any) -> dict[str, Any] | None:
    """A GeoJSON geometry for `intersects`, checked with shapely before it reaches SQL."""
    if value is None:
        return None
    geometry = value if isinstance(value, dict) else _loads_geometry(value)
    try:
        parsed = shape(geometry)
    except (ValueError, TypeError, AttributeError, KeyError, IndexError) as error:
        raise InvalidInputError(f"intersects: not a valid GeoJSON geometry: {error}") from error
    if parsed.is_empty:
        raise InvalidInputError("intersects: the geometry is empty")
    if not parsed.is_valid:
        raise InvalidInputError(f"intersects: invalid geometry: {shapely.is_valid_reason(parsed)}")
    return geometry


def _loads_geometry(value: Any) -> dict[str, Any]:
    try:
        loaded = orjson.loads(value)
    except (orjson.JSONDecodeError, TypeError) as error:
        raise InvalidInputError("intersects: not a JSON GeoJSON geometry") from error
    if not isinstance(loaded, dict):
        raise InvalidInputError("intersects: a GeoJSON geometry must be an object")
    return loaded
