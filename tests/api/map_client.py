"""Reading tiles the way a map client does: which tile holds a point, which pixel of it,
and the decoded RGBA there."""

from __future__ import annotations

import morecantile
import numpy as np
from morecantile import Tile, TileMatrixSet
from rasterio.io import MemoryFile

TILE = 256


def tile_pixel(tms: TileMatrixSet, lon: float, lat: float, zoom: int) -> tuple[Tile, int, int]:
    """The tile at `zoom` holding (lon, lat) and the (row, col) of the point in it."""
    tile = tms.tile(lon, lat, zoom)
    bounds = tms.xy_bounds(tile)
    x, y = tms.xy(lon, lat)
    col = int((x - bounds.left) / (bounds.right - bounds.left) * TILE)
    row = int((bounds.top - y) / (bounds.top - bounds.bottom) * TILE)
    return tile, row, col


def decode(image: bytes) -> np.ndarray:
    """An image's bands as (bands, rows, cols)."""
    with MemoryFile(image) as memory, memory.open() as dataset:
        return dataset.read()


def rgba(image: bytes, row: int, col: int) -> tuple[int, ...]:
    return tuple(int(v) for v in decode(image)[:, row, col])


def web_mercator() -> TileMatrixSet:
    return morecantile.tms.get("WebMercatorQuad")
