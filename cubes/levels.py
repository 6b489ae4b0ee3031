"""The coarser levels of a cube and its time-series copy, as lazy datasets built from the
full resolution as written (issue 15; layout in `catalogue.cube_layout`).

Level k halves level 0 k times: each pixel covers 2**k x 2**k pixels of level 0 (never of
level k-1, so averages stay exact and modes are true modes), with the same origin, so its
transform is level 0's with the pixel size times 2**k; its last row and column may reach
past level 0's edge by less than one coarse pixel. Levels go down to the first whose larger
side fits in one tile.

Cost: every level reads the same level-0 chunks, and they are built in one dask graph, so
each written chunk is read and decompressed once for all levels together. A level-0 chunk
turns into a tile/2**k block blockwise (no data moves between chunks); the small blocks are
then concatenated into tiles. Values stay raw (no CF masking): the variable's nodata is
skipped by the downsampling and written back as its `_FillValue`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr
from dask.base import tokenize

from cubes.downsample import Nodata, average, coarse_length, mode

SPATIAL = ("y", "x")
MODE = "mode"
AVERAGE = "average"
TIMESERIES_TARGET_BYTES = 4 * 2**20  # one time-series chunk, uncompressed
MIN_TIMESERIES_CHUNK = 8
ENCODING_KEYS = ("_FillValue", "missing_value")


@dataclass(frozen=True)
class LevelGrid:
    """One level's place: its index, scale factor, (height, width) and affine transform
    `[a, b, c, d, e, f]` (x = a*col + b*row + c), the order of `spatial:transform`."""

    index: int
    factor: int
    shape: tuple[int, int]
    transform: tuple[float, float, float, float, float, float]

    @property
    def gdal_transform(self) -> str:
        a, b, c, d, e, f = self.transform
        return " ".join(repr(float(v)) for v in (c, a, b, f, d, e))


def level_grids(shape: tuple[int, int], transform: tuple[float, ...], tile: int) -> list[LevelGrid]:
    """Level 0 and every coarser level down to the first that fits in one tile."""
    a, b, c, d, e, f = (float(v) for v in transform[:6])
    grids = []
    index = 0
    while True:
        factor = 2**index
        height, width = (coarse_length(n, factor) for n in shape)
        scaled = (a * factor, b * factor, c, d * factor, e * factor, f)
        grids.append(LevelGrid(index, factor, (height, width), scaled))
        if max(height, width) <= tile:
            return grids
        index += 1


def level_dataset(
    full: xr.Dataset,
    grid: LevelGrid,
    resampling: Mapping[str, str],
    nodata: Mapping[str, Nodata],
    tile: int,
) -> xr.Dataset:
    """Level `grid` of `full` (level 0 opened raw and lazily, chunked by tile)."""
    variables = {}
    for name, variable in full.data_vars.items():
        variable = variable.transpose(..., *SPATIAL)
        method = resampling.get(str(name), AVERAGE)
        data = _downsampled(variable.data, grid.factor, method, nodata.get(str(name)), tile)
        variables[name] = xr.DataArray(data, dims=variable.dims, attrs=_attrs(variable))
    coords = {
        name: coord.variable
        for name, coord in full.coords.items()
        if not set(coord.dims) & set(SPATIAL) and name != "spatial_ref"
    }
    a, _, c, _, e, f = grid.transform
    height, width = grid.shape
    coords["x"] = xr.Variable("x", c + (np.arange(width) + 0.5) * a, full["x"].attrs)
    coords["y"] = xr.Variable("y", f + (np.arange(height) + 0.5) * e, full["y"].attrs)
    if "spatial_ref" in full.coords:
        attrs = {**full["spatial_ref"].attrs, "GeoTransform": grid.gdal_transform}
        coords["spatial_ref"] = xr.Variable((), full["spatial_ref"].values, attrs)
    return xr.Dataset(variables, coords=coords, attrs=dict(full.attrs))


def timeseries_dataset(full: xr.Dataset, chunk: int) -> xr.Dataset:
    """Level 0 with every variable that has time chunked `(whole time, chunk, chunk)`;
    the others keep level 0's chunks."""
    variables = {}
    for name, variable in full.data_vars.items():
        if "time" in variable.dims:
            sizes = {dim: 1 for dim in variable.dims if dim not in ("time", *SPATIAL)}
            variable = variable.chunk({"time": -1, "y": chunk, "x": chunk, **sizes})
        variables[name] = variable.copy(deep=False)
        variables[name].attrs = _attrs(variable)
        variables[name].encoding = {}
    return xr.Dataset(variables, coords=full.coords, attrs=dict(full.attrs))


def timeseries_chunk(full: xr.Dataset, tile: int, requested: int | None) -> int:
    """The spatial chunk of the time-series layout: as asked, else the largest power of
    two whose chunk of the whole time axis stays under TIMESERIES_TARGET_BYTES."""
    if requested is not None:
        return min(requested, tile)
    steps = full.sizes.get("time", 1)
    itemsize = max((v.dtype.itemsize for v in full.data_vars.values()), default=4)
    side = int(np.sqrt(TIMESERIES_TARGET_BYTES / (steps * itemsize)))
    power = 2 ** max(0, side.bit_length() - 1)
    return max(MIN_TIMESERIES_CHUNK, min(tile, power))


def layout_encoding(
    dataset: xr.Dataset, base: Mapping[str, Mapping[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Level 0's encoding (compressor, `_FillValue`) with the chunks `dataset` has."""
    result: dict[str, dict[str, Any]] = {}
    for name, variable in dataset.data_vars.items():
        chunks = tuple(sizes[0] for sizes in variable.chunks) if variable.chunks else None
        entry = {k: v for k, v in base.get(str(name), {}).items() if k != "chunks"}
        result[str(name)] = {**entry, "chunks": chunks}
    for name in SPATIAL:
        result[name] = {"chunks": (dataset.sizes[name],), "compressors": None}
    return result


def _downsampled(data: Any, factor: int, method: str, nodata: Nodata, tile: int) -> Any:
    """Blockwise downsampling of a dask array on its last two axes, re-tiled to `tile`."""
    if factor == 1:
        return data
    lead = data.ndim - 2
    # every chunk but the last must hold whole windows
    if tile % factor:
        step = factor * coarse_length(tile, factor)
        data = data.rechunk({lead: step, lead + 1: step})
    reduce = mode if method == MODE else average
    chunks = (
        *data.chunks[:lead],
        *(tuple(coarse_length(n, factor) for n in axis) for axis in data.chunks[lead:]),
    )
    coarse = da.map_blocks(
        reduce, data, factor=factor, nodata=nodata, chunks=chunks, dtype=data.dtype,
        name=f"level-{method}-{factor}-{tokenize(data, nodata)}",
    )  # fmt: skip
    return coarse.rechunk({lead: tile, lead + 1: tile})


def _attrs(variable: xr.DataArray) -> dict[str, Any]:
    """Attributes without the encoding ones (`_FillValue` goes into the encoding)."""
    return {k: v for k, v in variable.attrs.items() if k not in ENCODING_KEYS}
