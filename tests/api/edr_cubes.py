"""Hand-made cube stores for the EDR tests, laid out as `catalogue.cube_layout` says a built
cube is: a GeoZarr multiscales root, level 0 in `0/` chunked one step x a tile (the map
layout), and optionally `timeseries/`, the same values chunked whole-time x a small square.

The values are a known function of (time, row, column), with nodata holes: a NaN float
variable, a uint8 class variable whose fill is 0, and an ensemble variable with a
`member` dimension. `item_for` gives the catalogue item the builder would publish for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
import zarr
from affine import Affine
from odc.geo.xr import xr_crs_coord
from pyproj import CRS, Transformer

from catalogue.cube_layout import (
    FULL_RESOLUTION_GROUP,
    TIMESERIES_GROUP,
    Level,
    multiscales_attrs,
)

CRS_CODE = "EPSG:3035"
WEST, NORTH, RES = 4_000_000.0, 3_004_800.0, 30.0


@dataclass(frozen=True)
class HandMadeCube:
    store: Path
    dataset: xr.Dataset  # what was written (decoded values, NaN for nodata)
    transform: Affine

    @property
    def level0(self) -> str:
        return f"{self.store}/{FULL_RESOLUTION_GROUP}"

    def lonlat(self, row: int, col: int, dx: float = 0.5, dy: float = 0.5) -> tuple[float, float]:
        """WGS 84 lon/lat of a spot inside pixel (row, col); the centre by default."""
        x, y = self.transform @ (col + dx, row + dy)
        lon, lat = Transformer.from_crs(CRS_CODE, "EPSG:4326", always_xy=True).transform(x, y)
        return float(lon), float(lat)

    def bbox(self) -> list[float]:
        height, width = self.dataset.sizes["y"], self.dataset.sizes["x"]
        corners = [self.transform @ (c, r) for c in (0, width) for r in (0, height)]
        xs, ys = zip(*corners, strict=True)
        to_geo = Transformer.from_crs(CRS_CODE, "EPSG:4326", always_xy=True)
        lons, lats = to_geo.transform(np.array(xs), np.array(ys))
        return [float(min(lons)), float(min(lats)), float(max(lons)), float(max(lats))]


def cube_dataset(height: int, width: int, steps: int, members: int = 2) -> xr.Dataset:
    transform = Affine(RES, 0.0, WEST, 0.0, -RES, NORTH)
    xs = WEST + (np.arange(width) + 0.5) * RES
    ys = NORTH - (np.arange(height) + 0.5) * RES
    times = pd.date_range("2020-01-01", periods=steps, freq="D")
    t, r, c = np.meshgrid(np.arange(steps), np.arange(height), np.arange(width), indexing="ij")
    ndvi = (0.001 * t + 0.01 * r + 0.0001 * c).astype("float32")
    ndvi[:, :3, :4] = np.nan  # a nodata corner
    ndvi[:, 10, 10] = np.nan
    if steps > 2:
        ndvi[2] = np.nan  # a step without data
    classes = ((t + r + c) % 3 + 1).astype("uint8")
    classes[:, 5:8, 5:8] = 0  # fill
    agb = np.stack([(100 + 10 * m + t + r * 0.5).astype("float32") for m in range(members)], 1)
    dataset = xr.Dataset(
        {
            "ndvi": (("time", "y", "x"), ndvi, {"long_name": "vegetation index", "units": "1"}),
            "classes": (
                ("time", "y", "x"),
                classes,
                {"long_name": "land cover", "flag_values": [1, 2, 3],
                 "flag_meanings": "forest grass water"},
            ),
            "agb": (("time", "member", "y", "x"), agb, {"long_name": "biomass", "units": "Mg/ha"}),
        },
        coords={"time": times, "y": ys, "x": xs, "member": [f"m{m}" for m in range(members)]},
    )  # fmt: skip
    crs = xr_crs_coord(CRS.from_user_input(CRS_CODE), name="spatial_ref", transform=transform)
    dataset = dataset.assign_coords(spatial_ref=crs)
    for name in dataset.data_vars:
        dataset[name].attrs["grid_mapping"] = "spatial_ref"
    return dataset


def write_cube(
    root: Path,
    height: int = 40,
    width: int = 48,
    steps: int = 30,
    tile: int = 16,
    timeseries: bool = True,
    legacy: bool = False,
    timeless: bool = False,
    name: str = "v1",
) -> HandMadeCube:
    """A store under `root`; `legacy`: data at the root, no levels (a pre-levels store);
    `timeless`: the first step only, without a time dimension."""
    dataset = cube_dataset(height, width, steps)
    if timeless:
        dataset = dataset.isel(time=0, drop=True)
    store = root / "coll" / "cube" / f"{name}.zarr"
    fills = {"ndvi": np.float32(np.nan), "classes": np.uint8(0), "agb": np.float32(np.nan)}

    def encoding(chunks: dict[str, int]) -> dict[str, dict[str, Any]]:
        return {
            name: {
                "chunks": tuple(chunks.get(str(d), dataset.sizes[d]) for d in var.dims),
                "_FillValue": fills[name],
            }
            for name, var in dataset.data_vars.items()
        }

    map_chunks = {"time": 1, "member": 1, "y": tile, "x": tile}
    if legacy:
        dataset.to_zarr(store, zarr_format=2, consolidated=True, encoding=encoding(map_chunks))
        return HandMadeCube(store, dataset, Affine(RES, 0.0, WEST, 0.0, -RES, NORTH))
    dataset.to_zarr(
        store, group=FULL_RESOLUTION_GROUP, zarr_format=2, consolidated=False,
        encoding=encoding(map_chunks),
    )  # fmt: skip
    if timeseries:
        dataset.to_zarr(
            store, group=TIMESERIES_GROUP, zarr_format=2, consolidated=False,
            encoding=encoding({"time": steps, "member": 1, "y": 8, "x": 8}),
        )  # fmt: skip
    transform = Affine(RES, 0.0, WEST, 0.0, -RES, NORTH)
    level = Level(FULL_RESOLUTION_GROUP, 1.0, (height, width), transform.to_gdal())
    group = zarr.open_group(store, mode="a", zarr_format=2)
    group.attrs.update(multiscales_attrs([level], "average"))
    zarr.consolidate_metadata(store, zarr_format=2)
    zarr.consolidate_metadata(store, path=FULL_RESOLUTION_GROUP, zarr_format=2)
    if timeseries:
        zarr.consolidate_metadata(store, path=TIMESERIES_GROUP, zarr_format=2)
    return HandMadeCube(store, dataset, transform)


def item_for(cube: HandMadeCube, collection: str = "coll", item_id: str = "cube") -> dict[str, Any]:
    """The cube item a build publishes: `zarr` asset at level 0, datacube variables."""
    west, south, east, north = cube.bbox()
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    href = str(cube.store) if not (cube.store / FULL_RESOLUTION_GROUP).exists() else cube.level0
    return {
        "type": "Feature",
        "stac_version": "1.1.0",
        "stac_extensions": [],
        "id": item_id,
        "collection": collection,
        "bbox": [west, south, east, north],
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "properties": {
            "datetime": None,
            "start_datetime": "2020-01-01T00:00:00Z",
            "end_datetime": "2030-01-01T00:00:00Z",
            "cube:variables": {
                "ndvi": {"dimensions": ["time", "y", "x"], "type": "data", "nodata": "nan",
                         "description": "NDVI"},
                "classes": {"dimensions": ["time", "y", "x"], "type": "data", "nodata": 0},
                "agb": {"dimensions": ["time", "member", "y", "x"], "type": "data",
                        "unit": "Mg/ha", "nodata": "nan"},
            },
        },
        "assets": {
            "zarr": {"href": href, "type": "application/vnd.zarr", "roles": ["data"]}
        },
        "links": [],
    }  # fmt: skip
