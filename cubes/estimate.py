"""What a build will write and roughly how long it takes, said before it starts.

A large cube runs for minutes to hours with little to see until its first chunks land; the
estimate lets its user stop a mistake early (a resolution in degrees given as metres, a
time range of a century). Size and chunk count are exact, from the lazy dataset; the
duration is rough: output values / (dask threads x `values_per_thread_s`), whose default
comes from bench/CUBES.md (the slowest kind of input measured there: bilinear warping of a
float32 EPSG:4326 time series, about 15 M values/s on 2 threads).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import xarray as xr

THROUGHPUT_SETTING = "CUBESTAC_CUBES__VALUES_PER_THREAD_S"


@dataclass(frozen=True)
class Estimate:
    width: int
    height: int
    steps: int  # time steps (1 without time)
    variables: int
    values: int
    nbytes: int  # uncompressed
    chunks: int  # Zarr chunks written
    seconds: float

    def describe(self, threads: int, values_per_thread_s: float) -> str:
        return (
            f"{self.width:,} x {self.height:,} px x {self.steps:,} time step(s) x "
            f"{self.variables} variable(s) = {_count(self.values)} values, "
            f"{_bytes(self.nbytes)} uncompressed, {self.chunks:,} chunks; "
            f"about {_duration(self.seconds)} on {threads} dask thread(s) at "
            f"{_count(values_per_thread_s)} values/s per thread ({THROUGHPUT_SETTING})"
        )


def estimate(
    dataset: xr.Dataset, tile_size: int, threads: int, values_per_thread_s: float
) -> Estimate:
    """Exact sizes of `dataset`'s data variables written in `tile_size` tiles (one time
    step per chunk), and the rough duration."""
    values = nbytes = chunks = 0
    for variable in dataset.data_vars.values():
        values += variable.size
        nbytes += variable.size * variable.dtype.itemsize
        chunks += math.prod(
            math.ceil(length / tile_size) if dim in ("x", "y") else length
            for dim, length in variable.sizes.items()
        )
    seconds = values / (max(threads, 1) * values_per_thread_s)
    return Estimate(
        width=dataset.sizes.get("x", 0),
        height=dataset.sizes.get("y", 0),
        steps=dataset.sizes.get("time", 1),
        variables=len(dataset.data_vars),
        values=values,
        nbytes=nbytes,
        chunks=chunks,
        seconds=seconds,
    )


def _count(value: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= size:
            return f"{value / size:.3g} {unit}"
    return f"{value:.0f}"


def _bytes(value: int) -> str:
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if value >= size:
            return f"{value / size:.3g} {unit}"
    return f"{value} B"


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{max(seconds, 1):.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
