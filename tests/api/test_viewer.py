"""The viewer's page and files as the API serves them: linked from the landing page, every
file it loads from this API (relative URLs, so a path prefix works), content types, cache
headers and the CSP its scripts run under. The page itself runs in test_viewer_browser."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from rio_tiler.colormap import cmap

from api import create_app
from api.viewer.colormaps import NAMES, STOPS
from catalogue.settings import Settings

VENDOR = Path(__file__).parents[2] / "api" / "viewer" / "static" / "vendor"


class References(HTMLParser):
    """The `src` of scripts and the `href` of stylesheets and links in a page."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        url = named.get("src") if tag == "script" else named.get("href")
        if url and tag in ("script", "link", "a"):
            self.urls.append(url)


def references(html: str) -> list[str]:
    parser = References()
    parser.feed(html)
    return parser.urls


async def test_the_landing_page_links_the_viewer(client: httpx.AsyncClient) -> None:
    landing = (await client.get("/")).json()
    [viewer] = [link for link in landing["links"] if link["href"].endswith("/viewer")]
    assert viewer == {
        "rel": "alternate",
        "type": "text/html",
        "href": "http://testserver/viewer",
        "title": "Viewer: the cubes on a map",
    }


async def test_the_page_is_html_revalidated_under_the_pages_csp(client: httpx.AsyncClient) -> None:
    response = await client.get("/viewer")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-cache"
    csp = response.headers["content-security-policy"]
    # scripts, styles, the map's worker and every fetch: this origin only
    assert "script-src 'self'" in csp and "connect-src 'self'" in csp
    assert "blob:" not in csp and "http" not in csp
    assert "<script>" not in response.text  # no inline script: all of it is served as files


async def test_every_file_the_page_loads_is_served_from_this_api(
    client: httpx.AsyncClient,
) -> None:
    urls = references((await client.get("/viewer")).text)
    assert len(urls) >= 7
    types = {".js": "text/javascript", ".css": "text/css"}
    for url in urls:
        if url.startswith("data:"):
            continue
        # relative to the page, so a proxy's path prefix carries over
        assert not re.match(r"^(/|[a-z]+:)", url), url
        response = await client.get(f"/{url}")
        assert response.status_code == 200, url
        suffix = Path(url.split("?")[0]).suffix
        if suffix in types:
            assert response.headers["content-type"].startswith(types[suffix]), url
            expected = "public, max-age=86400" if "/vendor/" in url else "no-cache"
            assert response.headers["cache-control"] == expected, url


async def test_the_map_worker_and_the_licences_are_served(client: httpx.AsyncClient) -> None:
    worker = await client.get("/viewer/static/vendor/maplibre-gl-csp-worker.js")
    assert worker.status_code == 200 and len(worker.content) > 100_000
    for licence in ("maplibre-gl.LICENSE.txt", "uPlot.LICENSE.txt"):
        response = await client.get(f"/viewer/static/vendor/{licence}")
        assert response.status_code == 200 and "Copyright" in response.text
    versions = (VENDOR / "VERSIONS.txt").read_text()
    assert "maplibre-gl 5.24.1" in versions and "uplot 1.6.32" in versions


async def test_no_file_outside_the_static_folder(client: httpx.AsyncClient) -> None:
    for path in ("/viewer/static/../__init__.py", "/viewer/static/%2e%2e/__init__.py"):
        assert (await client.get(path)).status_code == 404


async def test_the_legend_colours_are_the_tiles_colormaps(client: httpx.AsyncClient) -> None:
    stops = (await client.get("/viewer/colormaps.json")).json()
    assert list(stops) == list(NAMES)
    viridis = cmap.get("viridis")
    assert len(stops["viridis"]) == STOPS
    assert stops["viridis"][0] == "#{:02x}{:02x}{:02x}".format(*viridis[0][:3])
    assert stops["viridis"][-1] == "#{:02x}{:02x}{:02x}".format(*viridis[255][:3])


@pytest.mark.parametrize("public_url", ["https://maps.example.org/stac/"])
async def test_behind_a_proxy_the_link_uses_the_public_url(
    settings: Settings, database, public_url: str
) -> None:
    app = create_app(settings.model_copy(update={"public_url": public_url}), database=database)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://internal:8000"
    ) as http:
        landing = (await http.get("/")).json()
        assert f"{public_url}viewer" in [link["href"] for link in landing["links"]]
        assert (await http.get("/viewer")).status_code == 200
