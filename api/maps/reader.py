"""One tile's values: pick the level, read the window of chunks under the tile, warp it.

The level is the coarsest one whose pixels are still at least as fine as the tile's (so a
zoomed-out tile reads a small level, not the full resolution); the window is the part of
that level under the tile's bounds (transformed into the cube's CRS, plus a pixel of
margin), so only the chunks it touches are read; GDAL's warper (rasterio) resamples it
into the tile's grid, nearest neighbour (levels were built with each variable's own
resampling). A store without levels reads its only level with a stride instead, so a
zoomed-out tile's warp stays small (it still touches every chunk under the tile: levels
come with the cube's next build).
"""

from __future__ import annotations

import math
import threading

import numpy as np
from affine import Affine
from morecantile import Tile, TileMatrixSet
from pyproj import Transformer
from pyproj.exceptions import ProjError
from rasterio.errors import CRSError
from rasterio.transform import from_bounds
from rasterio.warp import Resampling, reproject

from api.maps.chunks import ChunkCache, read_window
from api.maps.selection import Selection
from api.maps.source import LevelGrid, MapSource
from api.maps.values import decoded_values, nodata_of

Bounds = tuple[float, float, float, float]
EDGE_PIXELS = 1  # margin read around the window, so the warp has neighbours at the edges
TOLERANCE = 1.001  # a level this close to the tile's resolution still counts as fine enough


def tile_bounds(tms: TileMatrixSet, tile: Tile) -> Bounds:
    left, bottom, right, top = tms.xy_bounds(tile)
    return left, bottom, right, top


def source_bounds(source: MapSource, tms: TileMatrixSet, bounds: Bounds) -> Bounds | None:
    """The tile's bounds in the cube's CRS, or None where they cannot be transformed."""
    try:
        transformer = _transformer(tms.rasterio_crs.to_wkt(), source.crs.to_wkt())
        found = transformer.transform_bounds(*bounds, densify_pts=21)
    except (CRSError, ProjError, ValueError):
        return None
    return found if all(math.isfinite(v) for v in found) else None


_transformers = threading.local()


def _transformer(source_wkt: str, target_wkt: str) -> Transformer:
    """A pyproj transformer per thread and CRS pair: building one costs milliseconds, more
    than the transformation of a tile's bounds."""
    cache: dict[tuple[str, str], Transformer] = _transformers.__dict__.setdefault("cache", {})
    key = (source_wkt, target_wkt)
    if key not in cache:
        cache[key] = Transformer.from_crs(source_wkt, target_wkt, always_xy=True)
    return cache[key]


def choose_level(source: MapSource, resolution: float) -> LevelGrid:
    """The coarsest level whose pixels are at most `resolution` (cube CRS units); the full
    resolution when the tile is finer than every level."""
    chosen = source.levels[0]
    for grid in source.levels[1:]:
        if grid.resolution <= resolution * TOLERANCE:
            chosen = grid
    return chosen


def tile_values(
    source: MapSource,
    selection: Selection,
    tms: TileMatrixSet,
    tile: Tile,
    size: int,
    cache: ChunkCache,
) -> np.ndarray | None:
    """The tile's values (float32, size x size, NaN where nothing is), or None when the
    tile does not overlap the cube."""
    bounds = tile_bounds(tms, tile)
    inside = source_bounds(source, tms, bounds)
    if inside is None or not _overlaps(inside, source.bounds()):
        return None
    resolution = min(inside[2] - inside[0], inside[3] - inside[1]) / size
    grid = choose_level(source, resolution)
    step = max(1, int(resolution / grid.resolution)) if grid is source.levels[-1] else 1
    window = _read_window(source, grid, selection, inside, step, cache)
    if window is None:
        return None
    values, transform = window
    tile_grid = np.full((size, size), np.nan, dtype="float32")
    reproject(
        source=values,
        destination=tile_grid,
        src_transform=transform,
        src_crs=source.crs,
        src_nodata=np.nan,
        dst_transform=from_bounds(*bounds, size, size),
        dst_crs=tms.rasterio_crs,
        dst_nodata=np.nan,
        resampling=Resampling.nearest,
    )
    return tile_grid


def _overlaps(a: Bounds, b: Bounds) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _read_window(
    source: MapSource,
    grid: LevelGrid,
    selection: Selection,
    bounds: Bounds,
    step: int,
    cache: ChunkCache,
) -> tuple[np.ndarray, Affine] | None:
    """The level's pixels under `bounds` (every `step`-th), decoded, with their transform.
    Whole chunks go through `cache`; a strided read of a store without levels (zoomed out)
    reads through Zarr directly, keeping only every `step`-th pixel."""
    inverse = ~grid.transform
    corners = [inverse @ (x, y) for x in (bounds[0], bounds[2]) for y in (bounds[1], bounds[3])]
    cols = [c for c, _ in corners]
    rows = [r for _, r in corners]
    col0 = max(0, math.floor(min(cols)) - EDGE_PIXELS)
    col1 = min(grid.width, math.ceil(max(cols)) + EDGE_PIXELS)
    row0 = max(0, math.floor(min(rows)) - EDGE_PIXELS)
    row1 = min(grid.height, math.ceil(max(rows)) + EDGE_PIXELS)
    if col0 >= col1 or row0 >= row1:
        return None
    array = grid.array(selection.variable)
    if step == 1 or not source.is_legacy:  # a level's window is small: read it whole
        name = f"{source.cube.store}/{grid.level.path}/{selection.variable}"
        raw = read_window(array, name, selection.index, (row0, row1), (col0, col1), cache)
        raw = raw[::step, ::step]
    else:
        window: tuple[int | slice, ...] = (
            *selection.index,
            slice(row0, row1, step),
            slice(col0, col1, step),
        )
        raw = np.asarray(array[window])
    nodata = nodata_of(source, selection.variable)
    values = decoded_values(np.asarray(raw), source, selection.variable, nodata)
    transform = grid.transform @ Affine.translation(col0, row0)
    return values, transform @ Affine.scale(step)
