"""Multi-resolution levels and the time-series layout of a built cube (issue 15): the store is
a GeoZarr multiscales group whose levels are level 0 downsampled (mode for classes, average
for the rest, nodata skipped), the item's `zarr` asset still opens the full resolution, and
`zarr-multiscales` / `zarr-timeseries` open what they say.

One cube (the forest-recovery test inputs, 200 x 160 px, tiles of 64: levels of 200, 100
and 50 px) is built through the real runner for the module."""

from __future__ import annotations

import textwrap
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rioxarray  # noqa: F401 - registers the `.rio` accessor
import xarray as xr
import zarr

from catalogue.cube_layout import (
    MULTISCALES_UUID,
    PYRAMID_ASSET,
    TIMESERIES_ASSET,
    levels_from_attrs,
    store_url,
)
from catalogue.repositories.items import get_item
from catalogue.repositories.jobs import JobStatus
from catalogue.serializers import row_to_item
from tests.cubes import data
from tests.cubes.conftest import build, seed
from tests.cubes.test_build import HOOKS, forest_cube
from tests.stac_schemas import validate_offline

CLASSIFICATION = "https://stac-extensions.github.io/classification/v2.0.0/schema.json"
SHAPES = [(160, 200), (80, 100), (40, 50)]


@pytest.fixture(scope="module")
async def built(module_database, compute_pool, tmp_path_factory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("inputs")
    sources = [
        data.forest_type(folder), data.biomass(folder), data.cci_biomass(folder),
        data.forest_age(folder), data.disturbance(folder),
    ]  # fmt: skip
    config_dir = tmp_path_factory.mktemp("config")
    (config_dir / "hooks_build.py").write_text(textwrap.dedent(HOOKS))
    await seed(module_database, [source.item for source in sources])
    root = tmp_path_factory.mktemp("cubes")
    spec = {**forest_cube(), "timeseries": True}
    [result] = await build(module_database, [spec], root, compute_pool, config_dir)
    assert result.status is JobStatus.SUCCEEDED, result.message
    async with module_database.read() as conn:
        item = await get_item(conn, "scs2", "forest")
    return {"item": item, "store": store_url(result.href), "result": result}


def _open(href: str, **kwargs: Any) -> xr.Dataset:
    return xr.open_zarr(href, consolidated=True, mask_and_scale=False, **kwargs)


@pytest.fixture(scope="module")
def full(built) -> xr.Dataset:
    return _open(built["item"]["assets"]["zarr"]["href"])


def test_the_zarr_asset_opens_the_full_resolution_and_the_store_holds_the_levels(built) -> None:
    href = built["item"]["assets"]["zarr"]["href"]
    assert href == f"{built['store']}/0" and store_url(href) == built["store"]
    cube = xr.open_zarr(href, **built["item"]["assets"]["zarr"]["xarray:open_kwargs"])
    assert (cube.sizes["y"], cube.sizes["x"]) == SHAPES[0]
    assert set(cube.data_vars) >= {"forest_type", "agb", "cci_agb", "annual_disturbances"}
    pyramid = built["item"]["assets"][PYRAMID_ASSET]
    tree = xr.open_datatree(pyramid["href"], engine="zarr", **pyramid["xarray:open_kwargs"])
    assert set(tree.children) == {"0", "1", "2", "timeseries"}
    coarse = tree["2"].to_dataset()
    assert coarse["forest_type"].dtype == np.uint8 and coarse["agb"].dtype == np.float32


def test_levels_halve_down_to_one_tile_and_parse_back(built) -> None:
    attrs = dict(zarr.open_consolidated(built["store"], mode="r").attrs)
    assert MULTISCALES_UUID in [c["uuid"] for c in attrs["zarr_conventions"]]
    levels = levels_from_attrs(attrs)
    assert [level.path for level in levels] == ["0", "1", "2"]
    assert [level.scale for level in levels] == [1.0, 2.0, 4.0]
    assert [level.shape for level in levels] == SHAPES
    assert max(SHAPES[-1]) <= data.TILE < max(SHAPES[-2])
    for level in levels:
        res = data.RES * level.scale
        assert level.transform == (res, 0.0, data.WEST, 0.0, -res, data.NORTH)
        group = _open(f"{built['store']}/{level.path}")
        assert (group.sizes["y"], group.sizes["x"]) == level.shape
        assert group["agb"].encoding["chunks"] == tuple(min(data.TILE, n) for n in level.shape)


def test_root_carries_geozarr_projection_and_spatial_attributes(built) -> None:
    attrs = dict(zarr.open_consolidated(built["store"], mode="r").attrs)
    assert attrs["proj:code"] == "EPSG:3035" and "proj:wkt2" not in attrs  # one, not both
    assert attrs["spatial:dimensions"] == ["y", "x"]
    assert attrs["spatial:shape"] == list(SHAPES[0])
    assert attrs["spatial:transform"] == [data.RES, 0.0, data.WEST, 0.0, -data.RES, data.NORTH]


@pytest.mark.parametrize("path", ["1", "2"])
def test_rioxarray_opens_a_level_with_its_own_transform(built, path) -> None:
    level = xr.open_zarr(f"{built['store']}/{path}", consolidated=True, decode_coords="all")
    factor = 2 ** int(path)
    transform = level["agb"].rio.transform()
    assert tuple(transform)[:6] == (
        data.RES * factor, 0.0, data.WEST, 0.0, -data.RES * factor, data.NORTH,
    )  # fmt: skip
    assert level["agb"].rio.crs.to_epsg() == 3035
    spatial_ref = level["spatial_ref"].attrs["GeoTransform"].split()
    assert [float(v) for v in spatial_ref] == [
        data.WEST, data.RES * factor, 0.0, data.NORTH, 0.0, -data.RES * factor,
    ]  # fmt: skip


def _coarsen_mean(values: np.ndarray, factor: int) -> np.ndarray:
    """Reference: mean of valid pixels per window, NaN where a window has none."""
    *lead, height, width = values.shape
    padded = np.full((*lead, -(-height // factor) * factor, -(-width // factor) * factor), np.nan)
    padded[..., :height, :width] = values
    windows = padded.reshape(*lead, padded.shape[-2] // factor, factor, -1, factor)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows: NaN, as expected
        return np.nanmean(windows, axis=(-3, -1))


@pytest.mark.parametrize("name", ["agb", "cci_agb", "forest_age"])
@pytest.mark.parametrize("path", ["1", "2"])
def test_continuous_levels_are_the_average_of_valid_pixels(built, full, name, path) -> None:
    level = _open(f"{built['store']}/{path}")
    expected = _coarsen_mean(full[name].values.astype(np.float64), 2 ** int(path))
    assert level[name].dtype == full[name].dtype
    np.testing.assert_allclose(level[name].values, expected, rtol=1e-6, equal_nan=True)
    assert np.isnan(full[name].values).any()  # the inputs' holes reached level 0 ...
    assert np.isnan(level[name].values).sum() < np.isnan(full[name].values).sum()  # ... shrink


def _reference_mode(values: np.ndarray, factor: int, nodata: int) -> np.ndarray:
    height, width = values.shape[-2:]
    out = np.full((*values.shape[:-2], -(-height // factor), -(-width // factor)), nodata)
    for index in np.ndindex(out.shape):
        *lead, row, col = index
        window = values[(*lead, slice(row * factor, (row + 1) * factor),
                         slice(col * factor, (col + 1) * factor))]  # fmt: skip
        valid = window[window != nodata]
        if valid.size:
            classes, counts = np.unique(valid, return_counts=True)
            out[index] = classes[np.argmax(counts)]  # the smallest class on ties
    return out


@pytest.mark.parametrize(("name", "nodata"), [("forest_type", 0), ("annual_disturbances", 255)])
@pytest.mark.parametrize("path", ["1", "2"])
def test_categorical_levels_are_the_mode_and_stay_classes(built, full, name, nodata, path) -> None:
    level = _open(f"{built['store']}/{path}")
    values = level[name].values
    assert level[name].dtype == full[name].dtype
    assert set(np.unique(values)) <= set(np.unique(full[name].values))
    expected = _reference_mode(full[name].values, 2 ** int(path), nodata)
    np.testing.assert_array_equal(values, expected)


def test_classes_from_cf_flags_reach_the_zarr_attrs_and_the_item(built, full) -> None:
    flags = full["annual_disturbances"].attrs
    assert list(flags["flag_values"]) == [0, 1]
    assert flags["flag_meanings"] == "undisturbed disturbed"
    variables = built["item"]["properties"]["cube:variables"]
    assert variables["annual_disturbances"]["classification:classes"] == [
        {"value": 0, "name": "undisturbed"},
        {"value": 1, "name": "disturbed"},
    ]
    assert CLASSIFICATION in built["item"]["stac_extensions"]


def test_the_item_with_its_three_zarr_assets_is_valid_stac(built) -> None:
    item = row_to_item(dict(built["item"]), "http://testserver/")
    assert CLASSIFICATION in validate_offline(item)
    assets = built["item"]["assets"]
    assert set(assets) == {"zarr", PYRAMID_ASSET, TIMESERIES_ASSET}
    pyramid = assets[PYRAMID_ASSET]
    assert pyramid["href"] == built["store"] and pyramid["zarr:node_type"] == "group"
    assert pyramid["roles"] == ["data", "overview"] and "open_datatree" in pyramid["description"]
    assert [lv["shape"] for lv in pyramid["multiscales"]["levels"]] == [list(s) for s in SHAPES]
    assert pyramid["multiscales"]["resampling"]["forest_type"] == "mode"
    assert pyramid["multiscales"]["resampling"]["agb"] == "average"
    series = assets[TIMESERIES_ASSET]
    assert series["href"] == f"{built['store']}/timeseries"
    assert series["roles"] == ["data", "timeseries"]
    for key in ("type", "xarray:open_kwargs", "xarray:storage_options", "zarr:zarr_format"):
        assert series[key] == pyramid[key] == assets["zarr"][key]


def test_the_timeseries_asset_equals_level_0_chunked_along_time(built, full) -> None:
    asset = built["item"]["assets"][TIMESERIES_ASSET]
    series = xr.open_zarr(asset["href"], **asset["xarray:open_kwargs"])
    reference = xr.open_zarr(**_href_and_kwargs(built["item"]["assets"]["zarr"]))
    xr.testing.assert_identical(series.compute(), reference.compute())
    steps = series.sizes["time"]
    chunks = series["cci_agb"].encoding["chunks"]
    assert chunks[0] == steps and chunks[1] == chunks[2] <= data.TILE
    assert series["forest_type"].encoding["chunks"] == full["forest_type"].encoding["chunks"]


def _href_and_kwargs(asset: dict[str, Any]) -> dict[str, Any]:
    return {"store": asset["href"], **asset["xarray:open_kwargs"]}


def test_the_job_counts_the_levels(built) -> None:
    assert built["result"].counts["levels"] == 3
    assert Path(built["store"], "timeseries", ".zmetadata").is_file()


@pytest.mark.parametrize("group", ["1", "2", "timeseries"])
def test_derived_groups_use_the_fast_member_of_the_cube_codec(built, full, group) -> None:
    (level0,) = full["agb"].encoding["compressors"]
    (derived,) = _open(f"{built['store']}/{group}")["agb"].encoding["compressors"]
    assert (level0.cname, derived.cname) == ("zstd", "lz4")
    assert derived.shuffle == level0.shuffle
    (classes,) = _open(f"{built['store']}/{group}")["forest_type"].encoding["compressors"]
    assert classes.cname == "zstd"  # class maps keep the cube's compressor
