"""Ids a URL cannot carry as one path segment are refused on every API write path, and a
collection that holds items is deleted only on request (issue 14: one DELETE sent to item
`..`'s `self` link deleted a collection of 3,000 items)."""

from __future__ import annotations

import httpx
import pytest

from api import create_app
from tests.helpers import (
    TEST_API_KEY,
    grid_items,
    live_server,
    make_collection,
    make_item,
    make_settings,
)

ITEMS = "/collections/test-collection/items"
HOSTILE = ["..", ".", "a/b", "../../x", "a\\b", "a\x00b", "tab\there", ""]


@pytest.fixture
async def seeded(client: httpx.AsyncClient) -> httpx.AsyncClient:
    assert (await client.post("/collections", json=make_collection())).status_code == 201
    assert (await client.post(ITEMS, json=make_item("keep"))).status_code == 201
    return client


async def _stored_ids(client: httpx.AsyncClient) -> list[str]:
    page = (await client.get(ITEMS, params={"limit": 100})).json()
    return sorted(feature["id"] for feature in page["features"])


@pytest.mark.parametrize("item_id", HOSTILE)
async def test_post_refuses_a_hostile_item_id(seeded: httpx.AsyncClient, item_id: str) -> None:
    response = await seeded.post(ITEMS, json=make_item(item_id))
    assert response.status_code == 400, response.text
    assert "id" in response.json()["description"].lower()
    assert await _stored_ids(seeded) == ["keep"]


@pytest.mark.parametrize("item_id", ["..", "a/b"])
async def test_an_item_collection_post_with_one_hostile_id_stores_nothing(
    seeded: httpx.AsyncClient, item_id: str
) -> None:
    body = {"type": "FeatureCollection", "features": [make_item("fine"), make_item(item_id)]}
    response = await seeded.post(ITEMS, json=body)
    assert response.status_code == 400
    assert repr(item_id) in response.json()["description"]
    assert await _stored_ids(seeded) == ["keep"]


async def test_put_to_a_dot_dot_url_is_refused_and_the_collection_kept(
    seeded: httpx.AsyncClient,
) -> None:
    # httpx keeps %2E%2E; the server decodes it to `..` before routing
    response = await seeded.put(f"{ITEMS}/%2E%2E", json=make_item(".."))
    assert response.status_code in (400, 404), response.text
    assert await _stored_ids(seeded) == ["keep"]


@pytest.mark.parametrize("item_id", ["..", "a/b", "a\\b"])
async def test_bulk_refuses_a_hostile_id_and_stores_nothing(
    seeded: httpx.AsyncClient, item_id: str
) -> None:
    body = {"items": {"fine": make_item("fine"), item_id: make_item(item_id)}}
    response = await seeded.post("/collections/test-collection/bulk_items", json=body)
    assert response.status_code == 400, response.text
    assert "item id" in response.json()["description"]
    assert await _stored_ids(seeded) == ["keep"]


@pytest.mark.parametrize("collection_id", ["..", ".", "a/b", "x\\y"])
async def test_a_hostile_collection_id_is_refused(
    client: httpx.AsyncClient, collection_id: str
) -> None:
    response = await client.post("/collections", json=make_collection(collection_id))
    assert response.status_code == 400, response.text
    assert "collection id" in response.json()["description"]
    ids = [c["id"] for c in (await client.get("/collections")).json()["collections"]]
    assert collection_id not in ids


async def test_a_hostile_collection_named_inside_an_item_is_refused(
    client: httpx.AsyncClient,
) -> None:
    body = {"items": {"x": make_item("x", "..")}}
    response = await client.post("/collections/%2E%2E/bulk_items", json=body)
    assert response.status_code in (400, 404)


async def test_an_overlong_id_is_refused_by_name_not_by_the_index(
    seeded: httpx.AsyncClient,
) -> None:
    response = await seeded.post(ITEMS, json=make_item("é" * 600))  # 1,200 bytes
    assert response.status_code == 400
    assert "1024 bytes" in response.json()["description"]


async def test_delete_to_an_encoded_dot_dot_item_touches_nothing(
    seeded: httpx.AsyncClient,
) -> None:
    response = await seeded.delete(f"{ITEMS}/%2E%2E")
    assert response.status_code == 404
    assert await _stored_ids(seeded) == ["keep"]


async def test_deleting_a_collection_with_items_is_refused_without_cascade(
    seeded: httpx.AsyncClient,
) -> None:
    response = await seeded.delete("/collections/test-collection")
    assert response.status_code == 409
    description = response.json()["description"]
    assert "1 items" in description and "cascade=true" in description
    assert await _stored_ids(seeded) == ["keep"]


async def test_cascade_deletes_the_collection_with_its_items(seeded: httpx.AsyncClient) -> None:
    response = await seeded.delete("/collections/test-collection", params={"cascade": "true"})
    assert response.status_code == 204
    assert (await seeded.get("/collections/test-collection")).status_code == 404
    assert (await seeded.get(f"{ITEMS}/keep")).status_code == 404


async def test_an_empty_collection_is_deleted_without_cascade(client: httpx.AsyncClient) -> None:
    assert (await client.post("/collections", json=make_collection("empty"))).status_code == 201
    assert (await client.delete("/collections/empty")).status_code == 204


async def test_a_cascade_that_is_not_a_boolean_is_400(seeded: httpx.AsyncClient) -> None:
    response = await seeded.delete("/collections/test-collection", params={"cascade": "maybe"})
    assert response.status_code == 400
    assert await _stored_ids(seeded) == ["keep"]


async def test_the_cascade_parameter_is_in_the_openapi_document(
    client: httpx.AsyncClient,
) -> None:
    document = (await client.get("/api")).json()
    parameters = document["paths"]["/collections/{collection_id}"]["delete"]["parameters"]
    assert "cascade" in {parameter["name"] for parameter in parameters}


def test_the_attack_on_a_live_server_loses_nothing(fresh_db_url) -> None:
    """The issue's sequence with a real client over TCP: create 300 items, try to create
    item `..`, then DELETE its would-be self link (the collection URL once normalised)."""
    app = create_app(make_settings(fresh_db_url))
    headers = {"Authorization": f"Bearer {TEST_API_KEY}"}
    with live_server(app) as base, httpx.Client(base_url=base, headers=headers) as http:
        assert http.post("/collections", json=make_collection()).status_code == 201
        bulk = {"items": {item["id"]: item for item in grid_items(300)}}
        assert http.post("/collections/test-collection/bulk_items", json=bulk).status_code == 200
        assert http.post(ITEMS, json=make_item("..")).status_code == 400
        # what `curl -X DELETE .../items/..` and httpx send: the normalised URL
        normalised = str(httpx.URL(f"{base}{ITEMS}/.."))
        assert normalised == f"{base}/collections/test-collection"
        assert http.delete(normalised).status_code == 409
        page = http.get(ITEMS, params={"limit": 1000}).json()
        assert len(page["features"]) == 300


@pytest.mark.parametrize(
    "item_id", ["with space", "50%", "%2E%2E", "a:b;c=d", "ünï", "a?b#c", "..."]
)
def test_ids_that_are_kept_round_trip_through_their_self_link(fresh_db_url, item_id: str) -> None:
    """Accepted ids that need percent-encoding: a client that follows `self` reads and
    deletes exactly that item."""
    app = create_app(make_settings(fresh_db_url))
    headers = {"Authorization": f"Bearer {TEST_API_KEY}"}
    with live_server(app) as base, httpx.Client(base_url=base, headers=headers) as http:
        assert http.post("/collections", json=make_collection()).status_code == 201
        assert http.post(ITEMS, json=make_item("other")).status_code == 201
        created = http.post(ITEMS, json=make_item(item_id))
        assert created.status_code == 201, created.text
        self_href = next(link["href"] for link in created.json()["links"] if link["rel"] == "self")
        assert http.get(self_href).json()["id"] == item_id
        assert http.delete(self_href).status_code == 204
        assert http.get(self_href).status_code == 404
        assert http.get(f"{ITEMS}/other").status_code == 200
