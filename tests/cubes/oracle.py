"""GDAL as the oracle: `rasterio.warp.reproject` of a whole source array onto the test grid."""

from __future__ import annotations

import numpy as np
from rasterio.warp import Resampling, reproject

from tests.cubes import data


def gdal_warp(
    array: np.ndarray, source: data.Source, resampling: str, nodata: float | int | None = None
) -> np.ndarray:
    """One 2-D plane of `source` warped the way `gdalwarp` would, whole-image."""
    fill = source.nodata if nodata is None else nodata
    destination = np.full((data.HEIGHT, data.WIDTH), fill, dtype=array.dtype)
    reproject(
        source=array,
        destination=destination,
        src_transform=source.transform,
        src_crs=source.crs,
        src_nodata=fill,
        dst_transform=data.target_transform(),
        dst_crs=data.GRID_CRS,
        dst_nodata=fill,
        resampling=Resampling[resampling],
    )
    return destination


def sample_pixels(count: int = 500, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    flat = rng.choice(data.HEIGHT * data.WIDTH, size=count, replace=False)
    return np.unravel_index(flat, (data.HEIGHT, data.WIDTH))
