"""Time: range selection and aggregation to periods are exact; items become time steps and
several items per step are mosaicked.

The inputs sit on the test grid's own lattice (EPSG:3035, 30 m, same corner), so regridding
is an exact copy and every expected value can be computed with numpy from the source.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
from affine import Affine
from pyproj import CRS

from catalogue.repositories.items import get_item
from catalogue.repositories.jobs import JobStatus
from tests.cubes import data
from tests.cubes.conftest import build, seed

MONTHS = [datetime(2019 + m // 12, m % 12 + 1, 1) for m in range(24)]  # 2019-01 .. 2020-12
RANGE = ("2019-03-01", "2020-10-31")
ONE_TILE = {**data.GRID, "tile_size": 256}  # values, not tiling, are under test here


def monthly_netcdf(folder: Path, values: np.ndarray, nodata: float | int) -> dict[str, Any]:
    wkt = CRS.from_epsg(3035).to_wkt()
    xs, ys = data.centres(data.target_transform(), data.WIDTH, data.HEIGHT)
    dataset = xr.Dataset(
        {
            "v": (("time", "y", "x"), values, {"grid_mapping": "spatial_ref", "units": "1"}),
            "spatial_ref": ((), np.int32(0), {"crs_wkt": wkt}),
        },
        coords={"time": np.array(MONTHS, "datetime64[ns]"), "y": ys, "x": xs},
    )
    path = folder / f"monthly-{values.dtype.name}.nc"
    dataset.to_netcdf(path, encoding={"v": {"_FillValue": values.dtype.type(nodata)}})
    geometry = data.footprint(data.target_transform(), data.WIDTH, data.HEIGHT, data.GRID_CRS)
    return data.file_item(
        "monthly", "monthly", str(path), data.NETCDF, geometry,
        datetime(2019, 1, 1, tzinfo=UTC), until=datetime(2020, 12, 31, tzinfo=UTC),
    )  # fmt: skip


def float_series() -> np.ndarray:
    """Multiples of 0.25 (sums are exact in float32), 20 % missing, one all-missing pixel."""
    rng = np.random.default_rng(3)
    values = (rng.integers(0, 400, (len(MONTHS), data.HEIGHT, data.WIDTH)) / 4).astype("f4")
    values[rng.random(values.shape) < 0.2] = np.nan
    values[:, 5, 7] = np.nan
    return values


def in_range_by_year(values: np.ndarray) -> list[np.ndarray]:
    months = np.array([np.datetime64(m) for m in MONTHS])
    start, end = (np.datetime64(v) for v in RANGE)
    keep = (months >= start) & (months <= end)
    years = np.array([m.year for m in MONTHS])
    return [values[keep & (years == year)] for year in (2019, 2020)]


def nan_first(stack: np.ndarray, last: bool = False) -> np.ndarray:
    ordered = stack[::-1] if last else stack
    valid = ~np.isnan(ordered)
    index = np.argmax(valid, axis=0)
    picked = np.take_along_axis(ordered, index[None], axis=0)[0]
    return np.where(valid.any(axis=0), picked, np.nan)


EXPECTED = {
    "mean": lambda s: np.nanmean(s, axis=0),
    "median": lambda s: np.nanmedian(s, axis=0),
    "min": lambda s: np.nanmin(s, axis=0),
    "max": lambda s: np.nanmax(s, axis=0),
    "sum": lambda s: np.where(np.isnan(s).all(axis=0), np.nan, np.nansum(s, axis=0)),
    "count": lambda s: (~np.isnan(s)).sum(axis=0),
    "first": nan_first,
    "last": lambda s: nan_first(s, last=True),
}
EXACT = {"min", "max", "sum", "count", "first", "last"}


def aggregated_cube(method: str, period: str = "1Y") -> dict[str, Any]:
    return {
        "id": f"monthly-{method}",
        "collection": "aggregates",
        "grid": ONE_TILE,
        "time": {"range": list(RANGE), "period": period, "method": method},
        "inputs": [{"collection": "monthly"}],
    }


async def built_cube(database, specs, root, pool) -> xr.Dataset:
    [result] = await build(database, specs, root, pool)
    assert result.status is JobStatus.SUCCEEDED, result.message
    async with database.read() as conn:
        item = await get_item(conn, specs[0]["collection"], specs[0]["id"])
    return xr.open_zarr(item["assets"]["zarr"]["href"], mask_and_scale=False)


@pytest.mark.parametrize("method", list(EXPECTED))
async def test_yearly_aggregation_over_a_range_is_exact(
    database, compute_pool, tmp_path, method
) -> None:
    values = float_series()
    await seed(database, [monthly_netcdf(tmp_path, values, np.nan)])
    cube = await built_cube(database, [aggregated_cube(method)], tmp_path / "cubes", compute_pool)
    assert [str(t)[:10] for t in cube.time.values] == ["2019-01-01", "2020-01-01"]
    with _quiet():
        expected = [EXPECTED[method](stack) for stack in in_range_by_year(values)]
    for index, wanted in enumerate(expected):
        got = cube["v"].isel(time=index).values
        if method == "count":
            assert got.dtype == np.int32
            np.testing.assert_array_equal(got, wanted)
        elif method in EXACT:
            assert got.dtype == np.float32
            np.testing.assert_array_equal(got, wanted.astype(np.float32))
        else:
            np.testing.assert_allclose(got, wanted, rtol=1e-6)
    assert np.isnan(cube["v"].isel(time=0).values[5, 7]) or method == "count"


@pytest.mark.parametrize(
    ("method", "dtype"),
    [("max", "uint8"), ("last", "uint8"), ("mean", "float32"), ("count", "int32")],
)
async def test_integer_class_layers_keep_their_dtype_where_the_method_allows(
    database, compute_pool, tmp_path, method, dtype
) -> None:
    rng = np.random.default_rng(4)
    values = rng.integers(0, 2, (len(MONTHS), data.HEIGHT, data.WIDTH)).astype(np.uint8)
    values[rng.random(values.shape) < 0.3] = 255
    values[:, 0, 0] = 255
    await seed(database, [monthly_netcdf(tmp_path, values, 255)])
    cube = await built_cube(database, [aggregated_cube(method)], tmp_path / "cubes", compute_pool)
    variable = cube["v"]
    assert variable.dtype == np.dtype(dtype)
    masked = np.where(values == 255, np.nan, values.astype("f8"))
    with _quiet():
        wanted = EXPECTED[method](in_range_by_year(masked)[1])
    got = variable.isel(time=1).values
    if dtype == "uint8":
        assert variable.attrs["_FillValue"] == 255 and got[0, 0] == 255
        wanted = np.where(np.isnan(wanted), 255, wanted)
        np.testing.assert_array_equal(got, wanted.astype(np.uint8))
    else:
        np.testing.assert_allclose(got, wanted, rtol=1e-6)


async def test_without_a_period_the_range_selects_steps(database, compute_pool, tmp_path) -> None:
    values = float_series()
    await seed(database, [monthly_netcdf(tmp_path, values, np.nan)])
    spec = {**aggregated_cube("mean"), "time": {"range": list(RANGE)}}
    cube = await built_cube(database, [spec], tmp_path / "cubes", compute_pool)
    assert [str(t)[:7] for t in cube.time.values] == [f"{m:%Y-%m}" for m in MONTHS[2:22]]
    np.testing.assert_array_equal(cube["v"].values, values[2:22])


def tile_items(folder: Path) -> list[dict[str, Any]]:
    """Two dates x two overlapping tiles (west, east) on the grid lattice; value = 10 * date
    + tile; the west tile has a nodata hole inside the overlap."""
    items = []
    half = data.WIDTH // 2
    for day, when in enumerate(
        [datetime(2021, 5, 1, tzinfo=UTC), datetime(2021, 6, 1, tzinfo=UTC)]
    ):
        for tile, (col0, col1) in enumerate([(0, half + 20), (half - 20, data.WIDTH)]):
            width = col1 - col0
            array = np.full((data.HEIGHT, width), 10 * (day + 1) + tile + 1, np.uint8)
            if tile == 0:
                array[10:30, half - 15 : half] = 0  # shows the east tile through
            transform = data.target_transform() * Affine.translation(col0, 0)
            path = folder / f"tile-{day}-{tile}.tif"
            data.write_gtiff(path, transform, [array], nodata=0)
            geometry = data.footprint(transform, width, data.HEIGHT, data.GRID_CRS)
            name = ["west", "east"][tile]
            item = data.file_item(f"{name}-{day}", "tiles", str(path), data.GTIFF, geometry, when)
            item["properties"]["tile"] = name
            items.append(item)
    return items


async def test_items_become_time_steps_and_tiles_are_mosaicked(
    database, compute_pool, tmp_path
) -> None:
    await seed(database, tile_items(tmp_path))
    spec = {"id": "mosaic", "collection": "mosaics", "grid": ONE_TILE,
            "inputs": [{"collection": "tiles"}]}  # fmt: skip
    cube = await built_cube(database, [spec], tmp_path / "cubes", compute_pool)
    assert [str(t)[:10] for t in cube.time.values] == ["2021-05-01", "2021-06-01"]
    half = data.WIDTH // 2
    for day in range(2):
        got = cube["data"].isel(time=day).values.copy()
        assert got.dtype == np.uint8
        west, east = 10 * (day + 1) + 1, 10 * (day + 1) + 2
        assert (got[:, half + 20 :] == east).all()
        # catalogue order (newest, then id descending) puts west first: it wins the overlap,
        # except in its hole, where the east tile shows through
        assert (got[10:30, half - 15 : half] == east).all()
        got[10:30, half - 15 : half] = west
        assert (got[:, : half + 20] == west).all()


async def test_a_cql2_filter_selects_the_items_of_an_input(
    database, compute_pool, tmp_path
) -> None:
    await seed(database, tile_items(tmp_path))
    chosen = "tile = 'west' AND datetime > TIMESTAMP('2021-05-15T00:00:00Z')"
    spec = {"id": "west", "collection": "mosaics", "grid": data.GRID,
            "inputs": [{"collection": "tiles", "filter": chosen}]}  # fmt: skip
    cube = await built_cube(database, [spec], tmp_path / "cubes", compute_pool)
    got = cube["data"].values
    assert got.ndim == 2  # one item: no time axis
    half = data.WIDTH // 2
    assert (got[:, : half - 20] == 21).all() and (got[:, half + 20 :] == 0).all()


class _quiet:
    """numpy's all-NaN warnings are expected in the oracle."""

    def __enter__(self) -> None:
        import warnings

        self._catch = warnings.catch_warnings()
        self._catch.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc: object) -> None:
        self._catch.__exit__(*exc)
