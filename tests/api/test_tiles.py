"""Map tiles of a cube item: the colours a map shows at known pixels, nodata, levels and
windows (what is read), classes, time, tile matrix sets (README "Map tiles")."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import morecantile
import numpy as np
import pytest
from rio_tiler.colormap import cmap

from api import create_app
from tests.api import map_cubes
from tests.api.map_client import decode, rgba, tile_pixel, web_mercator
from tests.cubes.conftest import seed

ITEM_URL = "/collections/maps/items/map-cube"
# the default stretch of biomass: the coarsest level's minimum and maximum
LOW, HIGH = 0.0, 7 * 30 + 5 * 2


def viridis(value: float, low: float = LOW, high: float = HIGH, name: str = "viridis"):
    return tuple(cmap.get(name)[int(np.rint((value - low) / (high - low) * 255))])


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "maps" / "map-cube" / "v1.zarr"
    map_cubes.write_store(path)
    return path


async def _client(settings, database, item) -> AsyncIterator[httpx.AsyncClient]:
    await seed(database, [item])
    app = create_app(settings, database=database)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
async def http(settings, database, store: Path) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(settings, database, map_cubes.cube_item(store)):
        yield client


async def tile_at(
    http: httpx.AsyncClient,
    row: float,
    col: float,
    zoom: int,
    tms_id: str = "WebMercatorQuad",
    **params,
) -> tuple[tuple[int, ...], httpx.Response]:
    """The colour a map shows at full-resolution pixel (row, col), and the tile response."""
    tms = morecantile.tms.get(tms_id)
    lon, lat = map_cubes.lonlat_of(row, col)
    tile, pixel_row, pixel_col = tile_pixel(tms, lon, lat, zoom)
    url = f"{ITEM_URL}/tiles/{tms_id}/{tile.z}/{tile.x}/{tile.y}.png"
    response = await http.get(url, params=params)
    assert response.status_code == 200, response.text
    return rgba(response.content, pixel_row, pixel_col), response


# block centres (rows, cols) of the test cube
POINTS = [(384, 448), (640, 192), (900, 960)]


@pytest.mark.parametrize("zoom", [8, 10, 12])
async def test_tile_pixels_have_the_colormap_colour_of_the_cube_value(http, zoom) -> None:
    latest = len(map_cubes.TIMES) - 1
    for row, col in POINTS:
        colour, response = await tile_at(http, row, col, zoom, variable="biomass")
        assert response.headers["content-type"] == "image/png"
        assert colour == viridis(map_cubes.biomass_value(row, col, latest))


async def test_store_without_levels_still_serves_by_strided_reads(
    settings, database, tmp_path
) -> None:
    store = tmp_path / "maps" / "map-cube" / "v0.zarr"
    map_cubes.write_store(store, levels=False)
    item = map_cubes.cube_item(store, levels=False)
    async for http in _client(settings, database, item):
        for zoom in (7, 12):
            for row, col in POINTS:
                colour, _ = await tile_at(http, row, col, zoom, variable="biomass")
                assert colour == viridis(map_cubes.biomass_value(row, col, 2))


async def test_nodata_is_transparent(http) -> None:
    colour, _ = await tile_at(http, 64, 64, 12, variable="biomass")
    assert colour[3] == 0


async def test_tile_outside_the_cube_is_an_empty_transparent_png(http) -> None:
    response = await http.get(f"{ITEM_URL}/tiles/WebMercatorQuad/10/0/0.png")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert not decode(response.content)[3].any()


def _corrupt(store: Path, level: str, variable: str, keep: set[str] = frozenset()) -> int:
    """Overwrite the chunk files of a level's variable (but `keep`) with garbage: reading
    one of them fails, so a tile that renders did not read them."""
    corrupted = 0
    for chunk in (store / level / variable).iterdir():
        if not chunk.name.startswith(".") and chunk.name not in keep:
            chunk.write_bytes(b"not a chunk")
            corrupted += 1
    return corrupted


def _chunk_is_unreadable(store: Path, level: str, variable: str) -> bool:
    import zarr

    try:
        zarr.open_group(store / level, mode="r")[variable][...]
    except Exception:  # noqa: BLE001  # any decoding error proves the chunk was corrupted
        return True
    return False


async def test_zoomed_out_tile_reads_only_the_coarsest_level(http, store: Path) -> None:
    assert _corrupt(store, "0", "biomass") and _corrupt(store, "1", "biomass")
    assert _chunk_is_unreadable(store, "0", "biomass")
    for row, col in POINTS:
        colour, _ = await tile_at(http, row, col, 8, variable="biomass")
        assert colour == viridis(map_cubes.biomass_value(row, col, 2))


async def test_zoomed_in_tile_reads_only_the_chunks_under_it(http, store: Path) -> None:
    row, col = 384, 448
    tms = web_mercator()
    tile, _, _ = tile_pixel(tms, *map_cubes.lonlat_of(row, col), 14)
    keep = _chunks_under(tms, tile)
    assert len(keep) < 3 * 8 * 8 // 4, keep  # a small part of level 0
    assert _corrupt(store, "0", "biomass", keep)
    colour, _ = await tile_at(http, row, col, 14, variable="biomass")
    assert colour == viridis(map_cubes.biomass_value(row, col, 2))


def _chunks_under(tms, tile) -> set[str]:
    """Level-0 chunk keys (latest step) under the tile, with a pixel of margin."""
    from pyproj import Transformer

    bounds = tms.xy_bounds(tile)
    to_cube = Transformer.from_crs(3857, map_cubes.EPSG, always_xy=True)
    xs, ys = to_cube.transform(
        [bounds.left, bounds.left, bounds.right, bounds.right],
        [bounds.bottom, bounds.top, bounds.bottom, bounds.top],
    )
    cols = [(x - map_cubes.WEST) / map_cubes.RES for x in xs]
    rows = [(map_cubes.NORTH - y) / map_cubes.RES for y in ys]
    chunk = map_cubes.CHUNK
    row_chunks = range(int(min(rows) - 1) // chunk, int(max(rows) + 1) // chunk + 1)
    col_chunks = range(int(min(cols) - 1) // chunk, int(max(cols) + 1) // chunk + 1)
    return {f"2.{r}.{c}" for r in row_chunks for c in col_chunks}


async def test_categorical_variable_gets_the_class_colours(http) -> None:
    colours = {}
    for row, col in [(128, 448), (384, 448), (640, 448)]:
        colour, _ = await tile_at(http, row, col, 11, variable="forest_type")
        colours[map_cubes.forest_type_value(row, col)] = colour
    assert colours[1] == (0x1B, 0x9E, 0x77, 255)  # the classes' color_hint
    assert colours[2] == (0xD9, 0x5F, 0x02, 255)
    assert colours[3][3] == 255 and colours[3] not in (colours[1], colours[2])
    nodata, _ = await tile_at(http, 384, 64, 11, variable="forest_type")
    assert nodata[3] == 0


async def test_json_colormap_on_classes(http) -> None:
    colormap = '{"1": [255, 0, 0, 255], "2": "#00ff00"}'
    colour, _ = await tile_at(http, 384, 448, 11, variable="forest_type", colormap=colormap)
    assert colour == (0, 255, 0, 255)


async def test_named_colormap_and_rescale(http) -> None:
    row, col = 640, 192
    value = map_cubes.biomass_value(row, col, 2)
    colour, _ = await tile_at(
        http, row, col, 10, variable="biomass", colormap="magma", rescale="0,100"
    )
    assert colour == viridis(value, 0, 100, "magma")


@pytest.mark.parametrize(
    ("time", "step"),
    [("2020-03-01T00:00:00Z", 0), ("1", 1), ("2021-12-01", 2), ("0", 0), (None, 2)],
)
async def test_time_by_nearest_step_or_index(http, time, step) -> None:
    row, col = 640, 192
    params = {"variable": "biomass"} | ({"time": time} if time else {})
    colour, _ = await tile_at(http, row, col, 10, **params)
    assert colour == viridis(map_cubes.biomass_value(row, col, step))


@pytest.mark.parametrize(("member", "index"), [("low", 0), ("high", 1), ("1", 1), (None, 0)])
async def test_other_dimensions_by_value_or_index(http, member, index) -> None:
    params = {"variable": "canopy", "rescale": "0,200"} | ({"member": member} if member else {})
    colour, _ = await tile_at(http, 640, 640, 10, **params)
    assert colour == viridis(map_cubes.canopy_value(index), 0, 200)


@pytest.mark.parametrize("tms_id", ["WGS1984Quad", "EuropeanETRS89_LAEAQuad", "WebMercatorQuad"])
async def test_other_tile_matrix_sets(http, tms_id) -> None:
    for row, col in POINTS:
        colour, _ = await tile_at(http, row, col, 9, tms_id, variable="biomass")
        assert colour == viridis(map_cubes.biomass_value(row, col, 2))


async def test_scale_and_webp(http) -> None:
    tms = web_mercator()
    tile, _, _ = tile_pixel(tms, *map_cubes.lonlat_of(512, 512), 10)
    base = f"{ITEM_URL}/tiles/WebMercatorQuad/{tile.z}/{tile.x}/{tile.y}"
    double = await http.get(f"{base}@2x.png")
    assert double.status_code == 200 and decode(double.content).shape == (4, 512, 512)
    webp = await http.get(f"{base}.webp")
    assert webp.headers["content-type"] == "image/webp"
    bare = await http.get(base)
    assert bare.headers["content-type"] == "image/png"


async def test_etag_and_cache_control(http) -> None:
    url = f"{ITEM_URL}/tiles/WebMercatorQuad/10/540/337.png"
    first = await http.get(url)
    assert first.headers["cache-control"].startswith("public, max-age=")
    etag = first.headers["etag"]
    again = await http.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.headers["etag"] == etag
    other = await http.get(url, params={"colormap": "magma"})
    assert other.headers["etag"] != etag


async def test_reading_warping_and_encoding_run_off_the_event_loop(http, monkeypatch) -> None:
    import threading

    from api.maps import service

    threads: list[threading.Thread] = []
    original = service.tile_values

    def recording(*args, **kwargs):
        threads.append(threading.current_thread())
        return original(*args, **kwargs)

    monkeypatch.setattr(service, "tile_values", recording)
    loop_thread = threading.current_thread()  # ASGITransport runs the app on this loop
    response = await http.get(f"{ITEM_URL}/tiles/WebMercatorQuad/11/1081/675.png")
    assert response.status_code == 200
    assert threads and all(thread is not loop_thread for thread in threads)
