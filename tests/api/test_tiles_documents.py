"""What advertises the map layers: web-map-links on served cube items (what STAC Browser
reads), TileJSON 3.0.0 and WMTS 1.0 capabilities, each followed to a real tile."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from xml.etree import ElementTree as ET

import httpx
import pytest

from api import create_app
from catalogue.web_map_links import WEB_MAP_LINKS_EXTENSION
from tests.api import map_cubes
from tests.api.map_client import decode
from tests.cubes.conftest import seed
from tests.helpers import make_item
from tests.stac_schemas import validate_offline

ITEM_URL = "/collections/maps/items/map-cube"
BASE = "http://testserver"
WMTS = "{http://www.opengis.net/wmts/1.0}"
OWS = "{http://www.opengis.net/ows/1.1}"
XLINK = "{http://www.w3.org/1999/xlink}"
VARIABLES = ["biomass", "canopy", "forest_type"]
TILE_OVER_CUBE = {"z": "10", "x": "540", "y": "337"}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("maps") / "map-cube" / "v1.zarr"
    map_cubes.write_store(store)
    return store


@pytest.fixture
async def http(settings, database, store: Path) -> AsyncIterator[httpx.AsyncClient]:
    await seed(database, [map_cubes.cube_item(store), make_item("plain", "maps")])
    transport = httpx.ASGITransport(app=create_app(settings, database=database))
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        yield client


def _fill(template: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        template = template.replace(f"{{{key}}}", value)
    return template


async def _served_items(http: httpx.AsyncClient) -> list[dict]:
    single = (await http.get(ITEM_URL)).json()
    searched = (await http.get("/search", params={"ids": "map-cube"})).json()["features"]
    posted = (await http.post("/search", json={"ids": ["map-cube"]})).json()["features"]
    listed = (await http.get("/collections/maps/items")).json()["features"]
    return [single, *searched, *posted, *[f for f in listed if f["id"] == "map-cube"]]


async def test_served_cube_items_carry_xyz_links_as_stac_browser_reads_them(http) -> None:
    items = await _served_items(http)
    assert len(items) == 4
    for item in items:
        xyz = [link for link in item["links"] if link["rel"] == "xyz"]
        assert [link["title"].split(": ")[-1] for link in xyz] == VARIABLES
        for link in xyz:
            assert link["type"] == "image/png"
            assert link["href"].startswith(f"{BASE}{ITEM_URL}/tiles/WebMercatorQuad/")
            assert all(part in link["href"] for part in ("{z}", "{x}", "{y}"))
        assert WEB_MAP_LINKS_EXTENSION in item["stac_extensions"]
        assert WEB_MAP_LINKS_EXTENSION in validate_offline(item)


async def test_xyz_link_template_gives_a_tile(http) -> None:
    item = (await http.get(ITEM_URL)).json()
    [xyz] = [link for link in item["links"] if link["rel"] == "xyz" and "biomass" in link["href"]]
    tile = await http.get(_fill(xyz["href"], TILE_OVER_CUBE))
    assert tile.status_code == 200 and tile.headers["content-type"] == "image/png"
    assert decode(tile.content)[3].any()


async def test_wmts_and_tilejson_links(http) -> None:
    item = (await http.get(ITEM_URL)).json()
    [wmts] = [link for link in item["links"] if link["rel"] == "wmts"]
    assert wmts["href"] == f"{BASE}{ITEM_URL}/WMTSCapabilities.xml"
    assert wmts["wmts:layer"] == VARIABLES
    assert wmts["wmts:dimensions"] == {"Time": "2022-01-01T00:00:00Z"}
    tilejsons = [link for link in item["links"] if link["rel"] == "tilejson"]
    assert len(tilejsons) == 3 and all(link["type"] == "application/json" for link in tilejsons)
    assert (await http.get(tilejsons[0]["href"])).json()["tilejson"] == "3.0.0"


async def test_items_that_are_not_cubes_get_no_map_links(http) -> None:
    item = (await http.get("/collections/maps/items/plain")).json()
    assert not {"xyz", "wmts", "tilejson"} & {link["rel"] for link in item["links"]}
    assert WEB_MAP_LINKS_EXTENSION not in item["stac_extensions"]


async def test_tilejson(http) -> None:
    params = {"variable": "biomass", "time": "1", "colormap": "magma"}
    response = await http.get(f"{ITEM_URL}/tilejson.json", params=params)
    document = response.json()
    assert document["tilejson"] == "3.0.0"
    [template] = document["tiles"]
    assert template.startswith(f"{BASE}{ITEM_URL}/tiles/WebMercatorQuad/{{z}}/{{x}}/{{y}}.png?")
    assert "variable=biomass" in template and "time=1" in template and "colormap=magma" in template
    item = (await http.get(ITEM_URL)).json()
    assert document["bounds"] == pytest.approx(item["bbox"])
    west, south, east, north = document["bounds"]
    assert document["center"][:2] == pytest.approx([(west + east) / 2, (south + north) / 2])
    # 50 m pixels at 52N are ~81 m in Web Mercator: zoom 11 (76 m); the whole cube (1024 px)
    # fits one tile near zoom 9
    assert (document["minzoom"], document["maxzoom"]) == (9, 11)
    tile = await http.get(_fill(template, TILE_OVER_CUBE))
    assert tile.status_code == 200


async def test_tilejson_of_another_tile_matrix_set_scale_and_format(http) -> None:
    params = {"tileMatrixSetId": "WGS1984Quad", "tile_scale": "2", "tile_format": "webp"}
    document = (await http.get(f"{ITEM_URL}/tilejson.json", params=params)).json()
    [template] = document["tiles"]
    assert "/tiles/WGS1984Quad/{z}/{x}/{y}@2x.webp?variable=biomass" in template
    bad = await http.get(f"{ITEM_URL}/tilejson.json", params={"tileMatrixSetId": "Nope"})
    assert bad.status_code == 404


async def test_wmts_capabilities_structure(http) -> None:
    response = await http.get(f"{ITEM_URL}/WMTSCapabilities.xml")
    assert response.headers["content-type"].startswith("application/xml")
    root = ET.fromstring(response.content)
    assert root.tag == f"{WMTS}Capabilities" and root.get("version") == "1.0.0"
    contents = root.find(f"{WMTS}Contents")
    layers = {layer.findtext(f"{OWS}Identifier"): layer for layer in contents.iter(f"{WMTS}Layer")}
    assert sorted(layers) == VARIABLES
    biomass = layers["biomass"]
    dimension = biomass.find(f"{WMTS}Dimension")
    assert dimension.findtext(f"{OWS}Identifier") == "Time"
    values = [value.text for value in dimension.findall(f"{WMTS}Value")]
    assert values == ["2020-01-01T00:00:00Z", "2021-01-01T00:00:00Z", "2022-01-01T00:00:00Z"]
    assert dimension.findtext(f"{WMTS}Default") == values[-1]
    assert layers["canopy"].find(f"{WMTS}Dimension") is None
    template = biomass.find(f"{WMTS}ResourceURL").get("template")
    assert "{TileMatrix}/{TileCol}/{TileRow}" in template and "{Time}" in template
    [matrix_set] = contents.findall(f"{WMTS}TileMatrixSet")
    assert matrix_set.findtext(f"{OWS}Identifier") == "WebMercatorQuad"
    assert matrix_set.findtext(f"{OWS}SupportedCRS") == "urn:ogc:def:crs:EPSG::3857"
    link = biomass.find(f"{WMTS}TileMatrixSetLink").findtext(f"{WMTS}TileMatrixSet")
    assert link == "WebMercatorQuad"
    url = _fill(
        template,
        {"TileMatrix": "10", "TileCol": "540", "TileRow": "337", "Time": values[0]},
    )
    tile = await http.get(url)
    assert tile.status_code == 200 and decode(tile.content)[3].any()


async def test_wmts_capabilities_of_another_tile_matrix_set(http) -> None:
    params = {"tileMatrixSetId": "WGS1984Quad"}
    response = await http.get(f"{ITEM_URL}/WMTSCapabilities.xml", params=params)
    root = ET.fromstring(response.content)
    [matrix_set] = root.find(f"{WMTS}Contents").findall(f"{WMTS}TileMatrixSet")
    assert matrix_set.findtext(f"{OWS}Identifier") == "WGS1984Quad"
    assert matrix_set.findtext(f"{OWS}SupportedCRS") == "urn:ogc:def:crs:EPSG::4326"
    # EPSG:4326 axis order: latitude first
    first = matrix_set.find(f"{WMTS}TileMatrix").findtext(f"{WMTS}TopLeftCorner")
    assert first == "90.0 -180.0"
    layer = root.find(f"{WMTS}Contents").find(f"{WMTS}Layer")
    assert "/tiles/WGS1984Quad/{TileMatrix}/" in layer.find(f"{WMTS}ResourceURL").get("template")
    missing = await http.get(f"{ITEM_URL}/WMTSCapabilities.xml", params={"tileMatrixSetId": "X"})
    assert missing.status_code == 404
