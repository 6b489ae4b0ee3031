"""The target grid as an odc-geo `GeoBox`, and its footprint in WGS84.

The grid is anchored at the bbox's north-west corner with `ceil` pixels towards the
south-east (the forest-recovery case: width ceil(154664 / 30) = 5156), so pixel edges fall
on the configured corner rather than on multiples of the resolution.
"""

from __future__ import annotations

from affine import Affine
from odc.geo import CRS
from odc.geo.geobox import GeoBox
from pyproj.exceptions import CRSError

from cubes.errors import GridError
from cubes.spec import GridSpec


def grid_crs(grid: GridSpec, cube: str) -> CRS:
    try:
        return CRS(grid.crs)
    except (CRSError, ValueError) as error:
        raise GridError(
            f"unknown CRS {grid.crs!r}: {error}", cube=cube, where="grid.crs"
        ) from error


def target_geobox(grid: GridSpec, cube: str) -> GeoBox:
    """The cube's pixel grid; y runs north to south (negative y resolution)."""
    crs = grid_crs(grid, cube)
    west, _, _, north = grid.bbox
    xres, yres = grid.xy_resolution
    height, width = grid.shape
    return GeoBox((height, width), Affine(xres, 0.0, west, 0.0, -yres, north), crs)


def wgs84_footprint(geobox: GeoBox) -> tuple[dict, tuple[float, float, float, float]]:
    """GeoJSON polygon and bbox in EPSG:4326 covering the grid, densified along its edges
    so that a projected grid's curved outline is not cut short."""
    extent = geobox.extent.to_crs("EPSG:4326", resolution=_densify_step(geobox))
    west, south, east, north = extent.boundingbox
    return extent.json, (west, south, east, north)


def _densify_step(geobox: GeoBox) -> float:
    """About 16 points along the longer edge, in the grid's own units."""
    height, width = geobox.shape.yx
    return max(abs(geobox.resolution.x) * width, abs(geobox.resolution.y) * height) / 16
