"""EDR queries on cubes built by the real builder (catalogue items -> dask -> Zarr levels ->
published item): a time series of a reprojected NetCDF input and a categorical GeoTIFF,
answered with the values xarray reads from the item's href, from the time-series layout
(`forest`, built with `timeseries: {chunk: 16}`) and from the map layout (`forest-map`)."""

from __future__ import annotations

import httpx
import numpy as np
import pytest
import shapely
import xarray as xr
from pyproj import Transformer

from api import create_app
from catalogue.repositories.items import get_item
from catalogue.repositories.jobs import JobStatus
from tests.cubes import data
from tests.cubes.conftest import (  # noqa: F401 - module fixtures, shared with the cube tests
    build,
    compute_pool,
    module_database,
    module_db_url,
    seed,
)
from tests.helpers import make_settings

INPUTS = [
    {"collection": "cci-biomass", "resampling": "bilinear", "variables": ["agb"]},
    {"collection": "forest-type", "resampling": "mode"},
]
CUBES = [
    {"id": "forest", "collection": "scs2", "grid": data.GRID, "inputs": INPUTS,
     "timeseries": {"chunk": 16}},
    {"id": "forest-map", "collection": "scs2", "grid": data.GRID, "inputs": INPUTS},
]  # fmt: skip
LAYOUTS = {"forest": "timeseries", "forest-map": "map"}


@pytest.fixture(scope="module")
async def built(module_database, compute_pool, tmp_path_factory) -> dict:  # noqa: F811
    folder = tmp_path_factory.mktemp("inputs")
    sources = [data.cci_biomass(folder), data.forest_type(folder)]
    await seed(module_database, [source.item for source in sources])
    root = tmp_path_factory.mktemp("cubes")
    results = await build(module_database, CUBES, root, compute_pool)
    assert all(r.status is JobStatus.SUCCEEDED for r in results), [r.message for r in results]
    async with module_database.read() as conn:
        return {cube["id"]: await get_item(conn, "scs2", cube["id"]) for cube in CUBES}


@pytest.fixture
async def client(module_db_url, module_database, built):  # noqa: F811
    app = create_app(make_settings(module_db_url), database=module_database)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        yield http


def opened(item: dict) -> xr.Dataset:
    asset = item["assets"]["zarr"]
    return xr.open_zarr(asset["href"], **asset["xarray:open_kwargs"])


@pytest.mark.parametrize("item_id", ["forest", "forest-map"])
@pytest.mark.parametrize(("row", "col"), [(10, 10), (80, 100), (159, 199), (60, 66)])
async def test_position_is_what_xarray_reads_at_the_pixel(client, built, item_id, row, col):
    item = built[item_id]
    cube = opened(item)
    x, y = float(cube["x"][col]), float(cube["y"][row])
    lon, lat = Transformer.from_crs(data.GRID_CRS, "EPSG:4326", always_xy=True).transform(x, y)
    response = await client.get(
        f"/collections/scs2/items/{item_id}/position",
        params={"coords": f"POINT({lon} {lat})", "parameter-name": "agb,forest_type"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["cubestac-layout"] == LAYOUTS[item_id]
    body = response.json()
    assert len(body["domain"]["axes"]["t"]["values"]) == cube.sizes["time"] == 4
    agb = cube["agb"].sel(x=x, y=y, method="nearest").values
    got = np.array([np.nan if v is None else v for v in body["ranges"]["agb"]["values"]])
    np.testing.assert_array_equal(got.astype(agb.dtype), agb)
    forest_type = cube["forest_type"].sel(x=x, y=y, method="nearest").values
    nodata = item["properties"]["cube:variables"]["forest_type"]["nodata"]
    wanted = [None if v == nodata else int(v) for v in np.broadcast_to(forest_type, (4,))]
    assert body["ranges"]["forest_type"]["values"] == wanted


@pytest.mark.parametrize("item_id", ["forest", "forest-map"])
async def test_area_counts_the_pixels_whose_centres_it_holds(client, built, item_id) -> None:
    cube = opened(built[item_id])
    to_geo = Transformer.from_crs(data.GRID_CRS, "EPSG:4326", always_xy=True)
    west, south, east, north = 4_000_600.0, 2_999_100.0, 4_003_000.0, 3_002_700.0
    ring = [(west, south), (east, south), (east, north), (west, south)]  # a triangle
    polygon = shapely.Polygon([to_geo.transform(x, y) for x, y in ring])
    response = await client.get(
        f"/collections/scs2/items/{item_id}/area",
        params={"coords": polygon.wkt, "parameter-name": "agb", "f": "csv"},
    )
    assert response.status_code == 200, response.text
    xs, ys = np.meshgrid(cube["x"].values, cube["y"].values)
    inside = shapely.contains_xy(polygon, *to_geo.transform(xs, ys))
    values = cube["agb"].values[:, inside]
    lines = response.text.splitlines()
    assert lines[0] == "datetime,pixels,agb_mean,agb_min,agb_max,agb_count"
    for line, step in zip(lines[1:], values, strict=True):
        _, pixels, mean, low, high, count = line.split(",")
        valid = step[~np.isnan(step)]
        assert (int(pixels), int(count)) == (int(inside.sum()), valid.size)
        assert float(mean) == pytest.approx(valid.astype("float64").mean(), rel=1e-12)
        assert (np.float32(low), np.float32(high)) == (valid.min(), valid.max())


def test_the_built_cube_has_the_time_series_layout(built) -> None:
    """What the queries above rely on: `forest` carries the `zarr-timeseries` asset."""
    assert "zarr-timeseries" in built["forest"]["assets"]
    assert "zarr-timeseries" not in built["forest-map"]["assets"]
