"""Bad EDR queries: each a 400 that names the problem (404 for what does not exist), and
nothing read."""

from __future__ import annotations

import pytest
from shapely.geometry import Polygon

from tests.api.edr_cubes import item_for
from tests.helpers import make_item

POSITION = "/collections/coll/items/cube/position"
AREA = "/collections/coll/items/cube/area"


@pytest.fixture
def cube(hand_made):
    return hand_made()


@pytest.fixture
async def client(serve, cube):
    return await serve(cube, max_area_pixels=48 * 40 * 5, max_vertices=50)


def inside(cube) -> str:
    lon, lat = cube.lonlat(20, 20)
    return f"POINT({lon} {lat})"


def square(cube, row: int, col: int, size: int) -> str:
    corners = [(row, col), (row, col + size), (row + size, col + size), (row + size, col)]
    return Polygon([cube.lonlat(r, c, 0, 0) for r, c in corners]).wkt


async def assert_400(client, url: str, params: dict, *words: str) -> None:
    response = await client.get(url, params=params)
    assert response.status_code == 400, response.text
    description = response.json()["description"]
    for word in words:
        assert word in description, description


async def test_a_point_outside_the_cube_says_so_with_the_extent(client, cube) -> None:
    west, south, east, north = item_for(cube)["bbox"]
    await assert_400(
        client, POSITION, {"coords": f"POINT({east + 0.01} {north})"},
        "is outside the cube's extent", f"[{west:.6g}, {south:.6g}, {east:.6g}, {north:.6g}]",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("url", "coords", "words"),
    [
        (POSITION, "POINT(5 50", ["coords", "not Well Known Text"]),
        (POSITION, "hello", ["coords", "not Well Known Text"]),
        (POSITION, "POINT EMPTY", ["empty"]),
        (POSITION, "POLYGON((5 50, 6 50, 6 51, 5 50))", ["expected a POINT", "got a POLYGON"]),
        (AREA, "POINT(5 50)", ["expected a POLYGON or MULTIPOLYGON", "got a POINT"]),
        (AREA, "LINESTRING(5 50, 6 51)", ["got a LINESTRING"]),
        (POSITION, "POINT(50 5000)", ["latitudes within [-90, 90]"]),
        (AREA, "POLYGON((5 50, 6 51, 6 50, 5 51, 5 50))", ["not valid", "Self-intersection"]),
    ],
)
async def test_malformed_or_wrong_geometries(client, url, coords, words) -> None:
    await assert_400(client, url, {"coords": coords}, *words)


async def test_too_many_vertices(client) -> None:
    ring = [(5 + i / 100, 50 + (i % 2) / 100) for i in range(60)] + [(5, 51), (5, 50)]
    await assert_400(
        client, AREA, {"coords": Polygon(ring).wkt}, "vertices", "limit of 50",
        "CUBESTAC_EDR__MAX_VERTICES",
    )  # fmt: skip


async def test_coords_are_required(client) -> None:
    await assert_400(client, POSITION, {}, "coords")


@pytest.mark.parametrize("url", [POSITION, AREA])
async def test_unknown_parameter_lists_the_cube_variables(client, cube, url) -> None:
    coords = inside(cube) if url == POSITION else square(cube, 1, 1, 3)
    await assert_400(
        client, url, {"coords": coords, "parameter-name": "ndvi,temperature"},
        "unknown 'temperature'", "agb, classes, ndvi",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("datetime", "words"),
    [
        ("yesterday", ["datetime", "not an RFC 3339 timestamp"]),
        ("2020-01-01T00:00:00", ["no time zone"]),
        ("2020-02-01/2020-01-01", ["after end"]),
        ("../..", ["both ends open"]),
        ("2021-01-01/..", ["does not overlap", "2020-01-01T00:00:00Z to 2020-01-30T00:00:00Z"]),
        ("2020-01-05T12:00:00Z", ["does not overlap"]),
    ],
)
async def test_bad_or_disjoint_datetime(client, cube, datetime, words) -> None:
    await assert_400(client, POSITION, {"coords": inside(cube), "datetime": datetime}, *words)


async def test_a_polygon_away_from_the_cube(client) -> None:
    await assert_400(
        client, AREA, {"coords": "POLYGON((20 10, 21 10, 21 11, 20 11, 20 10))"},
        "does not overlap the cube's extent",
    )  # fmt: skip


async def test_a_polygon_smaller_than_a_pixel(client, cube) -> None:
    lon, lat = cube.lonlat(20, 20, 0.4, 0.4)
    tiny = Polygon([(lon, lat), (lon + 1e-5, lat), (lon, lat + 1e-5)]).wkt
    await assert_400(client, AREA, {"coords": tiny}, "contains no pixel centre", "/position")


async def test_a_polygon_over_the_read_budget(client, cube) -> None:
    """Budget 9,600 = 48 x 40 x 5: the whole grid for 5 steps, not for 30."""
    whole = square(cube, 0, 0, 40)
    await assert_400(
        client, AREA, {"coords": whole}, "1600 pixels x 30 time steps = 48000",
        "limit of 9600", "CUBESTAC_EDR__MAX_AREA_PIXELS",
    )  # fmt: skip
    narrowed = await client.get(AREA, params={"coords": whole, "datetime": "2020-01-01/2020-01-05"})
    assert narrowed.status_code == 200, narrowed.text


@pytest.mark.parametrize("url", [POSITION, AREA])
async def test_unknown_format(client, cube, url) -> None:
    coords = inside(cube) if url == POSITION else square(cube, 1, 1, 3)
    await assert_400(client, url, {"coords": coords, "f": "geojson"}, "unknown format 'geojson'")


async def test_unknown_value_of_another_dimension(client, cube) -> None:
    await assert_400(
        client, POSITION, {"coords": inside(cube), "parameter-name": "agb", "member": "m9"},
        "'m9' is not a value", "m0, m1",
    )  # fmt: skip


@pytest.mark.parametrize(
    "path",
    [
        "/collections/coll/items/nothing/position",
        "/collections/nowhere/items/cube/position",
        "/collections/coll/items/plain/position",
        "/collections/coll/items/nothing/area",
    ],
)
async def test_unknown_or_non_cube_items_are_404(client, cube, path) -> None:
    plain = make_item("plain", "coll")
    assert (await client.post("/collections/coll/items", json=plain)).status_code == 201
    coords = inside(cube) if path.endswith("position") else square(cube, 1, 1, 3)
    response = await client.get(path, params={"coords": coords})
    assert response.status_code == 404, response.text


async def test_a_polygon_around_the_world_is_cut_to_the_cube(client) -> None:
    """Far outside EPSG:3035's area of use nothing is projected; the budget still holds."""
    world = "POLYGON((-180 -90, 180 -90, 180 90, -180 90, -180 -90))"
    await assert_400(client, AREA, {"coords": world}, "1920 pixels x 30 time steps")
    one_step = await client.get(AREA, params={"coords": world, "datetime": "2020-01-04"})
    assert one_step.status_code == 200, one_step.text
    assert one_step.json()["cubestac:pixels"] == 48 * 40


@pytest.mark.parametrize(
    ("crs", "status"), [("EPSG:3035", 400), ("EPSG:4326", 400), ("CRS84", 200)]
)
async def test_only_crs84_coordinates(client, cube, crs, status) -> None:
    response = await client.get(POSITION, params={"coords": inside(cube), "crs": crs})
    assert response.status_code == status, response.text
    if status == 400:
        assert "is not supported" in response.json()["description"]


async def test_a_series_over_the_chunk_budget_names_the_layout_and_the_way_out(
    serve, hand_made
) -> None:
    """Map layout: one chunk per time step, so 30 steps are over a budget of 10 and 5 are
    not; the time-series layout reads the same 30 steps in one chunk."""
    map_only = hand_made(timeseries=False)
    client = await serve(map_only, max_position_chunks=10)
    where = {"coords": inside(map_only), "parameter-name": "ndvi"}
    await assert_400(
        client, POSITION, where, "30 chunks", "map layout", "limit of 10",
        "CUBESTAC_EDR__MAX_POSITION_CHUNKS", "time-series layout",
    )  # fmt: skip
    narrowed = await client.get(POSITION, params={**where, "datetime": "2020-01-01/2020-01-05"})
    assert narrowed.status_code == 200, narrowed.text

    layered = hand_made()
    client = await serve(layered, max_position_chunks=10)
    whole = await client.get(POSITION, params={"coords": inside(layered), "parameter-name": "ndvi"})
    assert whole.status_code == 200, whole.text
    assert whole.headers["cubestac-layout"] == "timeseries"
