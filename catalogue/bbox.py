"""An item's `bbox` against its geometry: in range, and containing it.

Search filters on the stored geometry, but clients draw, index and pre-filter with `bbox`
(STAC Browser's map, pystac-client, GDAL's STACIT driver), so a bbox that is out of range
or misses the geometry hides the item or puts it in the wrong place. STAC says the bbox
bounds the geometry (item-spec.md, "bbox"); WGS84 longitudes run -180..180, latitudes
-90..90, and west > east means the box crosses the antimeridian (RFC 7946 section 5.2).

`TOLERANCE` (about 0.1 m) absorbs rounding: a bbox written with 6 decimals still holds.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import shapely

TOLERANCE = 1e-6


def bbox_problem(bbox: Any, geometry: shapely.Geometry) -> str | None:
    """Why `bbox` is not a valid bbox of `geometry` (a WGS84 shapely geometry), or None."""
    if (
        not isinstance(bbox, list | tuple)
        or len(bbox) not in (4, 6)
        or not all(isinstance(v, int | float) and math.isfinite(v) for v in bbox)
    ):
        return "must be 4 or 6 finite numbers"
    west, south, east, north = (bbox[0], bbox[1], bbox[2], bbox[3]) if len(bbox) == 4 else (
        bbox[0], bbox[1], bbox[3], bbox[4]
    )  # fmt: skip
    if not all(abs(v) <= 180 + TOLERANCE for v in (west, east)):
        return "has a longitude outside -180..180"
    if not all(abs(v) <= 90 + TOLERANCE for v in (south, north)):
        return "has a latitude outside -90..90"
    if south > north:
        return "has its south edge above its north edge"
    if len(bbox) == 6 and bbox[2] > bbox[5]:
        return "has its lower elevation above its upper elevation"
    if not _contains(west, south, east, north, geometry):
        return f"does not contain the geometry (whose bounds are {geometry_bbox(geometry)})"
    return None


def _contains(
    west: float, south: float, east: float, north: float, geometry: shapely.Geometry
) -> bool:
    min_x, min_y, max_x, max_y = geometry.bounds
    if min_y < south - TOLERANCE or max_y > north + TOLERANCE:
        return False
    if west <= east:
        return min_x >= west - TOLERANCE and max_x <= east + TOLERANCE
    # across the antimeridian: every vertex east of `west` or west of `east`
    x = shapely.get_coordinates(geometry)[:, 0]
    return bool(np.all((x >= west - TOLERANCE) | (x <= east + TOLERANCE)))


def geometry_bbox(geometry: shapely.Geometry) -> list[float]:
    """The geometry's own [west, south, east, north]: what a missing-the-mark bbox becomes
    where the catalogue repairs rather than refuses (harvests)."""
    return [float(v) for v in geometry.bounds]
