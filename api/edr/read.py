"""Reading what an EDR query asks for from a cube's store: the layout to read, the time
steps and the values. Everything here blocks on chunk reads: callers run it in a worker
thread (`starlette.concurrency.run_in_threadpool`), never on the event loop.

Which layout: a point's series is read from the time-series layout when the cube has one
(one chunk per variable for a whole series, where the map layout costs one chunk per time
step); an area from whichever of the two reads fewer bytes for the polygon's window (the
chunks the window touches times their size). Dask runs each read with its synchronous
scheduler, passed to each `compute` (not set in dask's global config, which concurrent
requests would race on): the request already has its own worker thread, and the threads
of dask's pool would compete with the other requests' for the same cores.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import dask
import numpy as np
import pandas as pd
import xarray as xr

from api.cube_datasets import OpenCube
from api.cube_dimensions import dimension_index
from api.edr.grid import Window
from catalogue.errors import InvalidInputError
from catalogue.times import Interval, rfc3339

TIME = "time"
SPATIAL = ("y", "x")
MAP_LAYOUT = "map"
TIMESERIES_LAYOUT = "timeseries"
# values of one area read held in memory at once (float64: 8 bytes each)
BLOCK_VALUES = 4_000_000


@dataclass(frozen=True)
class Steps:
    """The time steps a query covers: `index` into the cube's time axis (None: the cube
    has no time axis) and their RFC 3339 labels."""

    index: slice | None
    labels: tuple[str, ...]

    @property
    def count(self) -> int:
        return max(1, len(self.labels))


@dataclass(frozen=True)
class AreaStats:
    """Per time step: mean, min and max of the valid pixels (NaN when none) and their
    count; `pixels` is how many pixel centres the polygon covers."""

    mean: np.ndarray
    min: np.ndarray
    max: np.ndarray
    count: np.ndarray
    pixels: int


def time_steps(dataset: xr.Dataset, interval: Interval | None, asked: str | None) -> Steps:
    """The steps within `interval` (all when None); a 400 when none is."""
    if TIME not in dataset.dims:
        return Steps(None, ())
    times = pd.DatetimeIndex(dataset[TIME].values)
    keep = np.ones(len(times), dtype=bool)
    if interval is not None and interval.start is not None:
        keep &= times >= _naive_utc(interval.start)
    if interval is not None and interval.end is not None:
        keep &= times <= _naive_utc(interval.end)
    found = np.flatnonzero(keep)
    if len(found) == 0:
        raise InvalidInputError(
            f"datetime: {asked} does not overlap the cube's time steps "
            f"({_label(times[0])} to {_label(times[-1])})"
        )
    index = slice(int(found[0]), int(found[-1]) + 1)
    return Steps(index, _labels(dataset[TIME].values[index]))


def selections(
    dataset: xr.Dataset, names: Sequence[str], query: Mapping[str, str]
) -> dict[str, int]:
    """The index along each other dimension (an ensemble `member`, a `band`) of the
    variables asked for: the value the query parameter of that dimension's name gives
    (a coordinate value, matched as text, or an index), else the first."""
    picks: dict[str, int] = {}
    for dim in dict.fromkeys(d for name in names for d in dataset[name].dims):
        if dim in SPATIAL or dim == TIME:
            continue
        picks[str(dim)] = dimension_index(dataset, str(dim), query.get(str(dim)))
    return picks


def selection_labels(dataset: xr.Dataset, picks: Mapping[str, int]) -> dict[str, Any]:
    """The coordinate value of each pick, for the answer to say what it holds."""
    return {dim: _coordinate_values(dataset, dim)[index] for dim, index in picks.items()}


def point_source(cube: OpenCube, names: Sequence[str]) -> tuple[xr.Dataset, str]:
    """The time-series layout when it has every variable asked for, else level 0."""
    series = cube.timeseries
    if series is not None and all(name in series.data_vars for name in names):
        return series, TIMESERIES_LAYOUT
    return cube.full_resolution, MAP_LAYOUT


def area_source(
    cube: OpenCube, names: Sequence[str], window: Window, steps: Steps
) -> tuple[xr.Dataset, str]:
    """The layout whose chunks under `window` weigh less (level 0 on a tie)."""
    level0 = cube.full_resolution
    series = cube.timeseries
    if series is None or not all(name in series.data_vars for name in names):
        return level0, MAP_LAYOUT
    cost = {
        layout: sum(chunk_bytes(dataset[name], window, steps) for name in names)
        for layout, dataset in ((MAP_LAYOUT, level0), (TIMESERIES_LAYOUT, series))
    }
    if cost[TIMESERIES_LAYOUT] < cost[MAP_LAYOUT]:
        return series, TIMESERIES_LAYOUT
    return level0, MAP_LAYOUT


def chunk_bytes(variable: xr.DataArray, window: Window, steps: Steps) -> int:
    """Bytes (uncompressed) of the stored chunks a read of `window` over `steps` touches."""
    chunks = variable.encoding.get("chunks") or variable.encoding.get("preferred_chunks")
    if isinstance(chunks, Mapping):
        chunks = tuple(chunks.get(d, variable.sizes[d]) for d in variable.dims)
    if not chunks:
        chunks = tuple(variable.sizes[d] for d in variable.dims)
    spans = {
        "y": (window.row0, window.row1),
        "x": (window.col0, window.col1),
        TIME: (steps.index.start, steps.index.stop) if steps.index else (0, 1),
    }
    touched = 1
    for dim, size in zip(variable.dims, chunks, strict=True):
        start, stop = spans.get(str(dim), (0, 1))
        touched *= (stop - 1) // size - start // size + 1
    return touched * math.prod(chunks) * variable.dtype.itemsize


def time_chunks(variable: xr.DataArray, steps: Steps) -> int:
    """How many stored chunks a read of one pixel of `variable` over `steps` touches: one
    per time chunk the steps fall in (the other dimensions are picked at one index)."""
    if TIME not in variable.dims or steps.index is None:
        return 1
    chunks = variable.encoding.get("chunks") or variable.encoding.get("preferred_chunks")
    if isinstance(chunks, Mapping):
        size = int(chunks.get(TIME, variable.sizes[TIME]))
    elif chunks:
        size = int(chunks[variable.dims.index(TIME)])
    else:
        size = variable.sizes[TIME]
    start, stop = steps.index.start or 0, steps.index.stop or variable.sizes[TIME]
    return (stop - 1) // size - start // size + 1 if stop > start else 0


def read_point(
    dataset: xr.Dataset,
    names: Sequence[str],
    pixel: tuple[int, int],
    steps: Steps,
    picks: Mapping[str, int],
    nodata: Mapping[str, Any],
) -> dict[str, np.ndarray]:
    """Each variable's values at `pixel` over `steps` (NaN where nodata)."""
    row, col = pixel
    lazy = [_indexed(dataset[name], {"y": row, "x": col}, steps, picks).data for name in names]
    values = dask.compute(*lazy, scheduler="synchronous")
    return {
        name: _masked(np.atleast_1d(np.asarray(value)), nodata.get(name))
        for name, value in zip(names, values, strict=True)
    }


def read_area(
    dataset: xr.Dataset,
    names: Sequence[str],
    window: Window,
    steps: Steps,
    picks: Mapping[str, int],
    nodata: Mapping[str, Any],
) -> dict[str, AreaStats]:
    """Each variable's statistics over the pixels `window.mask` covers, per time step,
    read in blocks of time steps that bound the memory one request holds."""
    space = {"y": slice(window.row0, window.row1), "x": slice(window.col0, window.col1)}
    block = max(1, BLOCK_VALUES // max(1, window.pixels))
    result = {}
    for name in names:
        parts = []
        for part in _blocks(steps, block):
            lazy = _indexed(dataset[name], space, part, picks).data
            values = np.asarray(dask.compute(lazy, scheduler="synchronous")[0])
            values = _masked(values.reshape(-1, *window.mask.shape), nodata.get(name))
            parts.append(_stats(values, window.mask))
        mean, low, high, count = (np.concatenate([p[i] for p in parts]) for i in range(4))
        result[name] = AreaStats(mean, low, high, count, pixels=int(window.mask.sum()))
    return result


def _stats(values: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, ...]:
    """mean, min, max, count of the non-NaN values under `mask`, per leading index."""
    inside = np.where(mask, values, np.nan)
    count = np.count_nonzero(~np.isnan(inside), axis=(1, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN steps give NaN: null
        return (
            np.nanmean(inside, axis=(1, 2)),
            np.nanmin(inside, axis=(1, 2)),
            np.nanmax(inside, axis=(1, 2)),
            count,
        )


def _blocks(steps: Steps, size: int) -> list[Steps]:
    if steps.index is None:
        return [steps]
    start, stop = steps.index.start, steps.index.stop
    return [
        Steps(slice(s, min(s + size, stop)), steps.labels[s - start : min(s + size, stop) - start])
        for s in range(start, stop, size)
    ]


def _indexed(
    array: xr.DataArray, space: Mapping[str, Any], steps: Steps, picks: Mapping[str, int]
) -> xr.Variable:
    """`array`'s values at `space` (and each pick), time first; a variable without time is
    repeated over the steps. On the bare Variable: a DataArray would slice its coordinate
    indexes too, which costs more than the read of a series' one chunk."""
    variable = array.variable
    indexers = {**space, **{d: i for d, i in picks.items() if d in variable.dims}}
    if steps.index is not None and TIME in variable.dims:
        indexers[TIME] = steps.index
    selected = variable.isel(indexers)
    if steps.index is not None and TIME not in selected.dims:
        selected = selected.set_dims((TIME, *selected.dims), (len(steps.labels), *selected.shape))
    return selected.transpose(*(d for d in (TIME, *SPATIAL) if d in selected.dims))


def _masked(values: np.ndarray, nodata: Any) -> np.ndarray:
    """As float64, with the variable's nodata (when it is a number) as NaN."""
    result = values.astype("float64")
    if isinstance(nodata, int | float) and not math.isnan(nodata):
        result[result == nodata] = np.nan
    return result


def _coordinate_values(dataset: xr.Dataset, dim: str) -> list[Any]:
    if dim in dataset.coords:
        return [v.item() if hasattr(v, "item") else v for v in dataset[dim].values]
    return list(range(dataset.sizes[dim]))


def _naive_utc(moment: Any) -> pd.Timestamp:
    return pd.Timestamp(moment).tz_convert("UTC").tz_localize(None)


def _labels(times: np.ndarray) -> tuple[str, ...]:
    """RFC 3339 labels to the second, in UTC (the cube's times are naive UTC)."""
    seconds = np.datetime_as_string(times.astype("datetime64[s]"), unit="s")
    return tuple(f"{text}Z" for text in seconds.tolist())


def _label(moment: Any) -> str:
    return rfc3339(pd.Timestamp(moment).to_pydatetime(warn=False), seconds=True)
