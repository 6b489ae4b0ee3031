"""The API under uvicorn on 127.0.0.1, used the way people use it: pystac-client."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from pystac_client import Client

from api import create_app
from tests.helpers import TEST_API_KEY, grid_items, live_server, make_collection, make_settings

pytestmark = pytest.mark.slow


@pytest.fixture
def live_api(fresh_db_url) -> Iterator[str]:
    with live_server(create_app(make_settings(fresh_db_url))) as base:
        headers = {"Authorization": f"Bearer {TEST_API_KEY}"}
        with httpx.Client(base_url=base, headers=headers) as http:
            assert http.post("/collections", json=make_collection("scenes")).status_code == 201
            items = {item["id"]: item for item in grid_items(120, "scenes")}
            response = http.post(
                "/collections/scenes/bulk_items", json={"items": items, "method": "insert"}
            )
            assert response.status_code == 200, response.text
        yield base


def test_pystac_client_searches_and_pages(live_api: str) -> None:
    client = Client.open(live_api)
    assert [collection.id for collection in client.get_collections()] == ["scenes"]
    search = client.search(
        collections=["scenes"],
        bbox=[-10, 35, 30, 36],
        datetime="2021-01-01T00:00:00Z/2021-01-01T23:59:59Z",
        limit=7,
    )
    items = list(search.items())
    expected = [f"item-{index:04d}" for index in range(23, -1, -1)]  # first day, row 0: 0..23
    assert [item.id for item in items] == expected  # 4 pages of 7, newest first
    for item in items:
        item.validate()  # STAC 1.1 core item schema (shipped with pystac)


def test_pystac_client_post_paging_and_item_links(live_api: str) -> None:
    client = Client.open(live_api)
    search = client.search(collections=["scenes"], method="POST", limit=50, max_items=120)
    ids = [item.id for item in search.items()]
    assert len(ids) == 120 and len(set(ids)) == 120
    item = client.get_collection("scenes").get_item("item-0042")
    assert item is not None
    assert item.get_self_href() == f"{live_api}/collections/scenes/items/item-0042"


def test_browseable_from_the_root(live_api: str) -> None:
    client = Client.open(live_api)
    children = list(client.get_children())
    assert [child.id for child in children] == ["scenes"]
    assert httpx.get(f"{live_api}/api").json()["openapi"].startswith("3.")
    assert "swagger" in httpx.get(f"{live_api}/api.html").text.lower()


def test_cors_allows_browser_reads(live_api: str) -> None:
    preflight = httpx.options(
        f"{live_api}/search",
        headers={
            "Origin": "https://radiantearth.github.io",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] in (
        "*",
        "https://radiantearth.github.io",
    )
    response = httpx.get(f"{live_api}/collections", headers={"Origin": "https://example.org"})
    assert response.headers["access-control-allow-origin"] == "*"
