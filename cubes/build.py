"""Build one cube lazily: open -> user code -> regrid -> mosaic -> time range/aggregate.

Nothing here computes pixels: the result is a dask-backed dataset on the target grid whose
graph references files, chunk indices and geoboxes only (issue 5, "Compute": graphs never
carry array data). `cubes.write` then runs it.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from odc.geo.geobox import GeoBox
from odc.geo.xr import assign_crs

from cubes.aggregate import aggregate, select_range
from cubes.assets import pick_asset
from cubes.classes import flag_classes, item_classes
from cubes.errors import InputError, UserCodeError
from cubes.inputs import Nodata, OpenedItem, clean_attrs, normalise_nodata, open_item
from cubes.regrid import fill_value, mosaic, regrid, tile_chunks
from cubes.resolve import ResolvedInput
from cubes.spec import CubeSpec
from cubes.usercode import Hook, load_hook, run_hook

logger = logging.getLogger(__name__)


@dataclass
class Layer:
    """One output variable: data on the target grid, its nodata, where it came from and how
    it was resampled (`mode` marks classes; the item tells readers to keep them integers)."""

    data: xr.DataArray
    nodata: Nodata
    source: str
    resampling: str = "nearest"
    classes: list[dict[str, Any]] | None = None  # classification objects, when known


@dataclass
class BuiltCube:
    """The lazy cube and what the STAC item needs to know about its inputs."""

    layers: dict[str, Layer]
    item_times: list[datetime] = field(default_factory=list)


def build_cube(
    cube: CubeSpec, inputs: list[ResolvedInput], geobox: GeoBox, config_dir: Path | None
) -> BuiltCube:
    """All inputs onto `geobox`; variable names must be unique across inputs."""
    built = BuiltCube(layers={})
    for resolved in inputs:
        hook = None
        if resolved.spec.processing:
            hook = load_hook(resolved.spec.processing, config_dir, cube.id, resolved.label)
        layers, times = _build_input(cube, resolved, geobox, hook)
        for name, layer in layers.items():
            if name in built.layers:
                raise InputError(
                    f"variable {name!r} is also produced by {built.layers[name].source}; "
                    "select or rename variables so that names are unique",
                    cube=cube.id,
                    where=resolved.label,
                )
            built.layers[name] = layer
        built.item_times.extend(times)
    _align_time(built)
    return built


def _build_input(
    cube: CubeSpec, resolved: ResolvedInput, geobox: GeoBox, hook: Hook | None
) -> tuple[dict[str, Layer], list[datetime]]:
    label = resolved.label
    opened = [open_item(item, resolved.spec, cube.id, label) for item in resolved.items]
    if hook is not None:
        opened = [_apply_hook(hook, resolved, item, cube.id) for item in opened]
    if resolved.spec.rename:
        opened = [_renamed(item, resolved.spec.rename, cube.id, label) for item in opened]
    names = _common_variables(opened, cube.id, label)
    stamp_items = not _has_time(opened) and len({item.when for item in opened}) > 1
    layers: dict[str, Layer] = {}
    for name in names:
        per_item = [_regridded(item, name, resolved, geobox, cube, stamp_items) for item in opened]
        nodata = opened[0].nodata[name]
        data = _mosaic_items(per_item, nodata)
        data, nodata = _time(data, nodata, cube, label, name)
        attrs = opened[0].dataset[name].attrs
        classes = _classes(resolved, attrs, name, cube.id) if data.dtype.kind in "iu" else None
        layers[name] = Layer(data, nodata, label, resolved.spec.resampling, classes)
    return layers, [item.when for item in opened]


def _classes(
    resolved: ResolvedInput, attrs: dict[Any, Any], name: str, cube: str
) -> list[dict[str, Any]] | None:
    """What the input says about the variable's classes: its (newest) item's
    classification extension, else the file's CF flags (`cubes.classes`)."""
    item = resolved.items[0]
    ref = pick_asset(item, resolved.spec.asset, cube, resolved.label)
    original = next((k for k, v in (resolved.spec.rename or {}).items() if v == name), name)
    return item_classes(item, ref.fields, original) or flag_classes(attrs)


def _apply_hook(hook: Hook, resolved: ResolvedInput, item: OpenedItem, cube: str) -> OpenedItem:
    """Run user code; keep the CRS and nodata the code did not state otherwise."""
    reference = resolved.spec.processing or ""
    where = f"{resolved.label}, item {item.item_id!r}"
    result = run_hook(hook, reference, item.dataset, cube, where)
    nodata: dict[str, Nodata] = {}
    variables = {}
    for name, variable in result.data_vars.items():
        if not {"y", "x"} <= set(variable.dims):
            raise UserCodeError(
                f"processing {reference!r} returned variable {name!r} with dims "
                f"{tuple(variable.dims)}, without both y and x",
                cube=cube,
                where=where,
            )
        nodata[str(name)] = _hook_nodata(variable, item.nodata.get(str(name)), resolved)
        variables[name] = _reordered(variable)
    if not variables:
        raise UserCodeError(
            f"processing {reference!r} returned a dataset without data variables",
            cube=cube,
            where=where,
        )
    dataset = xr.Dataset(variables)
    if dataset.odc.crs is None:
        dataset = assign_crs(dataset, item.crs)
    return OpenedItem(item.item_id, item.when, dataset, nodata, item.crs)


def _renamed(item: OpenedItem, rename: dict[str, str], cube: str, label: str) -> OpenedItem:
    unknown = sorted(set(rename) - set(map(str, item.dataset.data_vars)))
    if unknown:
        raise InputError(
            f"rename: no variable {', '.join(map(repr, unknown))} in item {item.item_id!r}",
            cube=cube,
            where=label,
        )
    nodata = {rename.get(name, name): value for name, value in item.nodata.items()}
    return OpenedItem(item.item_id, item.when, item.dataset.rename(rename), nodata, item.crs)


def _hook_nodata(variable: xr.DataArray, before: Nodata, resolved: ResolvedInput) -> Nodata:
    stated = variable.attrs.get("_FillValue", variable.attrs.get("nodata"))
    if stated is None:
        stated = resolved.spec.nodata if resolved.spec.nodata is not None else before
    return normalise_nodata(stated, variable.dtype)


def _reordered(variable: xr.DataArray) -> xr.DataArray:
    others = [d for d in variable.dims if d not in ("time", "y", "x")]
    order = (["time"] if "time" in variable.dims else []) + others + ["y", "x"]
    variable = variable.transpose(*order)
    variable.attrs = clean_attrs(variable.attrs)
    return variable


def _common_variables(opened: list[OpenedItem], cube: str, label: str) -> list[str]:
    names = list(opened[0].dataset.data_vars)
    for item in opened[1:]:
        if set(item.dataset.data_vars) != set(names):
            raise InputError(
                f"item {item.item_id!r} has variables {sorted(map(str, item.dataset.data_vars))},"
                f" item {opened[0].item_id!r} has {sorted(map(str, names))}",
                cube=cube,
                where=label,
            )
    return [str(name) for name in names]


def _has_time(opened: list[OpenedItem]) -> bool:
    return any("time" in item.dataset.dims for item in opened)


def _regridded(
    item: OpenedItem,
    name: str,
    resolved: ResolvedInput,
    geobox: GeoBox,
    cube: CubeSpec,
    stamp: bool,
) -> xr.DataArray:
    variable = item.dataset[name]
    if variable.odc.crs is None:
        variable = assign_crs(variable, item.crs)
    try:
        out = regrid(
            variable, item.nodata[name], geobox, resolved.spec.resampling, cube.grid.tile_size
        )
    except (ValueError, RuntimeError) as error:
        raise InputError(
            f"cannot regrid variable {name!r}: {error}",
            cube=cube.id,
            where=f"{resolved.label}, item {item.item_id!r}",
        ) from error
    if stamp:
        out = out.expand_dims(time=[_naive_utc(item.when)])
    return out


def _naive_utc(moment: datetime) -> np.datetime64:
    return np.datetime64(pd.Timestamp(moment).tz_convert("UTC").tz_localize(None), "ns")


def _mosaic_items(layers: list[xr.DataArray], nodata: Nodata) -> xr.DataArray:
    """Items are newest first; with time, items are mosaicked per time step."""
    if len(layers) == 1:
        return layers[0]
    if "time" not in layers[0].dims:
        return mosaic(layers, nodata)
    steps: dict[np.datetime64, list[xr.DataArray]] = {}
    for layer in layers:
        for index, moment in enumerate(layer["time"].values):
            steps.setdefault(moment, []).append(layer.isel(time=[index]))
    return xr.concat([mosaic(steps[t], nodata) for t in sorted(steps)], dim="time")


def _time(
    data: xr.DataArray, nodata: Nodata, cube: CubeSpec, label: str, name: str
) -> tuple[xr.DataArray, Nodata]:
    if "time" not in data.dims or cube.time is None:
        return data, nodata
    start, end = cube.time.bounds
    data = select_range(data, start, end)
    if data.sizes["time"] == 0:
        raise InputError(
            f"variable {name!r} has no time step within {start} .. {end}",
            cube=cube.id,
            where=label,
        )
    if cube.time.period:
        data, nodata = aggregate(data, nodata, cube.time.period, cube.time.method)
    return data.chunk(tile_chunks(data, cube.grid.tile_size)), nodata


def _align_time(built: BuiltCube) -> None:
    """Variables from different inputs share one time axis; a variable lacking a step is
    filled with its nodata there (reindexing with NaN would turn integers into floats)."""
    timed = [layer for layer in built.layers.values() if "time" in layer.data.dims]
    if len(timed) < 2:
        return
    union: np.ndarray = np.unique(np.concatenate([layer.data["time"].values for layer in timed]))
    for layer in timed:
        if not np.array_equal(layer.data["time"].values, union):
            fill = fill_value(layer.data, layer.nodata)
            if isinstance(fill, float) and math.isnan(fill) and layer.data.dtype.kind != "f":
                fill = 0
            reindexed = layer.data.reindex(time=union, fill_value=fill)
            layer.data = reindexed.chunk({"time": 1})
