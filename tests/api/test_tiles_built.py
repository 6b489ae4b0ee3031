"""Map tiles of cubes built by the real builder (catalogue items -> dask -> Zarr levels ->
published item): the colour at a pixel is the colormap applied to the value xarray reads
there, classes get their colours, the item carries working web-map-links."""

from __future__ import annotations

import httpx
import numpy as np
import pytest
import xarray as xr
from pyproj import Transformer
from rio_tiler.colormap import cmap

from api import create_app
from catalogue.cube_layout import group_url, levels_from_attrs, store_url
from catalogue.repositories.items import get_item
from catalogue.repositories.jobs import JobStatus
from tests.api.map_client import rgba, tile_pixel, web_mercator
from tests.cubes import data
from tests.cubes.conftest import (  # noqa: F401 - module fixtures, shared with the cube tests
    build,
    compute_pool,
    module_database,
    module_db_url,
    seed,
)
from tests.helpers import make_settings

CUBE = {
    "id": "forest-tiles",
    "collection": "scs2",
    "grid": data.GRID,
    "inputs": [
        {"collection": "cci-biomass", "resampling": "bilinear", "variables": ["agb"]},
        {"collection": "forest-type", "resampling": "mode"},
    ],
}
ITEM_URL = "/collections/scs2/items/forest-tiles"
PIXELS = [(10, 10), (80, 100), (150, 190), (60, 66)]
ZOOM = 17  # tile pixels of ~0.5 m: the one holding a cube pixel's centre lies inside it


@pytest.fixture(scope="module")
async def built(module_database, compute_pool, tmp_path_factory) -> dict:  # noqa: F811
    folder = tmp_path_factory.mktemp("inputs")
    sources = [data.cci_biomass(folder), data.forest_type(folder)]
    await seed(module_database, [source.item for source in sources])
    [result] = await build(module_database, [CUBE], tmp_path_factory.mktemp("cubes"), compute_pool)
    assert result.status is JobStatus.SUCCEEDED, result.message
    async with module_database.read() as conn:
        return await get_item(conn, "scs2", "forest-tiles")


@pytest.fixture
async def client(module_db_url, module_database, built):  # noqa: F811
    app = create_app(make_settings(module_db_url), database=module_database)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        yield http


def _opened(item: dict) -> xr.Dataset:
    asset = item["assets"]["zarr"]
    return xr.open_zarr(asset["href"], **asset["xarray:open_kwargs"])


def _coarsest(item: dict) -> xr.Dataset:
    import zarr

    store = store_url(item["assets"]["zarr"]["href"])
    levels = levels_from_attrs(dict(zarr.open_group(store, mode="r").attrs))
    return xr.open_zarr(group_url(store, levels[-1].path))


def _lonlat(row: int, col: int) -> tuple[float, float]:
    to_wgs84 = Transformer.from_crs(data.GRID_CRS, 4326, always_xy=True)
    return to_wgs84.transform(
        data.WEST + (col + 0.5) * data.RES, data.NORTH - (row + 0.5) * data.RES
    )


async def _colour(client: httpx.AsyncClient, row: int, col: int, **params: str) -> tuple:
    tile, pixel_row, pixel_col = tile_pixel(web_mercator(), *_lonlat(row, col), ZOOM)
    url = f"{ITEM_URL}/tiles/WebMercatorQuad/{tile.z}/{tile.x}/{tile.y}.png"
    response = await client.get(url, params=params)
    assert response.status_code == 200, response.text
    return rgba(response.content, pixel_row, pixel_col)


@pytest.mark.parametrize(("row", "col"), PIXELS)
async def test_continuous_pixel_is_viridis_of_the_value_xarray_reads(client, built, row, col):
    cube = _opened(built)
    coarse = _coarsest(built)["agb"].values
    low, high = float(np.nanmin(coarse)), float(np.nanmax(coarse))
    for step in (0, cube.sizes["time"] - 1):
        value = float(cube["agb"].isel(time=step, y=row, x=col))
        colour = await _colour(client, row, col, variable="agb", time=str(step))
        if np.isnan(value):
            assert colour[3] == 0
        else:
            index = int(np.rint((value - low) / (high - low) * 255))
            assert colour == tuple(cmap.get("viridis")[index])


async def test_classes_get_one_colour_each(client, built) -> None:
    classes = _opened(built)["forest_type"].values
    nodata = built["properties"]["cube:variables"]["forest_type"].get("nodata")
    hints = {
        entry["value"]: entry.get("color_hint")
        for entry in built["properties"]["cube:variables"]["forest_type"].get(
            "classification:classes", []
        )
    }
    seen: dict[int, tuple] = {}
    for row, col in [(r, c) for r in range(5, 160, 30) for c in range(5, 200, 40)]:
        value = int(classes[row, col])
        colour = await _colour(client, row, col, variable="forest_type")
        if value == nodata:
            assert colour[3] == 0
            continue
        assert seen.setdefault(value, colour) == colour
        if hints.get(value):
            assert colour[:3] == tuple(int(hints[value][i : i + 2], 16) for i in (0, 2, 4))
    assert len(set(seen.values())) == len(seen) >= 2


async def test_the_served_item_has_an_xyz_link_that_draws(client) -> None:
    item = (await client.get(ITEM_URL)).json()
    xyz = [link for link in item["links"] if link["rel"] == "xyz"]
    assert {link["href"].rsplit("variable=", 1)[1] for link in xyz} == {"agb", "forest_type"}
    tile, _, _ = tile_pixel(web_mercator(), *_lonlat(80, 100), 12)
    href = xyz[0]["href"].replace("{z}", "12").replace("{x}", str(tile.x))
    response = await client.get(href.replace("{y}", str(tile.y)))
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
