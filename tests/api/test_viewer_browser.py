"""The viewer in a real browser: Debian's chromium driven by Playwright, over the real API on
127.0.0.1 and a cube built by the real runner.

What a user relies on: the page lists the cube, the map draws the cube's pixels in the
colours of the chosen colormap (read back from the WebGL canvas), a click on the map charts
the cube's own values at that point, and a click outside the cube shows the API's message.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import xarray as xr
from pyproj import Transformer
from rio_tiler.colormap import cmap
from sqlalchemy import URL

from api import create_app
from catalogue.database import Database, create_engine
from catalogue.repositories.items import get_item
from catalogue.repositories.jobs import JobStatus
from cubes.compute import ComputePool, ComputeSettings
from tests.conftest import clone_database
from tests.cubes import data
from tests.cubes.conftest import build, seed
from tests.helpers import live_server, make_settings

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
# WebGL without a GPU: ANGLE on SwiftShader (Chromium refuses the software fallback for
# WebGL unless it is asked for explicitly)
CHROMIUM_ARGS = ["--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader"]
COLLECTION, CUBE = "viewer-cubes", "forest"
RESCALE = (50.0, 180.0)
YEARS = [2007, 2010, 2015, 2016]  # cci_biomass's years: one time axis for both
TIMEOUT_MS = 60_000
TO_LONLAT = Transformer.from_crs(data.GRID_CRS, "EPSG:4326", always_xy=True)

VIEWER_READY = """() => {
  const v = window.cubestacViewer;
  return v && v.status === "ready" && v.map && v.map.getSource("cube") &&
    v.map.loaded() && v.map.areTilesLoaded() && !v.map.isMoving();
}"""
# an RGBA pixel of the map's WebGL canvas at a map position (CSS pixels, as map.project)
PIXEL_AT = """([lon, lat]) => {
  const map = window.cubestacViewer.map;
  const canvas = map.getCanvas();
  const ratio = canvas.width / canvas.clientWidth;
  const point = map.project([lon, lat]);
  const copy = document.createElement("canvas");
  copy.width = canvas.width; copy.height = canvas.height;
  const context = copy.getContext("2d");
  context.drawImage(canvas, 0, 0);
  const x = Math.round(point.x * ratio), y = Math.round(point.y * ratio);
  return Array.from(context.getImageData(x, y, 1, 1).data);
}"""
BACKGROUND = [0xE9, 0xED, 0xF1]


def cube_spec() -> dict[str, Any]:
    return {
        "id": CUBE,
        "collection": COLLECTION,
        "title": "Forest (viewer test)",
        "grid": data.GRID,
        "inputs": [
            {"collection": "forest-type", "resampling": "mode"},
            {"collection": "cci-biomass", "resampling": "bilinear", "variables": ["agb"]},
            {"collection": "disturbance", "resampling": "nearest"},
        ],
    }


@pytest.fixture(scope="module")
def viewer_db_url(server_url: URL, template_url: URL) -> URL:
    return clone_database(server_url, template_url)


@pytest.fixture(scope="module")
async def built_cube(
    viewer_db_url: URL, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[dict[str, Any]]:
    """The cube, built through the real runner into its own cube root; its item."""
    folder = tmp_path_factory.mktemp("viewer-inputs")
    sources = [
        data.forest_type(folder),
        data.cci_biomass(folder),
        data.disturbance(folder, years=YEARS),
    ]
    root = tmp_path_factory.mktemp("viewer-cubes")
    database = Database(create_engine(make_settings(viewer_db_url)))
    try:
        await seed(database, [source.item for source in sources])
        settings = ComputeSettings(workers=1, threads=2, memory_limit="2GB", processes=False)
        with ComputePool(settings) as pool:
            [result] = await build(database, [cube_spec()], root, pool)
        assert result.status is JobStatus.SUCCEEDED, result.message
        async with database.read() as conn:
            item = await get_item(conn, COLLECTION, CUBE)
        yield {"item": item, "root": root}
    finally:
        await database.dispose()


@pytest.fixture(scope="module")
def cube(built_cube: dict[str, Any]) -> xr.Dataset:
    """The cube's level 0 as a reader opens it (the item's zarr asset and open kwargs)."""
    asset = built_cube["item"]["assets"]["zarr"]
    return xr.open_zarr(asset["href"], **asset["xarray:open_kwargs"])


@pytest.fixture(scope="module")
def live_api(viewer_db_url: URL, built_cube: dict[str, Any]) -> Iterator[str]:
    settings = make_settings(viewer_db_url, cube_root=str(built_cube["root"]))
    with live_server(create_app(settings)) as base:
        yield base


@pytest.fixture(scope="module")
def browser(live_api: str) -> Iterator[Any]:
    """Chromium, started after the cube is built: Playwright's sync API holds an event
    loop on this thread while it runs, where async fixtures can no longer run theirs."""
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} is missing (apt install chromium; CI installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def open_viewer(browser: Any, url: str) -> Any:
    """A new page on `url`, once the map has drawn the cube layer's tiles; the page's
    errors (script errors, failed loads) are collected in `page.problems`."""
    page = browser.new_page(viewport={"width": 1200, "height": 800})
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.goto(url)
    page.wait_for_function(VIEWER_READY, timeout=TIMEOUT_MS)
    page.problems = problems
    return page


@pytest.fixture
def page(browser: Any, live_api: str) -> Iterator[Any]:
    """The viewer on the cube's `agb` with viridis over a fixed range (a deep link)."""
    query = f"collection={COLLECTION}&item={CUBE}&variable=agb&colormap=viridis"
    page = open_viewer(browser, f"{live_api}/viewer?{query}&rescale={RESCALE[0]:g},{RESCALE[1]:g}")
    yield page
    page.close()


def lonlat(x: float, y: float) -> tuple[float, float]:
    lon, lat = TO_LONLAT.transform(x, y)
    return float(lon), float(lat)


def interior_pixels(cube: xr.Dataset, count: int) -> list[tuple[int, int]]:
    """Pixels (row, col) well inside the grid where agb at the latest time (the time
    picker's default) is valid and
    smooth (so a pixel's neighbours, which the reprojected tile may show, agree with it)."""
    values = cube["agb"].isel(time=-1).values
    rows, cols = np.mgrid[10 : values.shape[0] - 10 : 13, 10 : values.shape[1] - 10 : 17]
    picked = []
    for row, col in zip(rows.ravel(), cols.ravel(), strict=True):
        window = values[row - 2 : row + 3, col - 2 : col + 3]
        if np.isfinite(window).all() and np.ptp(window) < 1.5:
            picked.append((int(row), int(col)))
    assert len(picked) >= count
    return picked[:: max(1, len(picked) // count)][:count]


def expected_colour(value: float) -> list[int]:
    """rio-tiler's viridis at `value` stretched over RESCALE, as the tiles colour it."""
    low, high = RESCALE
    index = int(np.clip(np.rint((value - low) / (high - low) * 255), 0, 255))
    return [int(channel) for channel in cmap.get("viridis")[index][:3]]


def test_the_page_lists_the_cube_and_its_pickers(page: Any) -> None:
    assert page.locator("#collection").input_value() == COLLECTION
    assert page.locator("#item").input_value() == CUBE
    variables = page.locator("#variable option").evaluate_all("o => o.map(e => e.value)")
    assert sorted(variables) == ["agb", "annual_disturbances", "forest_type"]
    times = page.locator("#time option").evaluate_all("o => o.map(e => e.value)")
    assert [t[:4] for t in times] == ["2007", "2010", "2015", "2016"]
    assert page.locator("#time").input_value().startswith("2016")  # the latest by default
    assert page.locator("#legend .gradient").count() == 1
    assert page.locator(".gradient-labels").inner_text().split() == ["50", "180"]
    assert page.problems == []


def test_the_map_draws_the_cube_pixels_in_the_colormap(page: Any, cube: xr.Dataset) -> None:
    values = cube["agb"].isel(time=-1)
    for row, col in interior_pixels(cube, 6):
        point = lonlat(float(values.x[col]), float(values.y[row]))
        rgba = page.evaluate(PIXEL_AT, list(point))
        expected = expected_colour(float(values.values[row, col]))
        assert rgba[3] == 255
        assert max(abs(a - b) for a, b in zip(rgba[:3], expected, strict=True)) <= 12, (
            f"{point}: drawn {rgba}, expected {expected}"
        )
    # 150 m west of the grid: in view, and only the background there (no basemap)
    outside = lonlat(data.BBOX[0] - 150, (data.BBOX[1] + data.BBOX[3]) / 2)
    assert page.evaluate(PIXEL_AT, list(outside)) == [*BACKGROUND, 255]


def click_at(page: Any, lon: float, lat: float) -> None:
    """A real mouse click on the map at a position (which must be in view)."""
    box = page.locator("#map canvas").bounding_box()
    point = page.evaluate("p => window.cubestacViewer.map.project(p)", [lon, lat])
    assert 0 < point["x"] < box["width"] and 0 < point["y"] < box["height"]
    page.mouse.click(box["x"] + point["x"], box["y"] + point["y"])


def test_a_click_charts_the_cube_values_at_that_point(page: Any, cube: xr.Dataset) -> None:
    row, col = interior_pixels(cube, 1)[0]
    x, y = float(cube.x[col]), float(cube.y[row])
    click_at(page, *lonlat(x, y))
    page.wait_for_function(
        "() => window.cubestacViewer.lastSeries && !window.cubestacViewer.pending",
        timeout=TIMEOUT_MS,
    )
    series = page.evaluate("() => window.cubestacViewer.lastSeries")
    # the clicked point is inside the pixel (a click lands on a whole CSS pixel)
    expected = cube["agb"].sel(x=x, y=y, method="nearest").values
    assert len(series["values"]) == 4
    assert [t[:4] for t in series["times"]] == ["2007", "2010", "2015", "2016"]
    np.testing.assert_allclose(series["values"], expected, rtol=1e-6)
    assert page.locator("#chart canvas").count() >= 1  # uPlot drew it
    assert page.locator("#message").inner_text() == ""


def test_a_click_outside_the_cube_shows_the_api_message(page: Any, live_api: str) -> None:
    # 150 m east of the grid's east edge: on the map (inside its padding), outside the cube
    lon, lat = lonlat(data.BBOX[2] + 150, (data.BBOX[1] + data.BBOX[3]) / 2)
    click_at(page, lon, lat)
    page.wait_for_function(
        "() => window.cubestacViewer.lastError && !window.cubestacViewer.pending",
        timeout=TIMEOUT_MS,
    )
    shown = page.locator("#message.error").inner_text()
    sent = page.evaluate("() => window.cubestacViewer.lastPositionUrl")
    answer = httpx.get(sent)
    assert answer.status_code == 400
    assert shown == answer.json()["description"]
    assert page.evaluate("() => window.cubestacViewer.lastSeries") is None


def test_the_viewer_loads_nothing_from_other_origins(page: Any, live_api: str) -> None:
    urls = page.evaluate("() => performance.getEntriesByType('resource').map(e => e.name)")
    assert urls and all(url.startswith(live_api) for url in urls)


def test_a_continuous_variable_opens_on_its_range_over_the_cube(
    browser: Any, live_api: str, cube: xr.Dataset
) -> None:
    page = open_viewer(browser, f"{live_api}/viewer?collection={COLLECTION}&item={CUBE}")
    try:
        page.wait_for_function(
            "() => /rescale=/.test(window.cubestacViewer.tileUrl || '')", timeout=TIMEOUT_MS
        )
        page.wait_for_function(VIEWER_READY, timeout=TIMEOUT_MS)
        low, high = (float(v) for v in page.locator(".gradient-labels").inner_text().split())
        values = cube["agb"].isel(time=-1).values
        found_low, found_high = float(np.nanmin(values)), float(np.nanmax(values))
        assert low <= found_low < found_high <= high  # rounded outwards
        assert (found_low - low) < 0.01 * found_high and (high - found_high) < 0.01 * found_high
        tile_url = page.evaluate("() => window.cubestacViewer.tileUrl")
        assert f"rescale={low:g}%2C{high:g}" in tile_url  # the legend's range is the drawn one
        assert page.problems == []
    finally:
        page.close()


def test_a_categorical_variable_draws_its_classes(browser: Any, live_api: str) -> None:
    query = f"collection={COLLECTION}&item={CUBE}&variable=forest_type"
    page = open_viewer(browser, f"{live_api}/viewer?{query}")
    try:
        assert page.locator("#colormap").input_value() == "classes"
        assert page.locator(".rescale").is_hidden()  # no range for classes
        assert "rescale" not in page.evaluate("() => window.cubestacViewer.tileUrl")
        centre = lonlat((data.BBOX[0] + data.BBOX[2]) / 2, (data.BBOX[1] + data.BBOX[3]) / 2)
        rgba = page.evaluate(PIXEL_AT, list(centre))
        assert rgba[3] == 255 and rgba[:3] != BACKGROUND
        assert page.problems == []
    finally:
        page.close()


def test_a_tile_the_api_refuses_shows_its_message(browser: Any, live_api: str) -> None:
    """A hand-edited link with an empty range: the tiles' 400 is shown in the API's words."""
    query = f"collection={COLLECTION}&item={CUBE}&variable=agb&rescale=5,5"
    page = open_viewer(browser, f"{live_api}/viewer?{query}")
    try:
        page.wait_for_function("() => window.cubestacViewer.lastError", timeout=TIMEOUT_MS)
        tile = page.evaluate("() => window.cubestacViewer.tileUrl")
        tile = tile.replace("{z}/{x}/{y}", "0/0/0")
        answer = httpx.get(tile)
        assert answer.status_code == 400
        shown = page.locator("#message.error").inner_text()
        assert shown == f"The map tiles could not be drawn: {answer.json()['description']}"
    finally:
        page.close()


def test_classes_are_drawn_in_the_legend_colours(
    browser: Any, live_api: str, cube: xr.Dataset
) -> None:
    """`annual_disturbances` has CF flags, so the cube item names its classes: the legend
    lists them and the map draws each pixel in its class's legend colour."""
    query = f"collection={COLLECTION}&item={CUBE}&variable=annual_disturbances"
    page = open_viewer(browser, f"{live_api}/viewer?{query}")
    try:
        rows = page.locator("#legend li").all_inner_texts()
        assert rows == ["0: undisturbed", "1: disturbed"]
        swatches = page.locator("#legend .swatch").evaluate_all(
            "s => s.map(e => getComputedStyle(e).backgroundColor)"
        )
        colours = [[int(v) for v in re.findall(r"\d+", swatch)[:3]] for swatch in swatches]
        values = cube["annual_disturbances"].isel(time=-1).values
        checked = 0
        for row in range(8, values.shape[0] - 8, 9):
            for col in range(8, values.shape[1] - 8, 11):
                window = values[row - 1 : row + 2, col - 1 : col + 2]
                if (window != window[1, 1]).any() or window[1, 1] not in (0, 1):
                    continue  # a class edge or nodata: the tile may show a neighbour
                point = lonlat(float(cube.x[col]), float(cube.y[row]))
                rgba = page.evaluate(PIXEL_AT, list(point))
                assert rgba == [*colours[int(window[1, 1])], 255], (point, rgba)
                checked += 1
        assert checked >= 20
        assert page.problems == []
    finally:
        page.close()
