"""Open one item's asset lazily (xarray + dask) as a tidy dataset in its native grid.

Every reader opens *without* CF masking and scaling (`mask_and_scale=False`): xarray's
default turns a uint8 class map with `_FillValue` into float32 with NaN, which is how
other tools end up writing categorical layers as float64 (issue 5). The nodata value is
carried beside the data instead and handed to the warp, and becomes `_FillValue` on write.

What comes out: data variables with dims `(time?, other..., y, x)`, a `spatial_ref`
coordinate holding the CRS (odc-geo's convention), chunks of about `READ_CHUNK` pixels that
are whole multiples of the file's own blocks, and attributes reduced to CF metadata.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import fsspec
import numpy as np
import xarray as xr
from odc.geo import CRS
from odc.geo.xr import assign_crs
from pyproj.exceptions import CRSError

from catalogue import dataset_grid
from catalogue.dataset_grid import (
    SPATIAL_HELP,
    WGS84,
    SpatialDims,
    file_crs,
    is_lat_lon,
    spatial_dims,
)
from catalogue.projection import stated_crs
from catalogue.times import parse_datetime
from cubes.assets import AssetFormat, AssetRef, pick_asset, storage_options_for, virtual_references
from cubes.errors import InputError
from cubes.spec import InputSpec

Nodata = float | int | None

READ_CHUNK = 2048
KEEP_ATTRS = frozenset({
    "units", "long_name", "standard_name", "description", "comment", "references",
    "flag_values", "flag_meanings", "flag_masks", "valid_min", "valid_max", "valid_range",
    "scale_factor", "add_offset", "source",
})  # fmt: skip


@dataclass(frozen=True)
class OpenedItem:
    """One item's data, ready for user code and regridding."""

    item_id: str
    when: datetime
    dataset: xr.Dataset
    nodata: dict[str, Nodata]
    crs: CRS


def open_item(item: dict[str, Any], spec: InputSpec, cube: str, where: str) -> OpenedItem:
    """Open the item's asset and normalise it; every failure names cube, input and item."""
    ref = pick_asset(item, spec.asset, cube, where)
    label = f"{where}, item {item.get('id')!r}"
    virtual = virtual_references(item, ref)
    try:
        raw = _open_references(virtual) if virtual else _READERS[ref.format](ref)
    except (OSError, ValueError, RuntimeError, KeyError) as error:
        opened = virtual.href if virtual else ref.href
        raise InputError(f"cannot open {opened}: {error}", cube=cube, where=label) from error
    return _normalise(raw, item, ref, spec, cube, label)


# -- readers -----------------------------------------------------------------------------
def _open_geotiff(ref: AssetRef) -> xr.Dataset:
    """Bands become variables named after the band descriptions, the asset's `bands` /
    `eo:bands` names, or the asset key (single band) / `<key>_<n>`."""
    import rasterio
    import rioxarray

    with rasterio.open(ref.href) as source:
        block_y, block_x = source.block_shapes[0]
        descriptions = list(source.descriptions)
        crs = source.crs
    chunks = {"band": 1, "y": _read_chunk(block_y), "x": _read_chunk(block_x)}
    # One GeoTIFF opens as one DataArray (a list is for HDF subdatasets, a Dataset for
    # `band_as_variable`, neither asked for here).
    array = cast(
        xr.DataArray,
        rioxarray.open_rasterio(ref.href, chunks=chunks, mask_and_scale=False, lock=False),
    )
    names = _band_names(ref, descriptions)
    attrs = {k: v for k, v in array.attrs.items() if k != "long_name"}
    variables = {}
    for index, name in enumerate(names):
        band = array.isel(band=index, drop=True).drop_vars("spatial_ref", errors="ignore")
        band.attrs = dict(attrs)
        variables[name] = band
    dataset = xr.Dataset(variables)
    if crs is not None:
        dataset.attrs["crs_wkt"] = crs.to_wkt()
    return dataset


def _band_names(ref: AssetRef, descriptions: list[str | None]) -> list[str]:
    if descriptions and all(descriptions) and len(set(descriptions)) == len(descriptions):
        return [str(d) for d in descriptions]
    bands = ref.fields.get("bands") or ref.fields.get("eo:bands") or []
    named = [b.get("name") for b in bands if isinstance(b, dict)]
    if len(named) == len(descriptions) and all(named):
        return [str(n) for n in named]
    if len(descriptions) == 1:
        return [ref.key]
    return [f"{ref.key}_{n}" for n in range(1, len(descriptions) + 1)]


def _open_netcdf(ref: AssetRef) -> xr.Dataset:
    """netCDF4 for local files; h5netcdf over fsspec for HTTP and S3 (NetCDF4/HDF5 only)."""
    if ref.is_remote:
        handle = fsspec.open(ref.href, mode="rb", **ref.storage_options).open()
        return xr.open_dataset(
            handle, engine="h5netcdf", mask_and_scale=False, decode_coords="all", chunks=None
        )
    return xr.open_dataset(
        ref.href, engine="netcdf4", mask_and_scale=False, decode_coords="all", chunks=None
    )


def _open_zarr(ref: AssetRef) -> xr.Dataset:
    return xr.open_zarr(
        ref.href,
        chunks=None,
        mask_and_scale=False,
        decode_coords="all",
        storage_options=ref.storage_options or None,
    )


def _open_references(ref: AssetRef) -> xr.Dataset:
    """A NetCDF file through its Kerchunk references (`cubes.assets.virtual_references`),
    decoded as `_open_netcdf` decodes the file. The kerchunk engine takes xarray's
    decoding options only inside `open_dataset_options` (it drops them otherwise)."""
    open_kwargs = ref.fields.get("xarray:open_kwargs") or {}
    storage = dict(open_kwargs.get("storage_options") or {})
    if ref.is_remote and ref.storage_options:  # the references file itself on S3
        storage.setdefault("target_options", storage_options_for(ref.href))
    return xr.open_dataset(
        ref.href,
        engine="kerchunk",
        storage_options=storage,
        open_dataset_options={"chunks": None, "mask_and_scale": False, "decode_coords": "all"},
    )


_READERS = {
    AssetFormat.GEOTIFF: _open_geotiff,
    AssetFormat.NETCDF: _open_netcdf,
    AssetFormat.ZARR: _open_zarr,
}


# -- normalisation -----------------------------------------------------------------------
def _normalise(
    raw: xr.Dataset, item: dict[str, Any], ref: AssetRef, spec: InputSpec, cube: str, label: str
) -> OpenedItem:
    spatial = spatial_dims(raw)
    if spatial is None:
        raise InputError(
            f"{ref.href} has no spatial dimensions (expected {SPATIAL_HELP})",
            cube=cube,
            where=label,
        )
    names = _select(raw, spatial, spec.variables, cube, label)
    crs = _crs(raw, names, spatial, ref, item, cube, label)
    nodata = {name: _nodata(raw[name], spec) for name in names}
    # a dimension already called `time` keeps its name and its place, dates or not
    time_dim = "time" if "time" in raw.dims else dataset_grid.time_dim(raw)
    rename = {spatial.y: "y", spatial.x: "x"}
    if time_dim is not None and time_dim != "time":
        rename[time_dim] = "time"
    dataset = xr.Dataset({name: _tidy(raw[name], rename) for name in names}, attrs={})
    dataset = dataset.chunk(_chunks(raw, names, rename))
    dataset = assign_crs(dataset, crs)
    return OpenedItem(str(item.get("id")), _item_time(item), dataset, nodata, crs)


def _select(
    dataset: xr.Dataset,
    spatial: SpatialDims,
    wanted: list[str] | None,
    cube: str,
    label: str,
) -> list[str]:
    gridded = [str(n) for n, v in dataset.data_vars.items() if set(spatial) <= set(v.dims)]
    if wanted is None:
        if not gridded:
            raise InputError("has no gridded variables", cube=cube, where=label)
        return gridded
    missing = [name for name in wanted if name not in gridded]
    if missing:
        raise InputError(
            f"variable {', '.join(map(repr, missing))} not found (available: "
            f"{', '.join(gridded) or 'none'})",
            cube=cube,
            where=label,
        )
    return list(wanted)


def _crs(
    dataset: xr.Dataset,
    names: list[str],
    spatial: SpatialDims,
    ref: AssetRef,
    item: dict[str, Any],
    cube: str,
    label: str,
) -> CRS:
    """The file's own CRS, else the asset's or item's `proj:` fields, else CF lat/lon."""
    candidate = (
        file_crs(dataset, names)
        or stated_crs(ref.fields)
        or stated_crs(item.get("properties") or {})
    )
    if candidate is None and is_lat_lon(dataset, spatial):
        candidate = WGS84
    if candidate is None:
        raise InputError(
            f"{ref.href} has no CRS (no grid mapping, no crs_wkt, no proj: fields on the "
            "asset or item)",
            cube=cube,
            where=label,
        )
    try:
        return CRS(candidate)
    except (CRSError, ValueError, TypeError) as error:
        shown = str(candidate)[:80]
        raise InputError(f"unknown CRS {shown!r}: {error}", cube=cube, where=label) from error


def _nodata(variable: xr.DataArray, spec: InputSpec) -> Nodata:
    if spec.nodata is not None:
        value: Any = spec.nodata
    else:
        value = next(
            (
                source[key]
                for source in (variable.attrs, variable.encoding)
                for key in ("_FillValue", "missing_value", "nodata")
                if source.get(key) is not None
            ),
            None,
        )
    return normalise_nodata(value, variable.dtype)


def normalise_nodata(value: Any, dtype: np.dtype) -> Nodata:
    """A plain Python number the variable's dtype can hold; NaN for floats without one;
    None for integers without one (GDAL then fills uncovered pixels with 0)."""
    if value is None or (isinstance(value, str) and value.lower() == "nan"):
        return math.nan if np.issubdtype(dtype, np.floating) else None
    number = np.asarray(value).reshape(-1)[0].item()
    if np.issubdtype(dtype, np.integer):
        if isinstance(number, float) and not number.is_integer():
            return None
        info = np.iinfo(dtype)
        return int(number) if info.min <= number <= info.max else None
    return float(number)


def _tidy(variable: xr.DataArray, rename: dict[Hashable, str]) -> xr.DataArray:
    """Standard dim names and order, index coordinates only, CF attributes only."""
    variable = variable.rename({k: v for k, v in rename.items() if k in variable.dims})
    variable = variable.reset_coords(drop=True)
    others = [d for d in variable.dims if d not in ("time", "y", "x")]
    order = (["time"] if "time" in variable.dims else []) + others + ["y", "x"]
    variable = variable.transpose(*order)
    variable.attrs = clean_attrs(variable.attrs)
    variable.encoding = {}
    return variable


def clean_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    """CF attributes worth keeping; identity scale/offset (GDAL always reports them) go."""
    kept = {k: v for k, v in attrs.items() if k in KEEP_ATTRS and not isinstance(v, tuple)}
    if kept.get("scale_factor") == 1.0 and kept.get("add_offset", 0.0) == 0.0:
        kept.pop("scale_factor", None)
        kept.pop("add_offset", None)
    return kept


def _chunks(raw: xr.Dataset, names: list[str], rename: dict[Hashable, str]) -> dict[str, int]:
    """One step per chunk along non-spatial dims; ~READ_CHUNK pixels, in whole file blocks,
    along y and x."""
    preferred: dict[Hashable, int] = {}
    for name in names:
        encoding = raw[name].encoding
        preferred.update(encoding.get("preferred_chunks") or {})
        chunked = raw[name].chunks
        if chunked:
            preferred.update({d: c[0] for d, c in zip(raw[name].dims, chunked, strict=True)})
    chunks: dict[str, int] = {}
    for name in names:
        for dim in raw[name].dims:
            new = rename.get(dim, str(dim))
            chunks[new] = _read_chunk(preferred.get(dim)) if new in ("y", "x") else 1
    return chunks


def _read_chunk(native: int | None) -> int:
    if not native or native <= 0:
        return READ_CHUNK
    return max(1, round(READ_CHUNK / native)) * native


def _item_time(item: dict[str, Any]) -> datetime:
    properties = item.get("properties") or {}
    value = properties.get("datetime") or properties.get("start_datetime")
    return parse_datetime(value, f"item {item.get('id')!r}: properties.datetime")
