"""A small cube store with levels, written as `cubes` writes one (GeoZarr multiscales with
`catalogue.cube_layout.multiscales_attrs`), and its catalogue item, for the map tests.

The values are known everywhere, so a test can tell what colour a tile must show at any
point: `biomass` (float, time, y, x) is `(col // 128) * 30 + 5 * t`, NaN in the top-left
128 x 128 block; `forest_type` (uint8 classes, y, x) is 1, 2 or 3 by band of 256 rows
with 0 (nodata) in the left 128 columns; `canopy` (float, member, y, x) is 10 for member
"low" and 110 for member "high". Both are constant over 128 x 128 blocks, so
nearest-neighbour warping cannot blur what a test looks at.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
import zarr
from pyproj import CRS, Transformer

from catalogue.cube_layout import Level, group_url, multiscales_attrs

EPSG = 3035
SIZE = 1024  # pixels a side at full resolution
RES = 50.0  # metres
WEST, NORTH = 4_300_000.0, 3_250_000.0  # near 10E 52N in ETRS89-LAEA
TIMES = pd.to_datetime(["2020-01-01", "2021-01-01", "2022-01-01"])
LEVELS = 3  # 1024, 512, 256 pixels a side
CHUNK = 128
CLASSES = [
    {"value": 1, "name": "broadleaf", "color_hint": "1B9E77"},
    {"value": 2, "name": "conifer", "color_hint": "D95F02"},
    {"value": 3, "name": "mixed"},
]


def biomass_value(row: int, col: int, step: int) -> float:
    return float((col // 128) * 30 + 5 * step)


def biomass_is_nodata(row: int, col: int) -> bool:
    return row < 128 and col < 128


def forest_type_value(row: int, col: int) -> int:
    return 0 if col < 128 else 1 + (row // 256) % 3


def _full_resolution() -> xr.Dataset:
    rows, cols = np.mgrid[0:SIZE, 0:SIZE]
    biomass = np.stack(
        [((cols // 128) * 30 + 5 * step).astype("float32") for step in range(len(TIMES))]
    )
    biomass[:, :128, :128] = np.nan
    forest = np.where(cols < 128, 0, 1 + (rows // 256) % 3).astype("uint8")
    return _dataset(biomass, forest, RES)


def canopy_value(member: int) -> float:
    return 10.0 + 100.0 * member


def _dataset(biomass: np.ndarray, forest: np.ndarray, res: float) -> xr.Dataset:
    size = forest.shape[0]
    x = WEST + (np.arange(size) + 0.5) * res
    y = NORTH - (np.arange(size) + 0.5) * res
    crs = CRS.from_epsg(EPSG)
    dataset = xr.Dataset(
        {
            "biomass": (
                ("time", "y", "x"),
                biomass,
                {"units": "Mg/ha", "grid_mapping": "spatial_ref"},
            ),
            "forest_type": (
                ("y", "x"),
                forest,
                {"grid_mapping": "spatial_ref", "flag_values": [1, 2, 3]},
            ),
        },
        coords={"time": TIMES, "y": y, "x": x, "spatial_ref": ((), 0, crs.to_cf())},
    )
    canopy = np.stack([np.full((size, size), canopy_value(m), "float32") for m in (0, 1)])
    dataset["canopy"] = (("member", "y", "x"), canopy, {"grid_mapping": "spatial_ref"})
    dataset = dataset.assign_coords(member=["low", "high"])
    dataset["canopy"].encoding = {"chunks": (1, CHUNK, CHUNK)}
    dataset["biomass"].encoding = {"_FillValue": np.float32("nan"), "chunks": (1, CHUNK, CHUNK)}
    dataset["forest_type"].encoding = {"chunks": (CHUNK, CHUNK)}
    return dataset


def write_store(store: Path, levels: bool = True) -> None:
    """The store: levels 0..2 in groups (default) or, `levels=False`, a store written
    before levels existed (data at the root)."""
    full = _full_resolution()
    if not levels:
        full.to_zarr(store, mode="w", consolidated=True, zarr_format=2)
        return
    described = []
    for index in range(LEVELS):
        factor = 2**index
        level = _dataset(
            full["biomass"].values[:, ::factor, ::factor],
            full["forest_type"].values[::factor, ::factor],
            RES * factor,
        )
        level.to_zarr(store, group=str(index), mode="a", consolidated=False, zarr_format=2)
        size = SIZE // factor
        transform = (RES * factor, 0.0, WEST, 0.0, -RES * factor, NORTH)
        described.append(Level(str(index), float(factor), (size, size), transform))
    root = zarr.open_group(store, mode="a", zarr_format=2)
    root.attrs.update(multiscales_attrs(described, "average"))
    zarr.consolidate_metadata(store)


def lonlat_of(row: float, col: float) -> tuple[float, float]:
    """The WGS84 position of a full-resolution pixel position (row, col: fractional)."""
    to_wgs84 = Transformer.from_crs(EPSG, 4326, always_xy=True)
    return to_wgs84.transform(WEST + col * RES, NORTH - row * RES)


def cube_item(
    store: Path, item_id: str = "map-cube", collection: str = "maps", levels: bool = True
) -> dict[str, Any]:
    """The catalogue item of the store, shaped like `cubes.to_item` makes them."""
    to_wgs84 = Transformer.from_crs(EPSG, 4326, always_xy=True)
    east, south = WEST + SIZE * RES, NORTH - SIZE * RES
    west_, south_, east_, north_ = to_wgs84.transform_bounds(WEST, south, east, NORTH)
    ring = [[west_, south_], [east_, south_], [east_, north_], [west_, north_], [west_, south_]]
    href = group_url(str(store), "0") if levels else str(store)
    return {
        "type": "Feature",
        "stac_version": "1.1.0",
        "stac_extensions": [
            "https://stac-extensions.github.io/datacube/v2.3.0/schema.json",
            "https://stac-extensions.github.io/projection/v2.0.0/schema.json",
            "https://stac-extensions.github.io/classification/v2.0.0/schema.json",
        ],
        "id": item_id,
        "collection": collection,
        "bbox": [west_, south_, east_, north_],
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "properties": {
            "datetime": None,
            "start_datetime": "2020-01-01T00:00:00Z",
            "end_datetime": "2022-12-31T23:59:59Z",
            "cube:dimensions": {
                "x": {
                    "type": "spatial",
                    "axis": "x",
                    "extent": [WEST, east],
                    "step": RES,
                    "reference_system": EPSG,
                },
                "y": {
                    "type": "spatial",
                    "axis": "y",
                    "extent": [south, NORTH],
                    "step": -RES,
                    "reference_system": EPSG,
                },
                "member": {"type": "other", "values": ["low", "high"]},
                "time": {
                    "type": "temporal",
                    "extent": ["2020-01-01T00:00:00Z", "2022-01-01T00:00:00Z"],
                    "step": "P1Y",
                },
            },
            "cube:variables": {
                "biomass": {
                    "dimensions": ["time", "y", "x"],
                    "type": "data",
                    "data_type": "float32",
                    "nodata": "nan",
                    "unit": "Mg/ha",
                },
                "canopy": {
                    "dimensions": ["member", "y", "x"],
                    "type": "data",
                    "data_type": "float32",
                },
                "forest_type": {
                    "dimensions": ["y", "x"],
                    "type": "data",
                    "data_type": "uint8",
                    "nodata": 0,
                },
            },
            "proj:code": f"EPSG:{EPSG}",
            "proj:shape": [SIZE, SIZE],
            "proj:transform": [RES, 0.0, WEST, 0.0, -RES, NORTH],
        },
        "assets": {
            "zarr": {
                "href": href,
                "type": "application/vnd.zarr",
                "roles": ["data"],
                "xarray:open_kwargs": {
                    "consolidated": True,
                    "chunks": {},
                    "mask_and_scale": {"forest_type": False},
                },
                "bands": [{"name": "forest_type", "classification:classes": CLASSES}],
            }
        },
        "links": [],
    }
