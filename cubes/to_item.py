"""The STAC item of a cube (DESIGN.md, "What a cube item looks like").

xstac builds the datacube part from the dataset -- spatial dimensions with extent, step and
`reference_system`, the temporal extent, one entry per variable -- and we complete what it
leaves out or writes for older versions of the extension: datacube v2.3.0 (`nodata`,
`data_type`), temporal `step` as an ISO 8601 duration or else `values`, additional
dimensions (ensemble members, bands), the `proj:` fields and the `zarr` asset.

Extents of x/y are those of the coordinates, i.e. of pixel centres, consistent with the
dimension's `step`; `proj:bbox` gives the outer pixel edges.

Asset hrefs. On S3 the href is the store's `s3://` URL, which `xr.open_zarr` opens with
`xarray:storage_options` (endpoint, `anon`; never credentials), and which the storage
extension describes as well (`storage:refs` to a scheme in `storage:schemes`, see
`catalogue.storage_extension`); with
`CUBESTAC_CUBE_PUBLIC_BASE` the API hands out the bucket's HTTP URL instead, the same prefix
swap as below (`catalogue.serializers.CubeHrefs`). On a local cube root the href is the
store's absolute path on this machine, with no `file://` scheme: `xr.open_zarr(href)` works
as is for anyone on the machine, and the API -- which serves the cube root under
`<CUBESTAC_PUBLIC_URL>/cubes/` -- turns it into a URL by taking the part after
`CUBESTAC_CUBE_ROOT`, which is always `<collection>/<cube id>/<version>.zarr` (see
`cubes.write`). Storing the plain path keeps the catalogue correct if the public URL
changes, and keeps the rule one prefix swap.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
import xstac
from odc.geo.geobox import GeoBox

from catalogue.cube_layout import (
    DATA_ASSET,
    FULL_RESOLUTION_GROUP,
    PYRAMID_ASSET,
    TIMESERIES_ASSET,
    TIMESERIES_GROUP,
    group_url,
)
from catalogue.extensions import (
    DATACUBE_EXTENSION,
    XARRAY_EXTENSION,
    ZARR_EXTENSION,
    stac_data_type,
)
from catalogue.projection import PROJECTION_V2_EXTENSION
from catalogue.storage_extension import S3Access, add_storage_fields, environment_region
from catalogue.times import rfc3339
from cubes.aggregate import iso_duration, period_end
from cubes.build import BuiltCube
from cubes.grid import wgs84_footprint
from cubes.icechunk_item import icechunk_assets
from cubes.pyramid import Pyramid
from cubes.sharding import read_chunks
from cubes.spec import CubeSpec

# no `; version=2|3` parameter (STAC's draft Zarr best practices): xpystac 0.5 matches the
# media type exactly and opens nothing else; `zarr:zarr_format` states the format
MEDIA_TYPE = "application/vnd.zarr"
# xarray-assets (archived) is still declared: its fields are written (xpystac reads them)
EXTENSIONS = [DATACUBE_EXTENSION, PROJECTION_V2_EXTENSION, ZARR_EXTENSION, XARRAY_EXTENSION]
MAX_TIME_VALUES = 10_000
CF_FLAGS = ("flag_values", "flag_meanings", "flag_masks")
CLASSIFICATION_EXTENSION = "https://stac-extensions.github.io/classification/v2.0.0/schema.json"


def cube_item(
    dataset: xr.Dataset,
    built: BuiltCube,
    cube: CubeSpec,
    geobox: GeoBox,
    store: str,
    storage_options: dict[str, Any],
    pyramid: Pyramid,
) -> dict[str, Any]:
    """A STAC 1.1 item (dict) for the cube written at `store` (a store with levels)."""
    geometry, bbox = wgs84_footprint(geobox)
    template = {
        "type": "Feature",
        "stac_version": "1.1.0",
        "stac_extensions": [],
        "id": cube.id,
        "collection": cube.collection,
        "geometry": geometry,
        "bbox": list(bbox),
        "properties": {**_datetimes(dataset, built, cube), **_descriptive(cube)},
        "assets": {},
        "links": [],
    }
    has_time = "time" in dataset.dims
    stac = xstac.xarray_to_stac(
        dataset,
        template,
        temporal_dimension="time" if has_time else False,
        temporal_step=False,
        x_dimension="x",
        y_dimension="y",
        x_step=float(geobox.transform.a),  # exact, where coordinate differences carry noise
        y_step=float(geobox.transform.e),
        reference_system=reference_system(geobox),
        validate=False,
        **_additional_dimensions(dataset),
    )
    item = stac.to_dict(include_self_link=False, transform_hrefs=False)
    properties = item["properties"]
    if has_time:
        properties["cube:dimensions"]["time"].update(_time_axis(dataset, cube))
    properties["cube:variables"] = _variables(dataset, built, properties["cube:variables"])
    properties.update(_projection(geobox))
    item["stac_extensions"] = list(EXTENSIONS)
    categorical = categorical_variables(dataset, built)
    if cube.store == "icechunk":  # `store` is the cube's repository
        item["assets"] = icechunk_assets(cube, store, storage_options, categorical, pyramid)
    else:
        item["assets"] = cube_assets(cube, store, storage_options, categorical, pyramid)
    if any(layer.classes for layer in built.layers.values()):
        item["stac_extensions"].append(CLASSIFICATION_EXTENSION)
    add_storage_fields(item, S3Access.from_options(storage_options, environment_region()))
    item["links"] = []
    return item


def cube_assets(
    cube: CubeSpec,
    store: str,
    storage_options: dict[str, Any],
    categorical: list[str],
    pyramid: Pyramid,
) -> dict[str, dict[str, Any]]:
    """`zarr` (the full resolution, as before levels existed), `zarr-multiscales` (the store
    root: every level) and, with the time-series layout, `zarr-timeseries`."""
    title = cube.title or cube.id
    full = zarr_asset(cube, group_url(store, FULL_RESOLUTION_GROUP), storage_options, categorical)
    pyramid_asset = {
        **zarr_asset(cube, store, storage_options, categorical),
        "title": f"{title}: every resolution level (Zarr format {cube.zarr_format})",
        "description": "The whole store, a GeoZarr `multiscales` group: level k (group "
        "`k/`) is the full resolution (`0/`) downsampled by 2**k, down to one tile "
        "(categorical variables by mode, the others by average of valid pixels). Open all "
        "levels with `xarray.open_datatree(href, engine='zarr', **xarray:open_kwargs)`, one "
        "with `xarray.open_zarr(href + '/<k>', ...)`; GDAL >= 3.13 lists them as overviews.",
        "roles": ["data", "overview"],
        "multiscales": _levels(pyramid),
    }
    assets = {DATA_ASSET: full, PYRAMID_ASSET: pyramid_asset}
    for asset in assets.values():  # a sharded store: a dask chunk per shard
        asset["xarray:open_kwargs"]["chunks"] = read_chunks(pyramid.shard_sides.get("map"))
    if pyramid.timeseries_chunk is not None:
        href = group_url(store, TIMESERIES_GROUP)
        series = zarr_asset(cube, href, storage_options, categorical)
        series["xarray:open_kwargs"]["chunks"] = read_chunks(pyramid.shard_sides.get("timeseries"))
        assets[TIMESERIES_ASSET] = {
            **series,
            "title": f"{title}: time-series layout (Zarr format {cube.zarr_format})",
            "description": "The full resolution again, each chunk holding the whole time "
            f"axis of {pyramid.timeseries_chunk} x {pyramid.timeseries_chunk} pixels: read "
            "a pixel's time series from here (one chunk per variable), maps from `zarr`.",
            "roles": ["data", "timeseries"],
        }
    return assets


def _levels(pyramid: Pyramid) -> dict[str, Any]:
    """The levels as the item states them: group path, scale, shape and transform of each,
    and each variable's resampling."""
    return {
        "levels": [
            {
                "path": level.path,
                "scale": level.scale,
                "shape": list(level.shape or ()),
                "transform": list(level.transform or ()),
            }
            for level in pyramid.levels
        ],
        "resampling": dict(pyramid.resampling),
    }


def categorical_variables(dataset: xr.Dataset, built: BuiltCube) -> list[str]:
    """Integer variables holding classes: CF flags (`flag_values`/`flag_meanings`/
    `flag_masks`), or an input resampled with `mode`. Their `_FillValue` is a class code,
    not a gap to turn into NaN (which would make them float)."""
    names = []
    for name, layer in built.layers.items():
        variable = dataset[name]
        if variable.dtype.kind not in "iu":
            continue
        if layer.resampling == "mode" or any(key in variable.attrs for key in CF_FLAGS):
            names.append(name)
    return sorted(names)


def zarr_asset(
    cube: CubeSpec, href: str, storage_options: dict[str, Any], categorical: list[str]
) -> dict[str, Any]:
    """The asset readers open the cube with. `mask_and_scale` is per variable (xarray reads
    a mapping; names left out are decoded): categorical ones keep their stored integers,
    the others have nodata masked to NaN.

    Every field of the zarr extension v1.1.0 (`zarr:zarr_format`, `zarr:consolidated`,
    `zarr:node_type`: each store and level is a group). `xarray:open_kwargs` and
    `xarray:storage_options` (the archived xarray-assets extension) stay, because xpystac
    0.5 -- `xr.open_dataset(asset, engine="stac")` -- still reads them: the storage options
    are how it reaches an S3 endpoint that is not AWS, which it does not take from
    `storage:schemes`."""
    open_kwargs: dict[str, Any] = {
        "consolidated": True,
        "zarr_format": cube.zarr_format,
        "chunks": {},
    }
    if categorical:
        open_kwargs["mask_and_scale"] = {name: False for name in categorical}
    return {
        "href": href,
        "type": MEDIA_TYPE,
        "title": f"{cube.title or cube.id} (Zarr format {cube.zarr_format})",
        "roles": ["data"],
        "zarr:consolidated": True,
        "zarr:zarr_format": cube.zarr_format,
        "zarr:node_type": "group",
        "xarray:open_kwargs": open_kwargs,
        "xarray:storage_options": dict(storage_options),
    }  # fmt: skip


def reference_system(geobox: GeoBox) -> int | dict[str, Any]:
    """An EPSG code when the CRS has one, else PROJJSON (both allowed by datacube v2.3.0)."""
    crs = geobox.crs
    assert crs is not None
    return crs.epsg if crs.epsg is not None else crs.proj.to_json_dict()


def _descriptive(cube: CubeSpec) -> dict[str, Any]:
    fields: dict[str, Any] = {"created": _now()}
    if cube.title:
        fields["title"] = cube.title
    if cube.description:
        fields["description"] = cube.description
    return fields


def _datetimes(dataset: xr.Dataset, built: BuiltCube, cube: CubeSpec) -> dict[str, Any]:
    """The time the data covers: its time axis (whole last period when aggregated), else
    the span of the input items' datetimes."""
    if "time" in dataset.dims:
        times = pd.to_datetime(dataset["time"].values)
        start, end = times.min().to_pydatetime(), times.max().to_pydatetime()
        if cube.time is not None and cube.time.period:
            end = period_end(end, cube.time.period)
        start, end = start.replace(tzinfo=UTC), end.replace(tzinfo=UTC)
    else:
        start, end = min(built.item_times), max(built.item_times)
    if start == end:
        return {"datetime": _iso(start)}
    return {"datetime": None, "start_datetime": _iso(start), "end_datetime": _iso(end)}


def _time_axis(dataset: xr.Dataset, cube: CubeSpec) -> dict[str, Any]:
    """`step` for aggregated (regular) axes; otherwise the `values` themselves."""
    if cube.time is not None and cube.time.period and dataset.sizes["time"] > 1:
        return {"step": iso_duration(cube.time.period)}
    values = [_iso(t) for t in pd.to_datetime(dataset["time"].values)[:MAX_TIME_VALUES]]
    return {"values": values}


def _additional_dimensions(dataset: xr.Dataset) -> dict[str, dict[str, Any]]:
    dims: dict[str, dict[str, Any]] = {}
    for dim in dataset.dims:
        if dim in ("time", "y", "x"):
            continue
        values = (
            dataset[dim].values.tolist()
            if dim in dataset.coords
            else list(range(dataset.sizes[dim]))
        )
        entry: dict[str, Any] = {"type": "bands" if dim in ("band", "bands") else "other"}
        entry["values"] = [v if isinstance(v, int | float | str) else str(v) for v in values]
        if all(isinstance(v, int | float) for v in entry["values"]):
            entry["extent"] = [min(entry["values"]), max(entry["values"])]
        dims[str(dim)] = entry
    return dims


def _variables(
    dataset: xr.Dataset, built: BuiltCube, from_xstac: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Data variables only (the grid mapping is not one), with datacube v2.3.0 fields."""
    result = {}
    for name, layer in built.layers.items():
        base = from_xstac.get(name, {})
        variable = dataset[name]
        entry: dict[str, Any] = {
            "dimensions": [str(d) for d in variable.dims],
            "type": "data",
            "data_type": stac_data_type(variable.dtype.name),
        }
        description = base.get("description") or variable.attrs.get("long_name")
        if description:
            entry["description"] = str(description)
        if base.get("unit"):
            entry["unit"] = str(base["unit"])
        if layer.nodata is not None:
            entry["nodata"] = "nan" if _is_nan(layer.nodata) else layer.nodata
        if layer.classes:
            entry["classification:classes"] = [dict(c) for c in layer.classes]
        result[name] = entry
    return result


def _projection(geobox: GeoBox) -> dict[str, Any]:
    crs = geobox.crs
    assert crs is not None
    height, width = geobox.shape.yx
    t = geobox.transform
    west, east = sorted((t.c, t.c + width * t.a))
    south, north = sorted((t.f, t.f + height * t.e))
    fields: dict[str, Any] = {
        "proj:code": f"EPSG:{crs.epsg}" if crs.epsg is not None else None,
        "proj:shape": [height, width],
        "proj:transform": [t.a, t.b, t.c, t.d, t.e, t.f],
        "proj:bbox": [west, south, east, north],
    }
    if crs.epsg is None:
        fields["proj:wkt2"] = crs.wkt
    return fields


def _is_nan(value: float | int) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _iso(moment: datetime | np.datetime64 | pd.Timestamp) -> str:
    return rfc3339(pd.Timestamp(moment).to_pydatetime(warn=False), seconds=True)


def _now() -> str:
    return rfc3339(datetime.now(UTC), seconds=True)
