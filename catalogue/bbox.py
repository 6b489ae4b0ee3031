"""Bounding boxes: in range (every bbox: search parameters, CONFIG, items), and for an
item's `bbox`, containing its geometry.

Search filters on the stored geometry, but clients draw, index and pre-filter with `bbox`
(STAC Browser's map, pystac-client, GDAL's STACIT driver), so a bbox that is out of range
or misses the geometry hides the item or puts it in the wrong place. STAC says the bbox
bounds the geometry (item-spec.md, "bbox"); WGS84 longitudes run -180..180, latitudes
-90..90, and west > east means the box crosses the antimeridian (RFC 7946 section 5.2).

`TOLERANCE` (about 0.1 m) absorbs rounding of an item's bbox: one written with 6 decimals
still holds. Boxes people type (search, CONFIG) are taken exactly.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from catalogue.errors import InvalidInputError

TOLERANCE = 1e-6


def bbox_problem(bbox: Any, geojson: dict[str, Any], geometry: BaseGeometry) -> str | None:
    """Why `bbox` is not a valid bbox of the geometry (as GeoJSON and as parsed), or None.

    Runs on every item written (harvests write millions), hence plain comparisons (a NaN or
    an infinity fails them as out of range, a string raises TypeError) and the footprint's
    bounds read from its GeoJSON when it is one small polygon.
    """
    if not isinstance(bbox, list | tuple) or len(bbox) not in (4, 6):
        return "must be 4 or 6 numbers"
    try:
        problem = range_problem(bbox, TOLERANCE)
    except TypeError:
        return "must be 4 or 6 numbers"
    if problem is not None:
        return problem
    west, south, east, north = corners(bbox)
    if not _contains(west, south, east, north, geojson, geometry):
        return f"does not contain the geometry (whose bounds are {geometry_bbox(geometry)})"
    return None


def corners(bbox: Any) -> tuple[Any, Any, Any, Any]:
    """(west, south, east, north) of a 2D or 3D bbox."""
    return bbox if len(bbox) == 4 else (*bbox[:2], *bbox[3:5])


def range_problem(bbox: Any, tolerance: float = 0.0) -> str | None:
    """Why a 4- or 6-number bbox is out of range or upside down, or None. Plain comparisons
    (a NaN or an infinity fails them as out of range; a string raises TypeError).
    West > east is allowed: the box crosses the antimeridian."""
    lon, lat = 180 + tolerance, 90 + tolerance
    west, south, east, north = corners(bbox)
    if not (-lon <= west <= lon and -lon <= east <= lon):
        return "has a longitude outside -180..180"
    if not (-lat <= south <= lat and -lat <= north <= lat):
        return "has a latitude outside -90..90"
    if south > north:
        return "has its south edge above its north edge"
    if len(bbox) == 6 and not bbox[2] <= bbox[5]:
        return "has its lower elevation above its upper elevation"
    return None


def parse_bbox(values: Any, field: str = "bbox") -> tuple[float, float, float, float] | None:
    """A 2D or 3D bbox someone wrote (search parameter, CONFIG) as (west, south, east, north);
    InvalidInputError naming `field` when it is not 4 or 6 numbers in range."""
    if values is None:
        return None
    numbers = list(values)
    if len(numbers) not in (4, 6):
        raise InvalidInputError(f"{field}: expected 4 or 6 numbers, got {len(numbers)}")
    try:
        floats = [float(number) for number in numbers]
    except (TypeError, ValueError) as error:
        raise InvalidInputError(f"{field}: {numbers!r} are not all numbers") from error
    problem = range_problem(floats)
    if problem is not None:
        raise InvalidInputError(f"{field}: {floats!r} {problem}")
    west, south, east, north = corners(floats)
    return (west, south, east, north)


def _bounds(geojson: dict[str, Any], geometry: BaseGeometry) -> tuple[float, ...]:
    """(min x, min y, max x, max y); from the GeoJSON for one polygon of few vertices (most
    footprints: a few us faster than GEOS through shapely's ufunc)."""
    coordinates: Any = geojson.get("coordinates")  # JSON: checked as it is read
    if geojson.get("type") == "Polygon" and len(coordinates) == 1 and len(coordinates[0]) <= 64:
        xs = [position[0] for position in coordinates[0]]
        ys = [position[1] for position in coordinates[0]]
        return min(xs), min(ys), max(xs), max(ys)
    return geometry.bounds


def _contains(
    west: float,
    south: float,
    east: float,
    north: float,
    geojson: dict[str, Any],
    geometry: BaseGeometry,
) -> bool:
    min_x, min_y, max_x, max_y = _bounds(geojson, geometry)
    if min_y < south - TOLERANCE or max_y > north + TOLERANCE:
        return False
    if west <= east:
        return min_x >= west - TOLERANCE and max_x <= east + TOLERANCE
    # across the antimeridian: every vertex east of `west` or west of `east`
    x = shapely.get_coordinates(geometry)[:, 0]
    return bool(np.all((x >= west - TOLERANCE) | (x <= east + TOLERANCE)))


def geometry_bbox(geometry: BaseGeometry) -> list[float]:
    """The geometry's own [west, south, east, north]: what a missing-the-mark bbox becomes
    where the catalogue repairs rather than refuses (harvests)."""
    return [float(v) for v in geometry.bounds]
