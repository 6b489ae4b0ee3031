"""Every bad map request is a clear 4xx that names the problem (README "Map tiles")."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from api import create_app
from tests.api import map_cubes
from tests.cubes.conftest import seed
from tests.helpers import make_item

ITEM_URL = "/collections/maps/items/map-cube"
TILE = f"{ITEM_URL}/tiles/WebMercatorQuad/10/540/337"  # a tile over the cube


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("maps") / "map-cube" / "v1.zarr"
    map_cubes.write_store(store)
    return store


@pytest.fixture
async def http(settings, database, store: Path) -> AsyncIterator[httpx.AsyncClient]:
    await seed(database, [map_cubes.cube_item(store), make_item("plain", "maps")])
    transport = httpx.ASGITransport(app=create_app(settings, database=database))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def _problem(http: httpx.AsyncClient, url: str, status: int, **params: str) -> str:
    response = await http.get(url, params=params)
    assert response.status_code == status, response.text
    return response.json()["description"]


async def test_the_tile_over_the_cube_is_fine(http) -> None:
    assert (await http.get(f"{TILE}.png")).status_code == 200


async def test_unknown_variable_names_it_and_the_valid_ones(http) -> None:
    text = await _problem(http, TILE, 400, variable="height")
    assert "'height'" in text and "biomass" in text and "forest_type" in text


@pytest.mark.parametrize("time", ["2030-01-01T00:00:00Z", "1999-06-01", "3", "-1", "soon"])
async def test_time_out_of_range_or_malformed(http, time) -> None:
    text = await _problem(http, TILE, 400, variable="biomass", time=time)
    assert "time" in text


@pytest.mark.parametrize(
    "path",
    [
        "tiles/WebMercatorQuad/25/0/0",  # no zoom 25
        "tiles/WebMercatorQuad/2/4/0",  # x beyond the matrix
        "tiles/WebMercatorQuad/2/0/4.png",  # y beyond the matrix
        "tiles/WebMercatorQuad/2/0/1.jpg",  # not a format we draw
    ],
)
async def test_tiles_outside_the_matrix_are_404(http, path) -> None:
    text = await _problem(http, f"{ITEM_URL}/{path}", 404)
    assert "tile" in text


async def test_unknown_tile_matrix_set_lists_the_known_ones(http) -> None:
    text = await _problem(http, f"{ITEM_URL}/tiles/Mercator/1/0/0", 404)
    assert "'Mercator'" in text and "WebMercatorQuad" in text and "WGS1984Quad" in text


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"colormap": "rainbowish"}, "unknown colormap 'rainbowish'"),
        ({"colormap": '{"1": [300]}'}, "JSON colormap"),
        ({"colormap": "{not json"}, "JSON colormap"),
        ({"rescale": "a,b"}, "rescale"),
        ({"rescale": "5,1"}, "rescale"),
        ({"rescale": "1"}, "rescale"),
        ({"rescale": "0,inf"}, "rescale"),
    ],
)
async def test_bad_colormap_or_rescale(http, params, words) -> None:
    assert words in await _problem(http, TILE, 400, **params)


@pytest.mark.parametrize("scale", ["10", "0", "1.5"])
async def test_scale_outside_one_to_four(http, scale) -> None:
    assert "scale" in await _problem(http, f"{TILE}@{scale}x.png", 400)


@pytest.mark.parametrize(
    "url",
    [
        "/collections/maps/items/nothing/tiles/WebMercatorQuad/1/0/0",
        "/collections/nowhere/items/map-cube/tiles/WebMercatorQuad/1/0/0",
        "/collections/maps/items/nothing/tilejson.json",
        "/collections/maps/items/nothing/WMTSCapabilities.xml",
    ],
)
async def test_unknown_item_or_collection(http, url) -> None:
    await _problem(http, url, 404)


@pytest.mark.parametrize("document", ["tiles/WebMercatorQuad/1/1/0", "tilejson.json"])
async def test_an_item_that_is_not_a_cube(http, document) -> None:
    text = await _problem(http, f"/collections/maps/items/plain/{document}", 404)
    assert "not a cube" in text


@pytest.mark.parametrize("member", ["medium", "2", "-1"])
async def test_unknown_value_of_another_dimension(http, member) -> None:
    text = await _problem(http, TILE, 400, variable="canopy", member=member)
    assert f"member={member!r}" in text and "'low', 'high'" not in text and "low, high" in text


async def test_parameters_that_are_no_dimension_of_the_variable_are_ignored(http) -> None:
    # biomass has no `member`: a map client's extra parameters do not break its tiles
    assert (await http.get(TILE, params={"variable": "biomass", "member": "7"})).status_code == 200
