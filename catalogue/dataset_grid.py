"""Which dimensions of a NetCDF/Zarr/GeoTIFF dataset are space and time, and its CRS.

The one reading that both the files harvester (`ingest.metadata.datacube`, which describes a
file as an item) and the cube builder (`cubes.inputs`, which opens that item's asset) use,
so that a file the ingest accepts is read the same way by the cube builder (issue 17).

- Space: dimensions named x/y, lon/lat or longitude/latitude (any case), else the ones whose
  coordinate carries CF `axis: X`/`Y` or `standard_name: projection_x/y_coordinate`
  (CF 1.11 section 4, "Coordinate Types").
- Time: the dimension called `time` or else the first whose coordinate holds datetime64
  values or cftime dates (non-standard calendars decode to cftime objects; CF section 4.4.1).
- CRS: the grid mapping's `crs_wkt` / `spatial_ref` / `crs` text or its CF parameters
  (CF section 5.6), any scalar variable's, the dataset's attributes, then rioxarray's
  reading; without one, latitude/longitude grids (by dimension name or by
  `units: degrees_north`, CF section 4.1) are WGS 84.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Any, NamedTuple

import numpy as np
import xarray as xr
from pyproj import CRS
from pyproj.exceptions import CRSError

X_NAMES = frozenset({"x"})
Y_NAMES = frozenset({"y"})
LON_NAMES = frozenset({"lon", "longitude"})
LAT_NAMES = frozenset({"lat", "latitude"})
CF_AXES = {"projection_x_coordinate": "X", "projection_y_coordinate": "Y"}
LAT_UNITS = frozenset(
    {"degrees_north", "degree_north", "degrees_n", "degree_n", "degreesn", "degreen"}
)
CRS_ATTRS = ("crs_wkt", "spatial_ref", "crs")
WGS84 = "EPSG:4326"
SPATIAL_HELP = "x/y, lon/lat or longitude/latitude, or coordinates with CF axis X/Y"


class SpatialDims(NamedTuple):
    """The dataset's horizontal dimensions (names as the dataset has them)."""

    y: Hashable
    x: Hashable


def spatial_dims(dataset: xr.Dataset) -> SpatialDims | None:
    """The y and x dimensions: by name first, else by CF axis attributes; None if neither."""
    for y_names, x_names in ((Y_NAMES, X_NAMES), (LAT_NAMES, LON_NAMES)):
        y = next((d for d in dataset.dims if str(d).lower() in y_names), None)
        x = next((d for d in dataset.dims if str(d).lower() in x_names), None)
        if x is not None and y is not None:
            return SpatialDims(y, x)
    return _cf_axes(dataset)


def _cf_axes(dataset: xr.Dataset) -> SpatialDims | None:
    found: dict[str, Hashable] = {}
    for dim in dataset.dims:
        if dim in dataset.coords:
            attrs = dataset.coords[dim].attrs
            axis = str(attrs.get("axis", "")).upper()
            if axis not in ("X", "Y"):
                axis = CF_AXES.get(str(attrs.get("standard_name")), "")
            if axis:
                found.setdefault(axis, dim)
    return SpatialDims(found["Y"], found["X"]) if {"X", "Y"} <= set(found) else None


def time_dim(dataset: xr.Dataset) -> Hashable | None:
    """`time` when it holds dates, else the first dimension whose coordinate does."""
    temporal = [d for d in dataset.dims if d in dataset.coords and is_time(dataset.coords[d])]
    return "time" if "time" in temporal else next(iter(temporal), None)


def is_time(coordinate: xr.DataArray) -> bool:
    """datetime64 values, or cftime dates (objects with `isoformat`)."""
    if np.issubdtype(coordinate.dtype, np.datetime64):
        return True
    values = coordinate.values
    return values.dtype == object and values.size > 0 and hasattr(values.flat[0], "isoformat")


def file_crs(dataset: xr.Dataset, names: Iterable[Hashable] | None = None) -> str | None:
    """The CRS text the dataset carries for `names` (default: all data variables), or None.

    Text (WKT, `EPSG:n`, ...) rather than a parsed CRS: callers parse it with the library
    they work with and say what was unreadable in their own words.
    """
    chosen = list(dataset.data_vars if names is None else names)
    for name in chosen:
        variable = dataset[name]
        mapping = variable.attrs.get("grid_mapping") or variable.encoding.get("grid_mapping")
        if mapping and mapping in dataset.variables:
            found = _crs_from_attrs(dataset.variables[mapping].attrs)
            if found is not None:
                return found
    for other in dataset.variables.values():
        if other.ndim == 0:
            found = _crs_from_attrs(other.attrs)
            if found is not None:
                return found
    return _crs_from_attrs(dataset.attrs) or _rioxarray_crs(dataset, chosen)


def _crs_from_attrs(attrs: dict[str, Any]) -> str | None:
    for key in CRS_ATTRS:
        if isinstance(attrs.get(key), str) and attrs[key]:
            return str(attrs[key])
    if "grid_mapping_name" in attrs:
        try:
            return str(CRS.from_cf(attrs).to_wkt())
        except CRSError:
            return None
    return None


def _rioxarray_crs(dataset: xr.Dataset, names: list[Hashable]) -> str | None:
    """What rioxarray finds (a variable's own `crs` attribute, its conventions)."""
    import rioxarray  # noqa: F401 - registers the `.rio` accessor

    for subject in (dataset, *(dataset[name] for name in names)):
        try:
            found = subject.rio.crs
        except (CRSError, ValueError):  # rioxarray re-raises rasterio's CRSError
            continue
        if found is not None:
            return str(found.to_wkt())
    return None


def is_lat_lon(dataset: xr.Dataset, dims: SpatialDims) -> bool:
    """Whether the grid is latitude/longitude: by dimension name or CF `units`."""
    if str(dims.x).lower() in LON_NAMES:
        return True
    coordinate = dataset.coords.get(dims.y)
    units = "" if coordinate is None else str(coordinate.attrs.get("units", ""))
    return units.lower() in LAT_UNITS
