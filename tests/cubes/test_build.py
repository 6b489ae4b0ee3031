"""One cube from five heterogeneous inputs (the forest-recovery case, small), checked against
GDAL: grid, chunks, values at sampled pixels, dtypes and nodata.

The inputs: a categorical GeoTIFF (EPSG:3035, 10 m, mode), a three-band float GeoTIFF half
a pixel off the grid (bilinear), a NetCDF time series in EPSG:4326 (bilinear), a Zarr
ensemble in EPSG:4326 reduced by user code (bilinear) and a uint8 NetCDF time series on the
grid's own lattice (nearest). The cube is built once for the module through the real runner
(catalogue items, dask cluster, Zarr write, publish) and each test checks one behaviour.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
from pyproj import CRS

from catalogue.repositories.items import get_item
from catalogue.repositories.jobs import JobStatus
from tests.cubes import data
from tests.cubes.conftest import build, seed
from tests.cubes.oracle import gdal_warp, sample_pixels

HOOKS = """
import xarray as xr


def member_mean(ds: xr.Dataset) -> xr.Dataset:
    return ds.mean("member", skipna=True, keep_attrs=True)
"""


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, data.Source]:
    folder = tmp_path_factory.mktemp("inputs")
    return {
        "forest_type": data.forest_type(folder),
        "biomass": data.biomass(folder),
        "cci": data.cci_biomass(folder),
        "forest_age": data.forest_age(folder),
        "disturbance": data.disturbance(folder),
    }


def forest_cube() -> dict[str, Any]:
    return {
        "id": "forest",
        "collection": "scs2",
        "title": "Forest recovery",
        "grid": data.GRID,
        "inputs": [
            {"collection": "forest-type", "resampling": "mode"},
            {"collection": "biomass", "resampling": "bilinear"},
            {
                "collection": "cci-biomass",
                "resampling": "bilinear",
                "variables": ["agb"],
                "rename": {"agb": "cci_agb"},
            },
            {
                "collection": "forest-age",
                "resampling": "bilinear",
                "processing": "hooks_build:member_mean",
            },
            {"collection": "disturbance", "resampling": "nearest"},
        ],
    }


@pytest.fixture(scope="module")
async def built(module_database, sources, compute_pool, tmp_path_factory) -> dict[str, Any]:
    config_dir = tmp_path_factory.mktemp("config")
    (config_dir / "hooks_build.py").write_text(textwrap.dedent(HOOKS))
    await seed(module_database, [source.item for source in sources.values()])
    root = tmp_path_factory.mktemp("cubes")
    [result] = await build(module_database, [forest_cube()], root, compute_pool, config_dir)
    assert result.status is JobStatus.SUCCEEDED, result.message
    async with module_database.read() as conn:
        item = await get_item(conn, "scs2", "forest")
    href = item["assets"]["zarr"]["href"]
    return {"result": result, "item": item, "href": href, "root": root}


@pytest.fixture(scope="module")
def cube(built) -> xr.Dataset:
    """The cube as stored: no CF decoding, so dtypes and fill values are the raw ones."""
    return xr.open_zarr(built["href"], consolidated=True, mask_and_scale=False)


def test_the_store_is_under_the_cube_root_and_the_item_points_at_its_full_resolution(
    built,
) -> None:
    href = Path(built["href"])
    assert href.is_relative_to(built["root"])
    assert href.relative_to(built["root"]).parts[:2] == ("scs2", "forest")
    assert href.name == "0" and href.parent.suffix == ".zarr"
    assert (href / ".zmetadata").is_file() and (href.parent / ".zmetadata").is_file()


def test_grid_shape_and_pixel_centre_coordinates(cube) -> None:
    assert (cube.sizes["y"], cube.sizes["x"]) == (data.HEIGHT, data.WIDTH)
    np.testing.assert_array_equal(cube.x.values, data.WEST + (np.arange(data.WIDTH) + 0.5) * 30)
    np.testing.assert_array_equal(cube.y.values, data.NORTH - (np.arange(data.HEIGHT) + 0.5) * 30)


def test_grid_mapping_names_the_crs(cube) -> None:
    spatial_ref = cube["spatial_ref"]
    assert CRS.from_wkt(spatial_ref.attrs["crs_wkt"]).to_epsg() == 3035
    assert spatial_ref.attrs["grid_mapping_name"] == "lambert_azimuthal_equal_area"
    assert all(cube[name].attrs["grid_mapping"] == "spatial_ref" for name in cube.data_vars)
    transform = [float(v) for v in spatial_ref.attrs["GeoTransform"].split()]
    assert transform == [data.WEST, 30.0, 0.0, data.NORTH, 0.0, -30.0]


def test_chunks_are_tiles_in_space_and_one_step_in_time(cube) -> None:
    for name, variable in cube.data_vars.items():
        expected = tuple(data.TILE if d in ("y", "x") else 1 for d in variable.dims)
        assert variable.encoding["chunks"] == expected, name
    assert cube["cci_agb"].dims == ("time", "y", "x")


def test_consolidated_zarr_format_2_with_blosc_zstd(built) -> None:
    import json

    metadata = json.loads((Path(built["href"]) / ".zmetadata").read_text())["metadata"]
    array = metadata["forest_type/.zarray"]
    assert array["zarr_format"] == 2
    assert array["compressor"]["id"] == "blosc" and array["compressor"]["cname"] == "zstd"


def test_categorical_mode_matches_gdal_and_stays_uint8(cube, sources) -> None:
    source = sources["forest_type"]
    expected = gdal_warp(source.arrays["forest_type"], source, "mode")
    rows, cols = sample_pixels()
    got = cube["forest_type"].values
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got[rows, cols], expected[rows, cols])
    assert set(np.unique(got)) <= {0, 1, 2, 3, 4, 5}
    assert cube["forest_type"].attrs["_FillValue"] == 0


@pytest.mark.parametrize("band", ["agb", "canopy_cover", "canopy_height"])
def test_bilinear_half_pixel_offset_matches_gdal(cube, sources, band) -> None:
    source = sources["biomass"]
    expected = gdal_warp(source.arrays[band], source, "bilinear")
    rows, cols = sample_pixels()
    got = cube[band].values
    assert got.dtype == np.float32
    np.testing.assert_allclose(got[rows, cols], expected[rows, cols], rtol=0, atol=1e-4)


def test_geographic_time_series_matches_gdal_per_step(cube, sources) -> None:
    source = sources["cci"]
    rows, cols = sample_pixels()
    for index, moment in enumerate(source.times):
        expected = gdal_warp(source.arrays["agb"][index], source, "bilinear")
        got = cube["cci_agb"].sel(time=np.datetime64(moment.replace(tzinfo=None), "ns")).values
        both = ~np.isnan(expected[rows, cols]) & ~np.isnan(got[rows, cols])
        assert both.mean() > 0.8
        assert np.array_equal(np.isnan(got[rows, cols]), np.isnan(expected[rows, cols]))
        np.testing.assert_allclose(got[rows, cols][both], expected[rows, cols][both], atol=0.05)


def test_ensemble_reduced_by_user_code_then_warped_like_gdal(cube, sources) -> None:
    source = sources["forest_age"]
    with np.errstate(invalid="ignore"):
        mean = np.nanmean(source.arrays["forest_age"], axis=0).astype(np.float32)
    expected = gdal_warp(mean, source, "bilinear")
    rows, cols = sample_pixels()
    got = cube["forest_age"].values
    assert cube["forest_age"].dims == ("y", "x") and got.dtype == np.float32
    both = ~np.isnan(expected[rows, cols])
    np.testing.assert_allclose(got[rows, cols][both], expected[rows, cols][both], atol=0.05)


def test_aligned_uint8_layer_is_copied_exactly_with_its_flags(cube, sources) -> None:
    source = sources["disturbance"]
    variable = cube["annual_disturbances"]
    assert variable.dtype == np.uint8 and variable.attrs["_FillValue"] == 255
    assert variable.attrs["flag_meanings"] == "undisturbed disturbed"
    for index, moment in enumerate(source.times):
        expected = gdal_warp(source.arrays["annual_disturbances"][index], source, "nearest")
        got = variable.sel(time=np.datetime64(moment.replace(tzinfo=None), "ns")).values
        np.testing.assert_array_equal(got, expected)


def test_time_axes_of_inputs_are_merged_without_changing_dtypes(cube, sources) -> None:
    years = sorted({t.year for s in ("cci", "disturbance") for t in sources[s].times})
    assert [int(str(t)[:4]) for t in cube.time.values] == years
    before = cube["annual_disturbances"].sel(time="2007").values
    assert before.dtype == np.uint8 and (before == 255).all()


def test_decoded_reading_masks_nodata(built) -> None:
    decoded = xr.open_zarr(built["href"], consolidated=True)
    assert np.isnan(decoded["forest_type"].values).any()
    assert decoded["cci_agb"].dtype == np.float32
