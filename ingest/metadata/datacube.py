"""NetCDF and Zarr metadata: the datacube extension (xstac) plus `proj:` fields (rioxarray).

Only metadata and coordinates are read (xarray opens lazily; remote NetCDF-4 through fsspec
byte ranges, Zarr through its store). The result is plain data, so building the item from
it stays pure.
"""

from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import rioxarray  # noqa: F401 - registers the `.rio` accessor
import xarray as xr
from fsspec.spec import AbstractFileSystem
from pyproj import CRS
from pyproj.exceptions import CRSError
from rasterio.warp import transform_bounds
from xstac import xarray_to_stac

from catalogue import dataset_grid
from catalogue.dataset_grid import SPATIAL_HELP, WGS84, SpatialDims, file_crs, is_lat_lon
from catalogue.extensions import stac_data_type
from catalogue.projection import crs_fields
from catalogue.times import as_utc

TEMPLATE: dict[str, Any] = {
    "type": "Feature",
    "stac_version": "1.1.0",
    "id": "template",
    "geometry": None,
    "properties": {"datetime": "2000-01-01T00:00:00Z"},
    "links": [],
    "assets": {},
}
# netCDF4 and HDF5 are not thread-safe: two files opened at once from the ingest's threads
# crash the process (SIGSEGV/SIGBUS). One process-wide lock around every NetCDF read; the
# reads are metadata only, so little is lost, and GeoTIFF and Zarr reads stay parallel.
NETCDF_LOCK = threading.Lock()


class CubeMetadataError(ValueError):
    """A dataset whose layout cannot be described (no spatial dimensions, no CRS ...)."""


@dataclass(frozen=True)
class CubeInfo:
    """What a NetCDF file or Zarr store says about itself, ready to be put into an item."""

    dimensions: dict[str, Any]
    variables: dict[str, Any]
    projection: dict[str, Any]
    bbox: list[float]
    time_range: tuple[datetime, datetime] | None
    attributes: dict[str, str]
    zarr: dict[str, Any] | None = None


def read_netcdf(filesystem: AbstractFileSystem, path: str, local: bool) -> CubeInfo:
    """Metadata of a NetCDF file, read under `NETCDF_LOCK` (any number of threads may call)."""
    with NETCDF_LOCK:
        return _read_netcdf(filesystem, path, local)


def _read_netcdf(filesystem: AbstractFileSystem, path: str, local: bool) -> CubeInfo:
    if local:
        with xr.open_dataset(path, decode_coords="all") as dataset:
            return describe(dataset)
    with filesystem.open(path, "rb") as handle:
        with xr.open_dataset(handle, engine="h5netcdf", decode_coords="all") as dataset:
            return describe(dataset)


def zarr_layout(filesystem: AbstractFileSystem, path: str) -> dict[str, Any]:
    """Zarr format and whether the metadata is consolidated, from the files in the store
    (for Zarr 3, from the root `zarr.json`: its `consolidated_metadata`, and whether it is
    a group -- an array alone is no dataset)."""
    names = {entry.rsplit("/", 1)[-1] for entry in filesystem.ls(path, detail=False)}
    if "zarr.json" in names:
        root = json.loads(filesystem.cat_file(f"{path.rstrip('/')}/zarr.json"))
        if root.get("node_type") != "group":
            raise CubeMetadataError("a Zarr array, not a group: there is no dataset to describe")
        consolidated = isinstance(root.get("consolidated_metadata"), dict)
        return {"zarr_format": 3, "consolidated": consolidated, "metadata": "zarr.json"}
    if ".zmetadata" in names:
        return {"zarr_format": 2, "consolidated": True, "metadata": ".zmetadata"}
    if ".zgroup" in names:
        return {"zarr_format": 2, "consolidated": False, "metadata": ".zgroup"}
    raise CubeMetadataError("not a Zarr group (no zarr.json, .zmetadata or .zgroup)")


def read_zarr(filesystem: AbstractFileSystem, path: str) -> CubeInfo:
    layout = zarr_layout(filesystem, path)
    store = filesystem.get_mapper(path)
    with xr.open_zarr(
        store,
        consolidated=layout["consolidated"],
        zarr_format=layout["zarr_format"],
        decode_coords="all",
    ) as dataset:
        info = describe(dataset)
    zarr = {"zarr_format": layout["zarr_format"], "consolidated": layout["consolidated"]}
    return CubeInfo(**{**info.__dict__, "zarr": zarr})


def describe(dataset: xr.Dataset) -> CubeInfo:
    x_dim, y_dim = _spatial_dims(dataset)
    crs = _crs(dataset, x_dim, y_dim)
    found_time = dataset_grid.time_dim(dataset)
    time_dim = None if found_time is None else str(found_time)
    reference: int | str = crs.to_epsg() or crs.to_wkt()
    described = xarray_to_stac(
        dataset,
        TEMPLATE,
        temporal_dimension=time_dim or False,
        x_dimension=x_dim,
        y_dimension=y_dim,
        reference_system=reference,
        validate=False,
    )
    grid = dataset.rio.set_spatial_dims(x_dim=x_dim, y_dim=y_dim)
    bounds = grid.rio.bounds()
    west, south, east, north = transform_bounds(crs, "EPSG:4326", *bounds, densify_pts=21)
    return CubeInfo(
        dimensions=_plain(described.properties["cube:dimensions"]),
        variables=_variables(dataset, described.properties["cube:variables"]),
        projection=_projection(crs, grid, bounds),
        bbox=[round(value, 7) for value in (west, south, east, north)],
        time_range=_time_range(dataset, time_dim),
        attributes={key: str(value) for key, value in dataset.attrs.items()},
    )


def _spatial_dims(dataset: xr.Dataset) -> tuple[str, str]:
    dims = dataset_grid.spatial_dims(dataset)
    if dims is None:
        names = ", ".join(sorted(map(str, dataset.dims)))
        raise CubeMetadataError(f"no spatial dimensions ({SPATIAL_HELP}) among: {names}")
    return str(dims.x), str(dims.y)


def _crs(dataset: xr.Dataset, x_dim: str, y_dim: str) -> CRS:
    found = file_crs(dataset)
    if found is None and is_lat_lon(dataset, SpatialDims(y_dim, x_dim)):
        found = WGS84  # CF: lon/lat coordinates without a grid mapping
    if found is None:
        raise CubeMetadataError("no coordinate reference system (no grid_mapping / spatial_ref)")
    try:
        return CRS.from_user_input(found)
    except CRSError as error:
        raise CubeMetadataError(f"unknown CRS {found[:80]!r}: {error}") from error


def _time_range(dataset: xr.Dataset, time_dim: str | None) -> tuple[datetime, datetime] | None:
    if time_dim is None:
        return None
    values = dataset.coords[time_dim].values
    if values.size == 0:
        return None
    if np.issubdtype(values.dtype, np.datetime64):
        stamps = pd.to_datetime(values)
        return (as_utc(stamps.min().to_pydatetime()), as_utc(stamps.max().to_pydatetime()))
    moments = sorted(datetime.fromisoformat(value.isoformat()) for value in values.flat)
    return as_utc(moments[0]), as_utc(moments[-1])


def _projection(crs: CRS, grid: xr.Dataset, bounds: tuple[float, ...]) -> dict[str, Any]:
    epsg = crs.to_epsg()
    fields = crs_fields(epsg, None if epsg else crs.to_wkt())
    height, width = grid.rio.shape
    fields["proj:shape"] = [int(height), int(width)]
    fields["proj:bbox"] = [float(value) for value in bounds]
    fields["proj:transform"] = [float(value) for value in list(grid.rio.transform())[:6]]
    return fields


def _variables(dataset: xr.Dataset, described: dict[str, Any]) -> dict[str, Any]:
    """xstac's variables, trimmed to the extension's fields, with `data_type` and `nodata`."""
    variables: dict[str, Any] = {}
    for name, variable in described.items():
        kept = {
            key: _plain(value)
            for key, value in variable.items()
            if key in ("type", "description", "dimensions", "unit", "shape")
        }
        source = dataset.variables[name]
        kept["data_type"] = stac_data_type(str(source.dtype))
        fill = source.encoding.get("_FillValue", source.attrs.get("_FillValue"))
        nodata = _nodata(fill)
        if nodata is not None:
            kept["nodata"] = nodata
        variables[name] = kept
    return variables


def _nodata(fill: Any) -> float | int | str | None:
    if fill is None:
        return None
    value = np.asarray(fill).item()
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
    return value if isinstance(value, int | float) else None


def _plain(value: Any) -> Any:
    """JSON-ready copies of what xstac returns (numpy scalars become Python numbers)."""
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
