"""NetCDF and Zarr metadata: the datacube extension (xstac) plus `proj:` fields (rioxarray).

Only metadata and coordinates are read (xarray opens lazily; remote NetCDF-4 through fsspec
byte ranges, Zarr through its store). The result is plain data, so building the item from
it stays pure.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import rioxarray  # noqa: F401 - registers the `.rio` accessor
import xarray as xr
from fsspec.spec import AbstractFileSystem
from pyproj import CRS
from rasterio.warp import transform_bounds
from xstac import xarray_to_stac

from catalogue.projection import crs_fields

DATACUBE_EXTENSION = "https://stac-extensions.github.io/datacube/v2.3.0/schema.json"
ZARR_EXTENSION = "https://stac-extensions.github.io/zarr/v1.1.0/schema.json"
XARRAY_EXTENSION = "https://stac-extensions.github.io/xarray-assets/v1.0.0/schema.json"
STAC_DATA_TYPES = frozenset(
    {"int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"}
    | {"float16", "float32", "float64", "cint16", "cint32", "cfloat32", "cfloat64"}
)
GEOGRAPHIC_DIMS = ({"lon", "longitude"}, {"lat", "latitude"})
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
    """Zarr format and whether the metadata is consolidated, from the files in the store."""
    names = {entry.rsplit("/", 1)[-1] for entry in filesystem.ls(path, detail=False)}
    if "zarr.json" in names:
        return {"zarr_format": 3, "consolidated": False, "metadata": "zarr.json"}
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
    time_dim = _time_dim(dataset)
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
    dims = set(dataset.dims)
    for x_names, y_names in (({"x"}, {"y"}), GEOGRAPHIC_DIMS):
        x_dim = next((name for name in dims if str(name).lower() in x_names), None)
        y_dim = next((name for name in dims if str(name).lower() in y_names), None)
        if x_dim is not None and y_dim is not None:
            return str(x_dim), str(y_dim)
    names = ", ".join(sorted(map(str, dims)))
    raise CubeMetadataError(f"no spatial dimensions (x/y or lon/lat) among: {names}")


def _crs(dataset: xr.Dataset, x_dim: str, y_dim: str) -> CRS:
    found = dataset.rio.crs
    if found is None:
        for name in dataset.data_vars:
            found = dataset[name].rio.crs
            if found is not None:
                break
    if found is not None:
        return CRS.from_user_input(found.to_wkt())
    if x_dim.lower() in GEOGRAPHIC_DIMS[0]:
        return CRS.from_epsg(4326)  # CF: lon/lat coordinates without a grid mapping
    raise CubeMetadataError("no coordinate reference system (no grid_mapping / spatial_ref)")


def _time_dim(dataset: xr.Dataset) -> str | None:
    for name in dataset.dims:
        if name in dataset.coords and _is_time(dataset.coords[name]):
            return str(name)
    return None


def _is_time(coordinate: xr.DataArray) -> bool:
    if np.issubdtype(coordinate.dtype, np.datetime64):
        return True
    values = coordinate.values  # cftime dates (non-standard calendars) are objects
    return values.dtype == object and values.size > 0 and hasattr(values.flat[0], "isoformat")


def _time_range(dataset: xr.Dataset, time_dim: str | None) -> tuple[datetime, datetime] | None:
    if time_dim is None:
        return None
    values = dataset.coords[time_dim].values
    if values.size == 0:
        return None
    if np.issubdtype(values.dtype, np.datetime64):
        stamps = pd.to_datetime(values)
        return (_aware(stamps.min().to_pydatetime()), _aware(stamps.max().to_pydatetime()))
    moments = sorted(datetime.fromisoformat(value.isoformat()) for value in values.flat)
    return _aware(moments[0]), _aware(moments[-1])


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


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
        dtype = str(source.dtype)
        kept["data_type"] = dtype if dtype in STAC_DATA_TYPES else "other"
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
