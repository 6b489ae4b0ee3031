"""Core, collections, features and item search against a real PostGIS (in-process ASGI)."""

from __future__ import annotations

import httpx
import pytest

from tests.helpers import grid_items, make_collection, make_item


async def seed(
    client: httpx.AsyncClient, items: list[dict], collection_id: str = "test-collection"
) -> None:
    response = await client.post("/collections", json=make_collection(collection_id))
    assert response.status_code == 201, response.text
    body = {"items": {item["id"]: item for item in items}, "method": "insert"}
    response = await client.post(f"/collections/{collection_id}/bulk_items", json=body)
    assert response.status_code == 200, response.text


async def test_landing_page_links_every_collection_as_child(client: httpx.AsyncClient) -> None:
    await client.post("/collections", json=make_collection("alpha"))
    await client.post("/collections", json=make_collection("beta"))
    landing = (await client.get("/")).json()
    rels = {link["rel"] for link in landing["links"]}
    assert {"self", "root", "conformance", "data", "search", "service-desc", "service-doc"} <= rels
    children = [link["href"] for link in landing["links"] if link["rel"] == "child"]
    assert children == ["http://testserver/collections/alpha", "http://testserver/collections/beta"]
    assert all(link["href"].startswith("http://") for link in landing["links"])


async def test_conformance_declares_core_classes(client: httpx.AsyncClient) -> None:
    classes = (await client.get("/conformance")).json()["conformsTo"]
    for expected in ("core", "collections", "item-search", "ogcapi-features", "browseable"):
        assert f"https://api.stacspec.org/v1.0.0/{expected}" in classes


async def test_collection_round_trip(client: httpx.AsyncClient) -> None:
    await client.post("/collections", json=make_collection("alpha", title="Alpha"))
    collection = (await client.get("/collections/alpha")).json()
    assert collection["title"] == "Alpha"
    self_link = next(link for link in collection["links"] if link["rel"] == "self")
    assert self_link["href"] == "http://testserver/collections/alpha"
    listing = (await client.get("/collections")).json()
    assert [c["id"] for c in listing["collections"]] == ["alpha"]


async def test_get_item_returns_stored_item_with_links(client: httpx.AsyncClient) -> None:
    item = make_item("a1", **{"eo:cloud_cover": 12.5})
    await seed(client, [item])
    got = (await client.get("/collections/test-collection/items/a1")).json()
    assert got["properties"] == item["properties"]
    assert got["geometry"] == item["geometry"]
    assert {link["rel"] for link in got["links"]} >= {"self", "parent", "collection", "root"}


@pytest.mark.parametrize(
    "path",
    [
        "/collections/missing",
        "/collections/missing/items",
        "/collections/test-collection/items/nope",
    ],
)
async def test_unknown_collection_or_item_is_404(client: httpx.AsyncClient, path: str) -> None:
    await client.post("/collections", json=make_collection())
    response = await client.get(path)
    assert response.status_code == 404
    assert set(response.json()) >= {"code", "description"}


async def test_search_pages_through_all_items_without_repeats(client: httpx.AsyncClient) -> None:
    items = grid_items(95)
    await seed(client, items)
    seen: list[str] = []
    url: str | None = "/search?collections=test-collection&limit=10"
    pages = 0
    while url:
        page = (await client.get(url)).json()
        seen += [feature["id"] for feature in page["features"]]
        assert page["numberReturned"] == len(page["features"])
        url = next((link["href"] for link in page["links"] if link["rel"] == "next"), None)
        pages += 1
    assert pages == 10
    assert seen == [item["id"] for item in reversed(items)]  # newest first, each once


async def test_post_search_pages_with_body_token(client: httpx.AsyncClient) -> None:
    items = grid_items(25)
    await seed(client, items)
    body: dict | None = {"collections": ["test-collection"], "limit": 10}
    seen: list[str] = []
    while body is not None:
        page = (await client.post("/search", json=body)).json()
        seen += [feature["id"] for feature in page["features"]]
        nxt = next((link for link in page["links"] if link["rel"] == "next"), None)
        assert nxt is None or nxt["method"] == "POST"
        body = nxt["body"] if nxt else None
    assert sorted(seen) == sorted(item["id"] for item in items)
    assert len(seen) == len(set(seen))


async def test_item_collection_pages_and_filters_by_bbox(client: httpx.AsyncClient) -> None:
    await seed(client, grid_items(80))
    page = (await client.get("/collections/test-collection/items?bbox=-10,35,-8,36&limit=5")).json()
    ids = [feature["id"] for feature in page["features"]]
    assert ids and all(feature["bbox"][0] <= -8 for feature in page["features"])
    assert len(ids) <= 5


@pytest.mark.parametrize(
    ("datetime", "expected"),
    [
        ("2021-01-01T05:00:00Z", ["item-0005"]),
        ("2021-01-01T02:00:00Z/2021-01-01T04:00:00Z", ["item-0004", "item-0003", "item-0002"]),
        ("../2021-01-01T01:00:00Z", ["item-0001", "item-0000"]),
        ("2021-01-01T08:00:00Z/..", ["item-0009", "item-0008"]),
    ],
)
async def test_search_datetime_instants_and_intervals(
    client: httpx.AsyncClient, datetime: str, expected: list[str]
) -> None:
    await seed(client, grid_items(10))
    page = (await client.get("/search", params={"datetime": datetime})).json()
    assert [feature["id"] for feature in page["features"]] == expected


async def test_interval_items_match_overlapping_ranges(client: httpx.AsyncClient) -> None:
    item = make_item("span")
    item["properties"] = {
        "datetime": None,
        "start_datetime": "2020-01-01T00:00:00Z",
        "end_datetime": "2020-12-31T23:59:59Z",
    }
    await seed(client, [item])
    hit = (await client.get("/search", params={"datetime": "2020-06-01T00:00:00Z"})).json()
    miss = (await client.get("/search", params={"datetime": "2021-06-01T00:00:00Z/.."})).json()
    assert [f["id"] for f in hit["features"]] == ["span"]
    assert miss["features"] == []


async def test_search_by_ids_and_intersects(client: httpx.AsyncClient) -> None:
    await seed(client, grid_items(10))
    by_ids = (await client.get("/search?ids=item-0001,item-0003")).json()
    assert sorted(f["id"] for f in by_ids["features"]) == ["item-0001", "item-0003"]
    assert by_ids["numberMatched"] == 2
    triangle = {
        "type": "Polygon",
        "coordinates": [[[-9.8, 35.1], [-9.6, 35.1], [-9.7, 35.3], [-9.8, 35.1]]],
    }
    hit = (await client.post("/search", json={"intersects": triangle})).json()
    assert [f["id"] for f in hit["features"]] == ["item-0000"]


async def test_search_3d_bbox_uses_horizontal_extent(client: httpx.AsyncClient) -> None:
    await seed(client, grid_items(10))
    page = (await client.post("/search", json={"bbox": [-10, 35, -100, -9.9, 35.1, 100]})).json()
    assert [f["id"] for f in page["features"]] == ["item-0000"]


async def test_public_url_makes_every_link_absolute_under_it(
    settings, database, client: httpx.AsyncClient
) -> None:
    from api import create_app

    await seed(client, grid_items(3))
    public = settings.model_copy(update={"public_url": "https://stac.example.org/v1/"})
    transport = httpx.ASGITransport(app=create_app(public, database=database))
    async with httpx.AsyncClient(transport=transport, base_url="http://internal:8080") as http:
        page = (await http.get("/search?limit=1")).json()
    hrefs = [link["href"] for link in page["links"]]
    hrefs += [link["href"] for link in page["features"][0]["links"]]
    assert all(href.startswith("https://stac.example.org/v1/") for href in hrefs), hrefs


async def test_post_next_body_repeats_only_what_the_client_sent(client: httpx.AsyncClient) -> None:
    await seed(client, grid_items(5))
    page = (await client.post("/search", json={"limit": 2})).json()
    body = next(link for link in page["links"] if link["rel"] == "next")["body"]
    assert set(body) == {"limit", "token"}
    second = (await client.post("/search", json=body)).json()
    assert "assets" in second["features"][0]  # whole items, not the fields default set
