"""Bring a variable onto the cube's grid with odc-geo, and mosaic several items.

Why odc-geo (`xr_reproject`): it builds one dask task per output tile that reads only the
source chunks overlapping that tile and warps them with GDAL (`rasterio.warp.reproject`),
so results match a direct GDAL warp, memory is bounded by tiles, the graph holds geoboxes
and chunk indices but never pixels, and the dtype is ours to keep (categorical layers stay
integers). GDAL's own kernel scaling is kept (`XSCALE`/`YSCALE` unset, where odc-geo would
pin them to 1), so downsampling with bilinear/cubic behaves exactly like `gdalwarp`.

One shortcut, no warp of our own: when the source grid has the target's CRS and pixel size
and sits a whole number of pixels away (the disturbance atlas), every resampling method
returns the source pixel itself, so the tile is a slice of the source (odc-geo calls this
"paste"). That skips GDAL and runs at the speed of a copy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import xarray as xr
from odc.geo.geobox import GeoBox
from odc.geo.xr import xr_reproject

from cubes.inputs import Nodata

PASTE_TOLERANCE = 1e-6  # of a pixel


def regrid(
    variable: xr.DataArray, nodata: Nodata, geobox: GeoBox, resampling: str, tile: int
) -> xr.DataArray:
    """`variable` (dims `(..., y, x)` with a `spatial_ref` CRS) on `geobox`, chunked
    `(1, ..., tile, tile)`, same dtype, uncovered pixels set to `nodata`."""
    source = variable.odc.geobox
    if source is None:
        raise ValueError("the data is not on a regular, georeferenced grid")
    offset = paste_offset(source, geobox)
    if offset is not None:
        out = _paste(variable, offset, geobox, nodata)
    else:
        out = xr_reproject(
            variable,
            geobox,
            resampling=resampling,
            src_nodata=nodata,
            dst_nodata=nodata,
            dtype=variable.dtype,
            chunks=(tile, tile),
            always_yx=True,
            XSCALE=None,  # GDAL's own kernel scaling: see the module's docstring
            YSCALE=None,
        )
    out = out.drop_vars([c for c in out.coords if c not in out.dims])
    out = out.assign_coords(y=geobox_y(geobox), x=geobox_x(geobox))
    out.attrs = dict(variable.attrs)
    out.encoding = {}
    return out.chunk(tile_chunks(out, tile))


def paste_offset(source: GeoBox, target: GeoBox) -> tuple[int, int] | None:
    """(row, col) of the target's corner in source pixels when no resampling is needed."""
    if source.crs != target.crs:
        return None
    s, t = source.transform, target.transform
    same_size = math.isclose(s.a, t.a, rel_tol=1e-9) and math.isclose(s.e, t.e, rel_tol=1e-9)
    if not same_size or any(v != 0 for v in (s.b, s.d, t.b, t.d)):
        return None
    col = (t.c - s.c) / s.a
    row = (t.f - s.f) / s.e
    if abs(col - round(col)) > PASTE_TOLERANCE or abs(row - round(row)) > PASTE_TOLERANCE:
        return None
    return round(row), round(col)


def _paste(
    variable: xr.DataArray, offset: tuple[int, int], geobox: GeoBox, nodata: Nodata
) -> xr.DataArray:
    row, col = offset
    height, width = geobox.shape.yx
    src_h, src_w = variable.sizes["y"], variable.sizes["x"]
    y0, y1 = max(row, 0), min(row + height, src_h)
    x0, x1 = max(col, 0), min(col + width, src_w)
    if y0 >= y1 or x0 >= x1:
        return _filled(variable, geobox, nodata)
    window = variable.isel(y=slice(y0, y1), x=slice(x0, x1))
    pad = {"y": (y0 - row, row + height - y1), "x": (x0 - col, col + width - x1)}
    if any(any(p) for p in pad.values()):
        window = window.pad(pad, mode="constant", constant_values=fill_value(variable, nodata))
    return window.astype(variable.dtype, copy=False)


def _filled(variable: xr.DataArray, geobox: GeoBox, nodata: Nodata) -> xr.DataArray:
    import dask.array as da

    height, width = geobox.shape.yx
    shape = (*variable.shape[:-2], height, width)
    data = da.full(shape, fill_value(variable, nodata), dtype=variable.dtype)
    return xr.DataArray(
        data,
        dims=variable.dims,
        coords={d: variable.coords[d] for d in variable.dims[:-2] if d in variable.coords},
    )


def fill_value(variable: xr.DataArray, nodata: Nodata) -> float | int:
    """What uncovered pixels hold: nodata, else NaN for floats, else 0 (as GDAL does)."""
    if nodata is not None:
        return nodata
    return math.nan if np.issubdtype(variable.dtype, np.floating) else 0


def geobox_x(geobox: GeoBox) -> np.ndarray:
    """Pixel-centre x coordinates, computed from the affine (not accumulated)."""
    width = geobox.shape.x
    return geobox.transform.c + (np.arange(width) + 0.5) * geobox.transform.a


def geobox_y(geobox: GeoBox) -> np.ndarray:
    height = geobox.shape.y
    return geobox.transform.f + (np.arange(height) + 0.5) * geobox.transform.e


def tile_chunks(variable: xr.DataArray, tile: int) -> dict[str, int]:
    return {str(d): (tile if d in ("y", "x") else 1) for d in variable.dims}


def is_valid(variable: xr.DataArray, nodata: Nodata) -> xr.DataArray:
    """Where a pixel holds data; integers without nodata count 0 as empty (GDAL's fill)."""
    if nodata is None:
        return variable.notnull() if variable.dtype.kind == "f" else variable != 0
    if isinstance(nodata, float) and math.isnan(nodata):
        return variable.notnull()
    return variable != nodata


def mosaic(layers: Sequence[xr.DataArray], nodata: Nodata) -> xr.DataArray:
    """First valid pixel wins, in the order given (newest item first)."""
    result = layers[0]
    for layer in layers[1:]:
        result = xr.where(is_valid(result, nodata), result, layer, keep_attrs=True)
    return result.astype(layers[0].dtype, copy=False)
