"""Complete a cube store around its written full resolution: the coarser levels, the
optional time-series layout, the root group's GeoZarr attributes and the consolidated
metadata (layout: `catalogue.cube_layout`, issue 15).

The full resolution (group `0/`) is read back lazily from the store, as written, and
every other group is built from it in one dask computation, so the chunks of `0/` are
read once however many levels there are, and the build's own graph (inputs, warping,
aggregation) never runs twice. Metadata is consolidated last: in each group (so that
`xr.open_zarr("<store>/0")` and each level open on their own) and at the root (every
group, for `xr.open_datatree` and GDAL).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr
import zarr
from dask import delayed, is_dask_collection
from pyproj import CRS

from catalogue.cube_layout import (
    FULL_RESOLUTION_GROUP,
    MULTISCALES_CONVENTION,
    TIMESERIES_GROUP,
    Level,
    level_path,
    multiscales_attrs,
)
from cubes.assets import storage_options_for
from cubes.downsample import Nodata
from cubes.levels import (
    AVERAGE,
    MODE,
    LevelGrid,
    layout_encoding,
    level_datasets,
    level_grids,
    timeseries_chunk,
    timeseries_dataset,
)
from cubes.sharding import timeseries_shard_side

logger = logging.getLogger(__name__)
BATCH_BYTES = 32 * 2**20  # level-0 data per downsampling task

PROJ_CONVENTION = {
    "schema_url": "https://raw.githubusercontent.com/zarr-experimental/geo-proj/refs/tags/v1/schema.json",
    "spec_url": "https://github.com/zarr-experimental/geo-proj/blob/v1/README.md",
    "uuid": "f17cb550-5864-4468-aeb7-f3180cfb622f",
    "name": "proj:",
    "description": "Coordinate reference system information for geospatial data",
}
SPATIAL_CONVENTION = {
    "schema_url": "https://raw.githubusercontent.com/zarr-conventions/spatial/refs/tags/v1/schema.json",
    "spec_url": "https://github.com/zarr-conventions/spatial/blob/v1/README.md",
    "uuid": "689b58e2-cf7b-45e0-9fff-9cfc0883d6b4",
    "name": "spatial:",
    "description": "Spatial coordinate information",
}


@dataclass(frozen=True)
class PyramidPlan:
    """What to build around level 0: per variable its resampling (`mode` or `average`)
    and nodata, level 0's encoding and the other groups' (`cubes.cf.derived_compressor`),
    the tile size, and whether to add the time-series layout (its chunk: None for the
    default)."""

    resampling: Mapping[str, str]
    nodata: Mapping[str, Nodata]
    encoding: Mapping[str, Mapping[str, Any]]  # level 0's
    derived_encoding: Mapping[str, Mapping[str, Any]]  # the other groups' (faster codec)
    tile: int
    crs: CRS
    transform: tuple[float, float, float, float, float, float]
    timeseries: bool = False
    timeseries_chunk: int | None = None
    inner_chunk: int | None = None  # a sharded cube's (Zarr v3) inner chunk side

    def inner(self, dataset: xr.Dataset, timeseries_chunk: int | None = None) -> dict[str, Any]:
        """Per variable of a group, its inner chunk side when sharded: the time-series
        chunk for variables with time in that layout, the cube's inner chunk otherwise."""
        if self.inner_chunk is None:
            return {}
        return {
            str(name): timeseries_chunk
            if timeseries_chunk is not None and "time" in variable.dims
            else self.inner_chunk
            for name, variable in dataset.data_vars.items()
        }


@dataclass(frozen=True)
class Pyramid:
    """What the store holds once complete: its levels (finest first) and whether it has
    the time-series layout, with its chunk size."""

    levels: list[Level]
    timeseries_chunk: int | None
    resampling: Mapping[str, str] = field(default_factory=dict)  # per variable
    shard_sides: Mapping[str, int] = field(default_factory=dict)  # "map"/"timeseries", sharded


def full_resolution_attrs(plan: PyramidPlan, shape: tuple[int, int]) -> dict[str, Any]:
    """GeoZarr `proj:`/`spatial:` attributes of the full resolution group."""
    grid = level_grids(shape, plan.transform, plan.tile)[0]
    return _geo_attrs(plan.crs, grid)


def build_pyramid(
    url: str, zarr_format: int, plan: PyramidPlan, compute: Callable[[Any], None]
) -> Pyramid:
    """Write levels 1.. and the time-series layout from `<url>/0`, then the root's
    attributes and every consolidated metadata file."""
    options = storage_options_for(url) or None
    full = _full_resolution(url, zarr_format, options, {})
    if "time" in full.dims:  # several steps per read and task: fewer, larger tasks
        full = _full_resolution(url, zarr_format, options, {"time": time_batch(full, plan.tile)})
    shape = (full.sizes["y"], full.sizes["x"])
    grids = level_grids(shape, plan.transform, plan.tile)
    groups: dict[str, tuple[xr.Dataset, dict[str, Any]]] = {}  # path -> (data, inner sides)
    coarse = level_datasets(full, grids[1:], plan.resampling, plan.nodata, plan.tile)
    for grid, level in zip(grids[1:], coarse, strict=True):
        level.attrs.update(_geo_attrs(plan.crs, grid))
        groups[level_path(grid.index)] = (level, plan.inner(level))
    chunk = None
    if plan.timeseries and "time" in full.dims:
        chunk = timeseries_chunk(full, plan.tile, plan.timeseries_chunk)
        series = timeseries_dataset(full, _timeseries_block(full, chunk, plan))
        groups[TIMESERIES_GROUP] = (series, plan.inner(series, chunk))
    elif plan.timeseries:
        logger.warning("%s: the cube has no time axis, so no time-series layout", url)
    if groups:
        compute(_store(groups, url, zarr_format, plan, options))
    levels = [_level(grid, plan) for grid in grids]
    attrs = root_attrs(plan, grids, full.attrs, shared_dims(full))
    _finish(url, zarr_format, attrs, levels, chunk is not None)
    shards = {} if plan.inner_chunk is None else {"map": plan.tile}
    if chunk is not None and plan.inner_chunk is not None:
        shards["timeseries"] = _timeseries_block(full, chunk, plan)
    return Pyramid(levels, chunk, dict(plan.resampling), shards)


def _timeseries_block(full: xr.Dataset, chunk: int, plan: PyramidPlan) -> int:
    """The y/x side each task writes in the time-series layout: its chunk, or when the
    cube is sharded a shard of such chunks (`cubes.sharding`)."""
    if plan.inner_chunk is None:
        return chunk
    itemsize = max(v.dtype.itemsize for v in full.data_vars.values())
    return timeseries_shard_side(chunk, full.sizes["time"], itemsize, plan.tile)


def _full_resolution(
    url: str, zarr_format: int, options: dict[str, Any] | None, chunks: dict[str, int]
) -> xr.Dataset:
    """Level 0 as written, raw (no CF decoding) and lazy; chunked as stored but along
    the dimensions in `chunks`."""
    return xr.open_zarr(
        url,
        group=FULL_RESOLUTION_GROUP,
        consolidated=False,
        zarr_format=zarr_format,
        mask_and_scale=False,
        chunks=chunks,
        storage_options=options,
    )


def time_batch(full: xr.Dataset, tile: int) -> int:
    """Time steps read and downsampled per task: as many tiles as fit in BATCH_BYTES (a
    cube with hundreds of steps would otherwise schedule thousands of tiny tasks)."""
    itemsize = max(v.dtype.itemsize for v in full.data_vars.values() if "time" in v.dims)
    steps = BATCH_BYTES // (tile * tile * itemsize)
    return int(max(1, min(full.sizes["time"], steps)))


def root_attrs(
    plan: PyramidPlan,
    grids: list[LevelGrid],
    global_attrs: Mapping[str, Any],
    dims: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """The root group's attributes: the cube's global CF attributes, the `multiscales`
    layout (its scales per axis of `dims`, the variables' shared dimensions, when they
    share them) and GeoZarr `proj:` / `spatial:` of the full resolution."""
    levels = [_level(grid, plan) for grid in grids]
    default = AVERAGE if AVERAGE in plan.resampling.values() or not plan.resampling else MODE
    attrs = {**global_attrs, **multiscales_attrs(levels, default, dims)}
    geo = _geo_attrs(plan.crs, grids[0])
    attrs["zarr_conventions"] = [MULTISCALES_CONVENTION, *geo.pop("zarr_conventions")]
    return {**attrs, **geo}


def shared_dims(dataset: xr.Dataset) -> tuple[str, ...] | None:
    """The dimensions every gridded data variable (one with y and x) has, in the same order;
    None when they differ. The grid mapping (`spatial_ref`, 0-d) is not gridded."""
    dims = {
        tuple(str(dim) for dim in variable.dims)
        for variable in dataset.data_vars.values()
        if {"y", "x"} <= set(variable.dims)
    }
    return dims.pop() if len(dims) == 1 else None


def _level(grid: LevelGrid, plan: PyramidPlan) -> Level:
    methods = set(plan.resampling.values())
    resampling = None if grid.index == 0 else (methods.pop() if len(methods) == 1 else None)
    return Level(level_path(grid.index), float(grid.factor), grid.shape, grid.transform, resampling)


def _geo_attrs(crs: CRS, grid: LevelGrid) -> dict[str, Any]:
    a, b, c, d, e, f = grid.transform
    height, width = grid.shape
    xs = sorted((c, c + a * width))
    ys = sorted((f, f + e * height))
    return {
        "zarr_conventions": [PROJ_CONVENTION, SPATIAL_CONVENTION],
        **proj_attrs(crs),
        "spatial:dimensions": ["y", "x"],
        "spatial:transform": list(grid.transform),
        "spatial:shape": [height, width],
        "spatial:bbox": [xs[0], ys[0], xs[1], ys[1]],
        "spatial:registration": "pixel",
    }


def proj_attrs(crs: CRS) -> dict[str, str]:
    """The CRS as the `proj:` convention states it: `proj:code` when the CRS has an EPSG
    code, else `proj:wkt2`; one of them only, since the convention's schema takes exactly
    one (`oneOf`), and none is ever null."""
    epsg = crs.to_epsg()
    return {"proj:code": f"EPSG:{epsg}"} if epsg is not None else {"proj:wkt2": crs.to_wkt()}


def _store(
    groups: Mapping[str, tuple[xr.Dataset, dict[str, Any]]],
    url: str,
    zarr_format: int,
    plan: PyramidPlan,
    options: dict[str, Any] | None,
) -> Any:
    """One delayed write of every group's data. xarray writes each group's metadata and
    coordinates now; the data goes through a single `dask.array.store`, because xarray's
    own delayed writes are optimised group by group, and each would then read and reduce
    the level-0 chunks again. The values are raw (read without CF decoding, nodata as its
    `_FillValue`), which is what xarray would have stored."""
    sources: list[Any] = []
    targets: list[Any] = []  # zarr arrays: what dask.array.store writes into
    for path, (dataset, inner) in groups.items():
        dataset.to_zarr(
            url,
            group=path,
            mode="w-",
            zarr_format=zarr_format,
            consolidated=False,
            compute=False,  # metadata and coordinates only; the data follows below
            encoding=layout_encoding(
                dataset, plan.derived_encoding, inner, ("time",) if path == TIMESERIES_GROUP else ()
            ),
            storage_options=options,
        )
        arrays = zarr.open_group(zarr_store(url), path=path, mode="r+", zarr_format=zarr_format)  # type: ignore[arg-type]
        for name, variable in dataset.data_vars.items():
            sources.append(variable.data)
            targets.append(FillSkippingTarget(arrays[str(name)]))
    stored = da.store(sources, targets, lock=False, compute=False)
    return stored if is_dask_collection(stored) else delayed(_stored)(list(stored))


class FillSkippingTarget:
    """A new zarr array that `dask.array.store` writes into, leaving out blocks that
    hold nothing but the fill value (which a missing chunk reads as anyway).

    zarr makes the same check itself (`write_empty_chunks=False`), but on its one I/O
    thread, with `numpy.array_equal(equal_nan=True)`: for a 39-step class map that check
    alone kept that thread busy for most of the pass while the workers waited. Here it
    is one comparison in the worker thread that computed the block, and zarr writes
    what remains without checking again. Only for arrays created empty by this pass:
    a skipped block keeps whatever the store held before."""

    def __init__(self, array: Any) -> None:
        self.array = array.with_config({"write_empty_chunks": True})
        self.fill = array.fill_value

    def __setitem__(self, key: Any, value: np.ndarray) -> None:
        if not _only_fill(value, self.fill):
            self.array[key] = value


def _only_fill(block: np.ndarray, fill: Any) -> bool:
    """Whether every value of `block` is `fill` (zarr's own rule: NaN equals a NaN fill,
    floats compare bit for bit otherwise, so -0.0 is not a fill of 0.0)."""
    if fill is None or not block.size:
        return fill is not None
    fill = np.asarray(fill, block.dtype)
    if block.dtype.kind == "f":
        if np.isnan(fill):
            return bool(np.isnan(block).all())
        bits = np.dtype(f"u{block.dtype.itemsize}")
        return bool((block.view(bits) == fill.view(bits)).all())
    return bool((block == fill).all())


def _stored(parts: list[Any]) -> int:
    return len(parts)


def _finish(
    url: str, zarr_format: int, attrs: dict[str, Any], levels: list[Level], timeseries: bool
) -> None:
    store = zarr_store(url)
    root = zarr.open_group(store, mode="a", zarr_format=zarr_format)  # type: ignore[arg-type]
    root.attrs.update(attrs)
    groups = [level.path for level in levels] + ([TIMESERIES_GROUP] if timeseries else [])
    for path in groups:
        zarr.consolidate_metadata(store, path=path, zarr_format=zarr_format)  # type: ignore[arg-type]
    zarr.consolidate_metadata(store, zarr_format=zarr_format)  # type: ignore[arg-type]


def zarr_store(url: str) -> Any:
    """A writable zarr store for `url`: the path itself for local folders, an fsspec
    store with the cube root's options for S3."""
    options = storage_options_for(url)
    if "://" not in url or url.startswith("file://"):
        return url.removeprefix("file://")
    from zarr.storage import FsspecStore

    return FsspecStore.from_url(url, storage_options=options or None, read_only=False)
