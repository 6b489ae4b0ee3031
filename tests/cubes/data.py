"""Small synthetic inputs for cube tests, shaped like the forest-recovery case.

Each generator writes one file at its native CRS/resolution (covering the test grid plus a
margin) and returns a `Source`: the file, a STAC item for it, and the arrays and grid a
GDAL oracle (`rasterio.warp.reproject`) needs. Fields are smooth analytic surfaces with
nodata holes, so resampling differences stay small and meaningful.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from affine import Affine
from odc.geo.geobox import GeoBox
from pyproj import CRS, Transformer

# The test grid: EPSG:3035, 30 m, 200 x 160 px, tiles of 64 (partial tiles at the edges).
GRID_CRS = "EPSG:3035"
WEST, NORTH, RES = 4_000_000.0, 3_004_800.0, 30.0
WIDTH, HEIGHT, TILE = 200, 160, 64
BBOX = [WEST, NORTH - HEIGHT * RES, WEST + WIDTH * RES, NORTH]
GRID = {"crs": GRID_CRS, "bbox": BBOX, "resolution": RES, "tile_size": TILE}
MARGIN_M = 600.0
MARGIN_DEG = 0.01


@dataclass
class Source:
    """One generated input file and what the oracle needs to warp it."""

    path: Path
    item: dict[str, Any]
    crs: str
    transform: Affine
    arrays: dict[str, np.ndarray]  # variable -> (y, x) or (t, y, x) / (m, y, x)
    nodata: float | int | None
    times: list[datetime] = field(default_factory=list)


def target_transform() -> Affine:
    return Affine(RES, 0.0, WEST, 0.0, -RES, NORTH)


def grid_3035(res: float, offset: float = 0.0) -> tuple[Affine, int, int]:
    west = math.floor((WEST - MARGIN_M - offset) / res) * res + offset
    north = math.ceil((NORTH + MARGIN_M - offset) / res) * res + offset
    east, south = BBOX[2] + MARGIN_M, BBOX[1] - MARGIN_M
    return (
        Affine(res, 0.0, west, 0.0, -res, north),
        math.ceil((east - west) / res),
        math.ceil((north - south) / res),
    )


def grid_4326(res: float) -> tuple[Affine, int, int]:
    to_geo = Transformer.from_crs(GRID_CRS, "EPSG:4326", always_xy=True)
    xs = np.linspace(BBOX[0], BBOX[2], 21)
    ys = np.linspace(BBOX[1], BBOX[3], 21)
    gx, gy = np.meshgrid(xs, ys)
    lon, lat = to_geo.transform(gx.ravel(), gy.ravel())
    west = math.floor((lon.min() - MARGIN_DEG) / res) * res
    north = math.ceil((lat.max() + MARGIN_DEG) / res) * res
    width = math.ceil((lon.max() + MARGIN_DEG - west) / res)
    height = math.ceil((north - (lat.min() - MARGIN_DEG)) / res)
    return Affine(res, 0.0, west, 0.0, -res, north), width, height


def centres(transform: Affine, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    xs = transform.c + (np.arange(width) + 0.5) * transform.a
    ys = transform.f + (np.arange(height) + 0.5) * transform.e
    return xs, ys


def smooth(xs: np.ndarray, ys: np.ndarray, scale: float, phase: float = 0.0) -> np.ndarray:
    """A smooth surface in [-1, 1] with features ~`scale` units across."""
    gx, gy = np.meshgrid(xs, ys)
    return 0.6 * np.sin(gx / scale + phase) * np.cos(gy / (0.7 * scale)) + 0.4 * np.sin(
        (gx + gy) / (2.3 * scale) + 2 * phase
    )


def holes(xs: np.ndarray, ys: np.ndarray, centres_xy: list[tuple[float, float]], radius: float):
    gx, gy = np.meshgrid(xs, ys)
    mask = np.zeros(gx.shape, bool)
    for cx, cy in centres_xy:
        mask |= (gx - cx) ** 2 + (gy - cy) ** 2 < radius**2
    return mask


def footprint(transform: Affine, width: int, height: int, crs: str) -> dict[str, Any]:
    box = GeoBox((height, width), transform, crs)
    return box.extent.to_crs("EPSG:4326").json


def file_item(
    item_id: str,
    collection: str,
    href: str,
    media_type: str,
    geometry: dict[str, Any],
    when: datetime,
    asset_key: str = "data",
    until: datetime | None = None,
    **asset_fields: Any,
) -> dict[str, Any]:
    """An item for one file; `until` makes it an interval item (a file with a time axis)."""
    coords = np.asarray(geometry["coordinates"][0])
    properties: dict[str, Any] = {"datetime": when.strftime("%Y-%m-%dT%H:%M:%SZ")}
    if until is not None:
        properties.update(
            datetime=None,
            start_datetime=properties["datetime"],
            end_datetime=until.strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
    return {
        "type": "Feature",
        "stac_version": "1.1.0",
        "stac_extensions": [],
        "id": item_id,
        "collection": collection,
        "geometry": geometry,
        "bbox": [*coords.min(axis=0).tolist(), *coords.max(axis=0).tolist()],
        "properties": properties,
        "assets": {
            asset_key: {"href": href, "type": media_type, "roles": ["data"], **asset_fields}
        },
        "links": [],
    }


GTIFF = "image/tiff; application=geotiff"
NETCDF = "application/x-netcdf"
ZARR = "application/vnd.zarr"
STATIC = datetime(2020, 6, 1, tzinfo=UTC)


def write_gtiff(
    path: Path,
    transform: Affine,
    bands: list[np.ndarray],
    nodata: float | int | None,
    crs: str | None = GRID_CRS,
    descriptions: list[str] | None = None,
) -> None:
    import rasterio

    height, width = bands[0].shape
    profile = {
        "driver": "GTiff", "width": width, "height": height, "count": len(bands),
        "dtype": bands[0].dtype.name, "transform": transform, "nodata": nodata,
        "tiled": True, "blockxsize": 128, "blockysize": 128, "compress": "deflate",
    }  # fmt: skip
    if crs is not None:
        profile["crs"] = crs
    with rasterio.open(path, "w", **profile) as dst:
        for index, band in enumerate(bands, start=1):
            dst.write(band, index)
            if descriptions:
                dst.set_band_description(index, descriptions[index - 1])


def forest_type(folder: Path, collection: str = "forest-type") -> Source:
    """Categorical uint8 classes 1..5 in 50 m stands with 10 m speckle, nodata 0."""
    transform, width, height = grid_3035(10.0)
    xs, ys = centres(transform, width, height)
    field_ = smooth(xs, ys, 700.0)
    classes = np.digitize(field_, [-0.6, -0.2, 0.2, 0.6]).astype(np.uint8) + 1
    stands = np.repeat(np.repeat(classes[::5, ::5], 5, axis=0), 5, axis=1)[:height, :width]
    rng = np.random.default_rng(1)
    speck = rng.random(stands.shape) < 0.05
    stands = stands.copy()
    stands[speck] = rng.integers(1, 6, int(speck.sum()), dtype=np.uint8)
    stands[holes(xs, ys, [(4_001_500.0, 3_003_000.0)], 400.0)] = 0
    path = folder / "forest_type.tif"
    write_gtiff(path, transform, [stands], nodata=0)
    item = file_item(
        "forest-type-1", collection, str(path), GTIFF,
        footprint(transform, width, height, GRID_CRS), STATIC, asset_key="forest_type",
    )  # fmt: skip
    return Source(path, item, GRID_CRS, transform, {"forest_type": stands}, 0)


def biomass(folder: Path, collection: str = "biomass") -> Source:
    """Three float32 bands (agb, canopy_cover, canopy_height), 30 m, half a pixel off."""
    transform, width, height = grid_3035(30.0, offset=15.0)
    xs, ys = centres(transform, width, height)
    base = smooth(xs, ys, 900.0)
    hole = holes(xs, ys, [(4_004_000.0, 3_001_500.0)], 500.0)
    bands = {}
    for name, (mean, amp) in {
        "agb": (120.0, 60.0), "canopy_cover": (65.0, 25.0), "canopy_height": (18.0, 7.0),
    }.items():  # fmt: skip
        band = (mean + amp * base).astype(np.float32)
        band[hole] = np.nan
        bands[name] = band
    path = folder / "biomass.tif"
    write_gtiff(path, transform, list(bands.values()), np.nan, descriptions=list(bands))
    item = file_item(
        "biomass-1", collection, str(path), GTIFF,
        footprint(transform, width, height, GRID_CRS), STATIC,
    )  # fmt: skip
    return Source(path, item, GRID_CRS, transform, bands, math.nan)


def cci_biomass(folder: Path, collection: str = "cci-biomass") -> Source:
    """EPSG:4326 NetCDF time series (4 years) of agb, float32, NaN nodata, CF grid mapping."""
    transform, width, height = grid_4326(1 / 1125)
    lons, lats = centres(transform, width, height)
    years = [2007, 2010, 2015, 2016]
    base = smooth(lons, lats, 0.012)
    hole = holes(lons, lats, [(lons[width // 3], lats[height // 2])], 0.004)
    data = np.stack([(110 + 55 * base + 3.0 * i).astype(np.float32) for i in range(len(years))])
    data[:, hole] = np.nan
    times = [datetime(y, 1, 1) for y in years]
    wkt = CRS.from_epsg(4326).to_wkt()
    dataset = xr.Dataset(
        {
            "agb": (("time", "lat", "lon"), data,
                    {"units": "Mg/ha", "long_name": "above-ground biomass",
                     "grid_mapping": "spatial_ref"}),
            "spatial_ref": ((), np.int32(0), {"crs_wkt": wkt, "spatial_ref": wkt}),
        },
        coords={
            "time": ("time", np.array(times, dtype="datetime64[ns]")),
            "lat": ("lat", lats, {"standard_name": "latitude", "units": "degrees_north"}),
            "lon": ("lon", lons, {"standard_name": "longitude", "units": "degrees_east"}),
        },
    )  # fmt: skip
    path = folder / "cci_biomass.nc"
    encoding = {"agb": {"_FillValue": np.float32(np.nan), "zlib": True,
                        "chunksizes": (1, 64, 64)}}  # fmt: skip
    dataset.to_netcdf(path, engine="netcdf4", encoding=encoding)
    item = file_item(
        "cci-biomass-1", collection, str(path), NETCDF,
        footprint(transform, width, height, "EPSG:4326"), datetime(2007, 1, 1, tzinfo=UTC),
        until=datetime(2016, 12, 31, tzinfo=UTC),
    )  # fmt: skip
    return Source(
        path, item, "EPSG:4326", transform, {"agb": data}, math.nan,
        [t.replace(tzinfo=UTC) for t in times],
    )  # fmt: skip


def forest_age(folder: Path, collection: str = "forest-age", members: int = 5) -> Source:
    """EPSG:4326 Zarr ensemble (member, lat, lon) float32 with NaN holes."""
    transform, width, height = grid_4326(0.0009)
    lons, lats = centres(transform, width, height)
    base = 70 + 35 * smooth(lons, lats, 0.015)
    hole = holes(lons, lats, [(lons[2 * width // 3], lats[height // 3])], 0.004)
    data = np.stack(
        [(base + 4 * smooth(lons, lats, 0.01, phase=m)).astype(np.float32) for m in range(members)]
    )
    data[:, hole] = np.nan
    wkt = CRS.from_epsg(4326).to_wkt()
    dataset = xr.Dataset(
        {
            "forest_age": (("member", "lat", "lon"), data,
                           {"units": "years", "long_name": "forest age",
                            "grid_mapping": "spatial_ref"}),
            "spatial_ref": ((), np.int32(0), {"crs_wkt": wkt}),
        },
        coords={
            "member": np.arange(1, members + 1, dtype=np.int32),
            "lat": ("lat", lats, {"standard_name": "latitude", "units": "degrees_north"}),
            "lon": ("lon", lons, {"standard_name": "longitude", "units": "degrees_east"}),
        },
    )  # fmt: skip
    path = folder / "forest_age.zarr"
    dataset.to_zarr(
        path, zarr_format=2, consolidated=True,
        encoding={"forest_age": {"chunks": (1, 64, 64), "_FillValue": np.float32(np.nan)}},
    )  # fmt: skip
    item = file_item(
        "forest-age-1", collection, str(path), ZARR,
        footprint(transform, width, height, "EPSG:4326"), STATIC,
    )  # fmt: skip
    return Source(path, item, "EPSG:4326", transform, {"forest_age": data}, math.nan)


def disturbance(
    folder: Path, collection: str = "disturbance", years: list[int] | None = None
) -> Source:
    """EPSG:3035 30 m NetCDF on the test grid's own lattice: uint8 0/1, nodata 255."""
    years = years or list(range(2015, 2021))
    transform, width, height = grid_3035(30.0)
    xs, ys = centres(transform, width, height)
    nonforest = smooth(xs, ys, 800.0) > 0.55
    data = np.stack(
        [(smooth(xs, ys, 300.0, phase=i) > 0.7).astype(np.uint8) for i in range(len(years))]
    )
    data[:, nonforest] = 255
    times = [datetime(y, 1, 1) for y in years]
    wkt = CRS.from_epsg(3035).to_wkt()
    dataset = xr.Dataset(
        {
            "annual_disturbances": (("time", "y", "x"), data,
                                    {"grid_mapping": "spatial_ref",
                                     "flag_values": np.array([0, 1], np.uint8),
                                     "flag_meanings": "undisturbed disturbed"}),
            "spatial_ref": ((), np.int32(0), {"crs_wkt": wkt}),
        },
        coords={
            "time": ("time", np.array(times, dtype="datetime64[ns]")),
            "y": ("y", ys, {"standard_name": "projection_y_coordinate", "units": "m"}),
            "x": ("x", xs, {"standard_name": "projection_x_coordinate", "units": "m"}),
        },
    )  # fmt: skip
    path = folder / "disturbance.nc"
    dataset.to_netcdf(
        path, engine="netcdf4",
        encoding={"annual_disturbances": {"_FillValue": np.uint8(255), "zlib": True}},
    )  # fmt: skip
    item = file_item(
        "disturbance-1", collection, str(path), NETCDF,
        footprint(transform, width, height, GRID_CRS), datetime(years[0], 1, 1, tzinfo=UTC),
        until=datetime(years[-1], 12, 31, tzinfo=UTC),
    )  # fmt: skip
    return Source(
        path, item, GRID_CRS, transform, {"annual_disturbances": data}, 255,
        [t.replace(tzinfo=UTC) for t in times],
    )  # fmt: skip
