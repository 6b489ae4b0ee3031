"""The cube as a CF-described dataset and its Zarr encoding (issue 5, "Writing").

Coordinates are pixel centres, y north to south; the CRS is a `spatial_ref` grid-mapping
variable carrying CF parameters, `crs_wkt`, GDAL's `spatial_ref` and `GeoTransform`, so
xarray/rioxarray/odc-geo and CF readers all find it. GDAL's Zarr driver (3.6, Debian 12)
reads no CF grid mapping: each data variable also carries GDAL's own `_CRS` attribute. Chunks are
`tile_size` in y/x (or the whole axis when it is shorter) and 1 along every other axis.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np
import xarray as xr
from odc.geo.geobox import GeoBox
from odc.geo.xr import xr_crs_coord
from pyproj.enums import WktVersion

from cubes.build import BuiltCube
from cubes.classes import flag_attrs
from cubes.sharding import with_shards
from cubes.spec import CompressorSpec, CubeSpec

GRID_MAPPING = "spatial_ref"


def cf_dataset(built: BuiltCube, cube: CubeSpec, geobox: GeoBox) -> xr.Dataset:
    assert geobox.crs is not None  # the cube's grid is built from its spec's CRS
    variables = {}
    for name, layer in built.layers.items():
        data = layer.data.drop_vars([c for c in layer.data.coords if c not in layer.data.dims])
        data.attrs = {**data.attrs, "grid_mapping": GRID_MAPPING, "_CRS": gdal_crs(geobox)}
        if layer.classes:
            data.attrs.update(flag_attrs(layer.classes, data.dtype))
        data.attrs.setdefault("long_name", name)
        data.encoding = {}
        variables[name] = data
    dataset = xr.Dataset(variables)
    dataset = dataset.assign_coords(
        {GRID_MAPPING: xr_crs_coord(geobox.crs, name=GRID_MAPPING, transform=geobox.transform)}
    )
    dataset["x"].attrs, dataset["y"].attrs = _xy_attrs(geobox)
    if "time" in dataset.coords:
        dataset["time"].attrs = {"standard_name": "time", "long_name": "time", "axis": "T"}
    dataset.attrs = _global_attrs(built, cube)
    return dataset


def gdal_crs(geobox: GeoBox) -> dict[str, str]:
    """GDAL's Zarr CRS attribute (https://gdal.org/drivers/raster/zarr.html, "SRS
    encoding"): WKT2, and the OGC URL when the CRS has an EPSG code."""
    crs = geobox.crs
    assert crs is not None
    encoded = {"wkt": crs.to_wkt(version=WktVersion.WKT2_2019)}
    if crs.epsg is not None:
        encoded["url"] = f"http://www.opengis.net/def/crs/EPSG/0/{crs.epsg}"
    return encoded


def _xy_attrs(geobox: GeoBox) -> tuple[dict[str, Any], dict[str, Any]]:
    crs = geobox.crs
    if crs is not None and crs.geographic:
        return (
            {"standard_name": "longitude", "long_name": "longitude", "units": "degrees_east",
             "axis": "X"},
            {"standard_name": "latitude", "long_name": "latitude", "units": "degrees_north",
             "axis": "Y"},
        )  # fmt: skip
    units = _linear_units(geobox)
    return (
        {"standard_name": "projection_x_coordinate", "long_name": "x coordinate of projection",
         "units": units, "axis": "X"},
        {"standard_name": "projection_y_coordinate", "long_name": "y coordinate of projection",
         "units": units, "axis": "Y"},
    )  # fmt: skip


def _linear_units(geobox: GeoBox) -> str:
    units = geobox.crs.units[0] if geobox.crs is not None else "m"
    return "m" if units in ("metre", "meter", "m") else str(units)


def _global_attrs(built: BuiltCube, cube: CubeSpec) -> dict[str, Any]:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    sources = sorted({layer.source for layer in built.layers.values()})
    return {
        "Conventions": "CF-1.8",
        "title": cube.title or cube.id,
        "source": f"cubestac {_our_version()}",
        "history": f"{now}: built by cubestac from {'; '.join(sources)}",
        **({"summary": cube.description} if cube.description else {}),
    }


def _our_version() -> str:
    try:
        return version("cubestac")
    except PackageNotFoundError:
        return "unknown"


def encoding(
    dataset: xr.Dataset, built: BuiltCube, cube: CubeSpec, derived: bool = False
) -> dict[str, dict[str, Any]]:
    """Chunks, compressor and `_FillValue` per variable; coordinates uncompressed. A
    sharded cube (Zarr v3) writes each tile as one shard of inner chunks (`cubes.sharding`).
    `derived`: the compressor of the groups made from level 0 (`derived_compressor`)."""
    result: dict[str, dict[str, Any]] = {}
    tile = cube.grid.tile_size
    for name, layer in built.layers.items():
        variable = dataset[name]
        chunks = tuple(
            min(tile, variable.sizes[d]) if d in ("y", "x") else 1 for d in variable.dims
        )
        entry = {
            "chunks": chunks,
            "compressors": (
                (derived_compressor if derived else compressor)(
                    cube.compressor, cube.zarr_format, variable.dtype
                ),
            ),
            "_FillValue": _fill(layer.nodata, variable.dtype),
        }
        result[name] = with_shards(entry, [str(d) for d in variable.dims], cube.inner_chunk)
    for name in ("x", "y"):
        result[name] = {"chunks": (dataset.sizes[name],), "compressors": None}
    if "time" in dataset.coords:
        result["time"] = {"chunks": (dataset.sizes["time"],), "compressors": None}
    return result


def _fill(nodata: float | int | None, dtype: np.dtype) -> Any:
    if nodata is None:
        return None
    if isinstance(nodata, float) and math.isnan(nodata):
        return np.array(np.nan, dtype=dtype) if dtype.kind == "f" else None
    return np.array(nodata, dtype=dtype)


def derived_compressor(spec: CompressorSpec, zarr_format: int, dtype: np.dtype) -> Any:
    """The levels' and the time-series layout's compressor for floating-point data: the
    cube's own family, at its fastest -- Blosc with LZ4 instead of zstd (same byte
    shuffle), or Zstandard level 1. Writing them costs a fifth of zstd's time for files
    about 3 % larger (bench/results/levels.md), and LZ4 also decompresses faster for tiles
    and series. Integer data (class maps) compresses fast and far better with the cube's
    own compressor, which it keeps."""
    if dtype.kind != "f":
        return compressor(spec, zarr_format, dtype)
    if spec.name == "zstd":
        return compressor(CompressorSpec(name="zstd", level=1), zarr_format, dtype)
    if zarr_format == 2:
        from numcodecs import Blosc

        return Blosc(cname="lz4", clevel=5, shuffle=Blosc.SHUFFLE)
    from zarr.codecs import BloscCodec

    return BloscCodec(cname="lz4", clevel=5, shuffle="shuffle", typesize=dtype.itemsize)


def compressor(spec: CompressorSpec, zarr_format: int, dtype: np.dtype) -> Any:
    """Blosc (zstd, byte shuffle) or Zstandard, as numcodecs (Zarr 2) or zarr codecs (3)."""
    if zarr_format == 2:
        from numcodecs import Blosc, Zstd

        if spec.name == "zstd":
            return Zstd(level=spec.level)
        return Blosc(cname="zstd", clevel=spec.level, shuffle=Blosc.SHUFFLE)
    from zarr.codecs import BloscCodec, ZstdCodec

    if spec.name == "zstd":
        return ZstdCodec(level=spec.level)
    return BloscCodec(cname="zstd", clevel=spec.level, shuffle="shuffle", typesize=dtype.itemsize)
