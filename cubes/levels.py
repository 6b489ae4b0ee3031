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
from operator import itemgetter
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr
from dask.base import tokenize

from cubes.downsample import Nodata, average, averages, coarse_length, mode, modes
from cubes.sharding import with_shards

SPATIAL = ("y", "x")
MODE = "mode"
AVERAGE = "average"
TIMESERIES_TARGET_BYTES = 4 * 2**20  # one time-series chunk, uncompressed
MIN_TIMESERIES_CHUNK = 8
ENCODING_KEYS = ("_FillValue", "missing_value")
SHARD_KEYS = ("chunks", "shards")


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


def level_datasets(
    full: xr.Dataset,
    grids: list[LevelGrid],
    resampling: Mapping[str, str],
    nodata: Mapping[str, Nodata],
    tile: int,
) -> list[xr.Dataset]:
    """Levels `grids` of `full` (level 0 opened raw and lazily, chunked by tile)."""
    if not grids:  # level 0 fits in one tile: no other level
        return []
    per_level: list[dict[Any, xr.DataArray]] = [{} for _ in grids]
    factors = [grid.factor for grid in grids]
    for name, variable in full.data_vars.items():
        variable = variable.transpose(..., *SPATIAL)
        method = resampling.get(str(name), AVERAGE)
        arrays = _downsampled(variable.data, factors, method, nodata.get(str(name)), tile)
        for variables, data in zip(per_level, arrays, strict=True):
            variables[name] = xr.DataArray(data, dims=variable.dims, attrs=_attrs(variable))
    return [_level(full, grid, variables) for grid, variables in zip(grids, per_level, strict=True)]


def level_dataset(
    full: xr.Dataset,
    grid: LevelGrid,
    resampling: Mapping[str, str],
    nodata: Mapping[str, Nodata],
    tile: int,
) -> xr.Dataset:
    """One level of `full` (see `level_datasets`)."""
    return level_datasets(full, [grid], resampling, nodata, tile)[0]


def _level(full: xr.Dataset, grid: LevelGrid, variables: dict[Any, xr.DataArray]) -> xr.Dataset:
    """The level's variables with their own x/y coordinates and grid mapping."""
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
    dataset: xr.Dataset,
    base: Mapping[str, Mapping[str, Any]],
    inner: Mapping[str, int | None] | None = None,
    whole: tuple[str, ...] = (),
) -> dict[str, dict[str, Any]]:
    """Level 0's encoding (compressor, `_FillValue`) with the chunks `dataset` has; with
    `inner` (per variable: a sharded cube's inner chunk side), those chunks are the
    shards, split into inner chunks of that side (whole along the dimensions `whole`)."""
    result: dict[str, dict[str, Any]] = {}
    for name, variable in dataset.data_vars.items():
        chunks = tuple(sizes[0] for sizes in variable.chunks) if variable.chunks else None
        entry = {k: v for k, v in base.get(str(name), {}).items() if k not in SHARD_KEYS}
        side = (inner or {}).get(str(name))
        dims = [str(d) for d in variable.dims]
        result[str(name)] = with_shards({**entry, "chunks": chunks}, dims, side, whole)
    for name in SPATIAL:
        result[name] = {"chunks": (dataset.sizes[name],), "compressors": None}
    return result


def _downsampled(
    data: Any, factors: list[int], method: str, nodata: Nodata, tile: int
) -> list[Any]:
    """Every level of a dask array (downsampled on its last two axes by each of `factors`),
    re-tiled to `tile`. One task per chunk computes all levels from it, so each chunk of
    level 0 is read once; the levels are then picked from its result."""
    lead = data.ndim - 2
    top = max(factors)
    if tile % top:  # every chunk but the last must hold whole windows of every level
        step = top * coarse_length(tile, top)
        data = data.rechunk({lead: step, lead + 1: step})
    token = tokenize(data, factors, method, nodata)
    reduced = da.map_blocks(
        _all_levels, data, factors=tuple(factors), method=method, nodata=nodata,
        chunks=data.chunks, dtype=object, meta=np.empty((0,) * data.ndim, object),
        name=f"levels-{method}-{token}",
    )  # fmt: skip
    result = []
    for index, factor in enumerate(factors):
        chunks = (
            *data.chunks[:lead],
            *(tuple(coarse_length(n, factor) for n in axis) for axis in data.chunks[lead:]),
        )
        level = da.map_blocks(
            itemgetter(index), reduced, chunks=chunks, dtype=data.dtype,
            meta=np.empty((0,) * data.ndim, data.dtype), name=f"level-{factor}-{token}",
        )  # fmt: skip
        result.append(level.rechunk({lead: tile, lead + 1: tile}))
    return result


def _all_levels(
    block: np.ndarray, factors: tuple[int, ...], method: str, nodata: Nodata
) -> tuple[np.ndarray, ...]:
    """`block` downsampled by each factor: modes one by one, averages in one halving chain
    when the factors are powers of two (as levels' are)."""
    powers = all(f > 1 and f & (f - 1) == 0 for f in factors)
    if method == MODE and powers:
        chain = modes(block, max(factors).bit_length() - 1, nodata)
        if chain is not None:
            return tuple(chain[factor.bit_length() - 2] for factor in factors)
    if method == MODE:
        return tuple(mode(block, factor, nodata) for factor in factors)
    if powers:
        chain = averages(block, max(factors).bit_length() - 1, nodata)
        return tuple(chain[factor.bit_length() - 2] for factor in factors)
    return tuple(average(block, factor, nodata) for factor in factors)


def _attrs(variable: xr.DataArray) -> dict[str, Any]:
    """Attributes without the encoding ones (`_FillValue` goes into the encoding)."""
    return {k: v for k, v in variable.attrs.items() if k not in ENCODING_KEYS}
