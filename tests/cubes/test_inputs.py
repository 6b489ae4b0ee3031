"""Opening inputs: dimension names, axis order, CRS sources, band names and nodata."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from affine import Affine

from cubes.errors import InputError
from cubes.grid import target_geobox
from cubes.inputs import open_item
from cubes.regrid import regrid
from cubes.spec import GridSpec, InputSpec
from tests.cubes import data
from tests.cubes.oracle import gdal_warp

WHEN = datetime(2020, 1, 1, tzinfo=UTC)


def netcdf_item(path: Path, dataset: xr.Dataset, **asset_fields: object) -> dict:
    dataset.to_netcdf(path)
    geometry = {"type": "Polygon", "coordinates": [[[0, 40], [20, 40], [20, 60], [0, 60], [0, 40]]]}
    return data.file_item("n", "c", str(path), data.NETCDF, geometry, WHEN, **asset_fields)


def test_custom_dimension_names_and_a_south_up_grid(tmp_path) -> None:
    """`northing`/`easting` found by their CF standard names; y ascending is warped right."""
    transform, width, height = data.grid_3035(60.0)
    xs, ys = data.centres(transform, width, height)
    values = (100 * data.smooth(xs, ys, 900.0)).astype(np.float32)
    dataset = xr.Dataset(
        {"v": (("northing", "easting"), values[::-1])},  # stored south to north
        coords={
            "northing": ("northing", ys[::-1], {"standard_name": "projection_y_coordinate"}),
            "easting": ("easting", xs, {"standard_name": "projection_x_coordinate"}),
        },
    )
    item = netcdf_item(tmp_path / "south-up.nc", dataset, **{"proj:code": "EPSG:3035"})
    opened = open_item(item, InputSpec(collection="c"), "cube", "input 1 (c)")
    assert opened.dataset["v"].dims == ("y", "x") and opened.crs.epsg == 3035
    geobox = target_geobox(GridSpec.model_validate(data.GRID), "cube")
    got = regrid(opened.dataset["v"], math.nan, geobox, "bilinear", data.TILE).values
    source = data.Source(tmp_path, item, data.GRID_CRS, transform, {"v": values}, math.nan)
    np.testing.assert_allclose(got, gdal_warp(values, source, "bilinear"), atol=1e-3)


def test_cf_latitude_longitude_without_a_grid_mapping_is_wgs84(tmp_path) -> None:
    dataset = xr.Dataset(
        {"v": (("lat", "lon"), np.ones((3, 4), np.float32))},
        coords={
            "lat": ("lat", [50.0, 49.9, 49.8], {"units": "degrees_north"}),
            "lon": ("lon", [5.0, 5.1, 5.2, 5.3], {"units": "degrees_east"}),
        },
    )
    item = netcdf_item(tmp_path / "latlon.nc", dataset)
    assert open_item(item, InputSpec(collection="c"), "cube", "in").crs.epsg == 4326


def test_projected_coordinates_without_any_crs_are_refused(tmp_path) -> None:
    dataset = xr.Dataset(
        {"v": (("y", "x"), np.ones((3, 4), np.float32))},
        coords={"y": [3.0e6, 2.99e6, 2.98e6], "x": [4.0e6, 4.01e6, 4.02e6, 4.03e6]},
    )
    item = netcdf_item(tmp_path / "nocrs.nc", dataset)
    with pytest.raises(InputError, match="cube 'cube' in, item 'n': .* has no CRS"):
        open_item(item, InputSpec(collection="c"), "cube", "in")


def test_band_names_from_stac_bands_and_nodata_override(tmp_path) -> None:
    path = tmp_path / "two.tif"
    bands = [np.full((8, 8), 7, np.int16), np.full((8, 8), 9, np.int16)]
    data.write_gtiff(path, Affine(30, 0, data.WEST, 0, -30, data.NORTH), bands, nodata=None)
    geometry = data.footprint(Affine(30, 0, data.WEST, 0, -30, data.NORTH), 8, 8, data.GRID_CRS)
    item = data.file_item(
        "t", "c", str(path), data.GTIFF, geometry, WHEN, bands=[{"name": "red"}, {"name": "nir"}]
    )
    opened = open_item(item, InputSpec(collection="c", nodata=-1), "cube", "in")
    assert list(opened.dataset.data_vars) == ["red", "nir"]
    assert opened.nodata == {"red": -1, "nir": -1}
    assert opened.dataset["nir"].dtype == np.int16
