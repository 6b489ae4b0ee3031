"""Where a WGS 84 point or polygon falls on a cube's grid: the pixel holding a point, the
window and pixel mask under a polygon.

The grid is read from the dataset's own x/y coordinates (pixel centres, as cubes write them;
`cubes.cf`), so it is that of the level actually read. A pixel contains a point when the
point is within half a step of its centre; a polygon covers the pixels whose centres it
contains (rasterio's default rasterisation, GDAL's rule), so the statistics over a polygon
and a brute-force computation over the same centres agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np
import shapely
import xarray as xr
from affine import Affine
from pyproj import CRS, Transformer
from rasterio.features import geometry_mask
from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry

from catalogue.dataset_grid import file_crs
from catalogue.errors import InvalidInputError

CRS84 = "OGC:CRS84"
# edges of a polygon are cut to this many pieces of its bbox diagonal before reprojecting,
# so that long edges follow the projection's curvature; polygons with more vertices than
# DENSIFY_UP_TO are reprojected as drawn
DENSIFY_PIECES = 64
DENSIFY_UP_TO = 1_000


@dataclass(frozen=True)
class Window:
    """Rows `row0:row1` and columns `col0:col1` of the grid under a polygon's bounding box,
    and the polygon in the grid's CRS; `mask` (True inside) is rasterised on first use, so
    that a window over the read budget is refused before any array of its size exists."""

    row0: int
    row1: int
    col0: int
    col1: int
    polygon: BaseGeometry  # in the grid's CRS
    transform: Affine  # of the window's top-left pixel

    @property
    def pixels(self) -> int:
        return (self.row1 - self.row0) * (self.col1 - self.col0)

    @cached_property
    def mask(self) -> np.ndarray:
        return geometry_mask(
            [self.polygon],
            out_shape=(self.row1 - self.row0, self.col1 - self.col0),
            transform=self.transform,
            invert=True,
        )


@dataclass(frozen=True)
class CubeGrid:
    """A cube's regular grid: the affine transform of pixel edges, its size and CRS."""

    transform: Affine
    height: int
    width: int
    crs: str

    @classmethod
    def of(cls, dataset: xr.Dataset) -> CubeGrid:
        x = np.asarray(dataset["x"].values, dtype="float64")
        y = np.asarray(dataset["y"].values, dtype="float64")
        dx, dy = _step(x, dataset, 1), _step(y, dataset, 5)
        transform = Affine(dx, 0.0, x[0] - dx / 2, 0.0, dy, y[0] - dy / 2)
        crs = file_crs(dataset)
        if crs is None:
            raise ValueError("the cube has no CRS (no spatial_ref grid mapping)")
        return cls(transform, len(y), len(x), crs)

    @property
    def crs_name(self) -> str:
        """`EPSG:<code>` when the CRS has one, else its WKT."""
        epsg = CRS.from_user_input(self.crs).to_epsg()
        return f"EPSG:{epsg}" if epsg is not None else self.crs

    def pixel_of(self, point: Point) -> tuple[int, int] | None:
        """(row, column) of the pixel containing a WGS 84 point; None outside the grid."""
        x, y = _to_crs(self.crs).transform(point.x, point.y)
        col, row = ~self.transform @ (x, y)
        if not (math.isfinite(col) and math.isfinite(row)):
            return None
        col_index, row_index = math.floor(col), math.floor(row)
        if 0 <= row_index < self.height and 0 <= col_index < self.width:
            return row_index, col_index
        return None

    def centre_lonlat(self, row: int, col: int) -> tuple[float, float]:
        """The WGS 84 longitude/latitude of a pixel's centre."""
        x, y = self.transform @ (col + 0.5, row + 0.5)
        lon, lat = _from_crs(self.crs).transform(x, y)
        return float(lon), float(lat)

    def window_of(self, polygon: BaseGeometry, footprint: list[float] | None) -> Window | None:
        """The pixels under a WGS 84 polygon's bounding box; None when it misses the grid.
        The polygon is first cut to the cube's WGS 84 `footprint` bbox (with a margin), so
        that parts far outside the CRS's area of use are never projected."""
        if footprint and len(footprint) >= 4:
            west, south, east, north = footprint[:4]
            margin = 0.01 * max(east - west, north - south, 1e-6)
            area = shapely.box(west - margin, south - margin, east + margin, north + margin)
            polygon = _polygonal(shapely.intersection(polygon, area))
        if polygon.is_empty:
            return None
        projected = self.project(polygon)
        west, south, east, north = projected.bounds
        if not all(math.isfinite(v) for v in (west, south, east, north)):
            return None
        c0, r0 = ~self.transform @ (west, north)
        c1, r1 = ~self.transform @ (east, south)
        row0, row1 = _span(r0, r1, self.height)
        col0, col1 = _span(c0, c1, self.width)
        if row0 >= row1 or col0 >= col1:
            return None
        window_transform = self.transform @ Affine.translation(col0, row0)
        return Window(row0, row1, col0, col1, projected, window_transform)

    def project(self, geometry: BaseGeometry) -> BaseGeometry:
        """`geometry` (WGS 84) in the grid's CRS, its edges densified when it is small."""
        if shapely.get_num_coordinates(geometry) <= DENSIFY_UP_TO:
            west, south, east, north = geometry.bounds
            diagonal = math.hypot(east - west, north - south)
            if diagonal > 0:
                geometry = shapely.segmentize(geometry, diagonal / DENSIFY_PIECES)
        transformer = _to_crs(self.crs)
        return shapely.transform(
            geometry, lambda xy: np.column_stack(transformer.transform(xy[:, 0], xy[:, 1]))
        )


def extent_text(bbox: list[float] | None) -> str:
    """A WGS 84 bbox as `[w, s, e, n]` with a precision people read."""
    if not bbox or len(bbox) < 4:
        return "unknown"
    return "[" + ", ".join(f"{v:.6g}" for v in bbox[:4]) + "]"


def require_pixel(grid: CubeGrid, point: Point, bbox: list[float] | None) -> tuple[int, int]:
    pixel = grid.pixel_of(point)
    if pixel is None:
        raise InvalidInputError(
            f"coords: POINT({point.x:.6g} {point.y:.6g}) is outside the cube's extent "
            f"{extent_text(bbox)}"
        )
    return pixel


def _polygonal(geometry: BaseGeometry) -> BaseGeometry:
    """The polygons of an intersection (which may add lines or points where it touches)."""
    if geometry.geom_type in ("Polygon", "MultiPolygon"):
        return geometry
    parts = [p for p in shapely.get_parts(geometry) if p.geom_type == "Polygon"]
    return shapely.MultiPolygon(parts) if parts else shapely.Polygon()


def _span(a: float, b: float, size: int) -> tuple[int, int]:
    """Whole pixel indices covering fractional indices a..b, clipped to 0..size."""
    low, high = sorted((a, b))
    return max(0, math.floor(low)), min(size, math.ceil(high))


def _step(values: np.ndarray, dataset: xr.Dataset, geotransform_index: int) -> float:
    if len(values) > 1:
        return float(values[1] - values[0])
    text = dataset.get("spatial_ref", xr.DataArray()).attrs.get("GeoTransform", "")
    parts = str(text).split()
    if len(parts) == 6:
        return float(parts[geotransform_index])
    raise ValueError("a one-pixel axis without a GeoTransform: the pixel size is unknown")


@lru_cache(maxsize=64)
def _to_crs(crs: str) -> Transformer:
    return Transformer.from_crs(CRS84, CRS.from_user_input(crs), always_xy=True)


@lru_cache(maxsize=64)
def _from_crs(crs: str) -> Transformer:
    return Transformer.from_crs(CRS.from_user_input(crs), CRS84, always_xy=True)
