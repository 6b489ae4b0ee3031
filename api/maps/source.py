"""A cube store as a map source: each level's grid (affine transform, size) in the cube's
CRS and the Zarr group to read its chunks from.

Why Zarr directly: a tile reads one small window of one time step. Through xarray + dask
that is a task graph per tile (milliseconds of overhead before any byte is read); the Zarr
array's own basic selection reads exactly the chunks the window touches, and nothing else.
The xarray datasets of `api.cube_datasets.OpenCube` still give the coordinates, the
variables' dimensions and attributes.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr
import zarr
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import CRSError

from api.cube_datasets import OpenCube
from catalogue.cube_layout import Level
from catalogue.errors import NotFoundError

MAX_SOURCES = 32


@dataclass(frozen=True)
class LevelGrid:
    """One level: where its pixels are (`transform` maps pixel edges to the cube's CRS) and
    the Zarr group holding its variables."""

    level: Level
    group: zarr.Group
    transform: Affine
    height: int
    width: int
    # arrays opened once: looking one up in a group costs a trip through Zarr's event loop
    arrays: dict[str, zarr.Array] = field(default_factory=dict, compare=False, repr=False)

    def array(self, name: str) -> zarr.Array:
        """The Zarr array of variable `name` in this level."""
        array = self.arrays.get(name)
        if array is None:
            found = self.group[name]
            assert isinstance(found, zarr.Array), f"{name!r} is not an array"
            array = self.arrays.setdefault(name, found)
        return array

    @property
    def resolution(self) -> float:
        """The pixel size (the finer axis), in the cube CRS's units."""
        return min(abs(self.transform.a), abs(self.transform.e))


@dataclass(frozen=True)
class MapSource:
    """An opened cube store, ready for tiles: its levels finest first."""

    cube: OpenCube
    crs: CRS
    levels: tuple[LevelGrid, ...]

    @property
    def full(self) -> LevelGrid:
        return self.levels[0]

    @property
    def is_legacy(self) -> bool:
        """A store written before levels: one level, data at the root."""
        return len(self.levels) == 1 and self.levels[0].level.path == ""

    def bounds(self) -> tuple[float, float, float, float]:
        """The full resolution's outer pixel edges: (west, south, east, north)."""
        grid = self.full
        xs = (grid.transform.c, grid.transform.c + grid.width * grid.transform.a)
        ys = (grid.transform.f, grid.transform.f + grid.height * grid.transform.e)
        return min(xs), min(ys), max(xs), max(ys)


class MapSources:
    """MapSources by store URL, an LRU like `CubeDatasets` (a store version never changes)."""

    def __init__(self, max_open: int = MAX_SOURCES) -> None:
        self._max_open = max_open
        self._open: OrderedDict[str, MapSource] = OrderedDict()
        self._lock = threading.Lock()

    def cached(self, cube: OpenCube) -> MapSource | None:
        """The source of `cube` if it is open (never blocks)."""
        with self._lock:
            cached = self._open.get(cube.store)
            if cached is not None and cached.cube is cube:
                self._open.move_to_end(cube.store)
                return cached
        return None

    def source(self, cube: OpenCube) -> MapSource:
        """The map source of `cube` (blocking the first time: run it in a worker thread)."""
        source = self.cached(cube) or open_source(cube)
        with self._lock:
            self._open[cube.store] = source
            while len(self._open) > self._max_open:
                self._open.popitem(last=False)
        return source


def open_source(cube: OpenCube) -> MapSource:
    root = cube.root_group()
    crs = cube_crs(cube)
    grids: list[LevelGrid] = []
    for level, dataset in zip(cube.levels, cube.datasets, strict=True):
        group = root[level.path] if level.path else root
        assert isinstance(group, zarr.Group), f"{level.path!r} is not a group"
        height, width = dataset.sizes["y"], dataset.sizes["x"]
        grids.append(LevelGrid(level, group, _transform(dataset, level, grids), height, width))
    return MapSource(cube, crs, tuple(grids))


def cube_crs(cube: OpenCube) -> CRS:
    """The CRS of the cube's grid: its CF grid mapping, else the item's `proj:` fields."""
    dataset = cube.full_resolution
    candidates: list[Any] = []
    if "spatial_ref" in dataset.variables:
        attrs = dataset["spatial_ref"].attrs
        candidates += [attrs.get("crs_wkt"), attrs.get("spatial_ref")]
    properties = cube.item.get("properties") or {}
    candidates += [properties.get("proj:wkt2"), properties.get("proj:code")]
    for candidate in candidates:
        if not candidate:
            continue
        try:
            return CRS.from_user_input(candidate)
        except CRSError:
            continue
    raise NotFoundError(f"cube {cube.item.get('id')!r} has no readable CRS to map it with")


def _transform(dataset: xr.Dataset, level: Level, finer: list[LevelGrid]) -> Affine:
    """The level's affine from its pixel-centre coordinates (the level-0 step times the
    level's scale where an axis has a single pixel)."""
    xs = np.asarray(dataset["x"].values, dtype="float64")
    ys = np.asarray(dataset["y"].values, dtype="float64")
    base = finer[0].transform if finer else None
    dx = _step(xs, base.a * level.scale if base else None)
    dy = _step(ys, base.e * level.scale if base else None)
    return Affine(dx, 0.0, xs[0] - dx / 2, 0.0, dy, ys[0] - dy / 2)


def _step(values: np.ndarray, fallback: float | None) -> float:
    if values.size > 1:
        return float((values[-1] - values[0]) / (values.size - 1))
    if fallback is not None and math.isfinite(fallback):
        return fallback
    raise NotFoundError("a cube level with a single pixel and no finer level cannot be mapped")
