"""Transactions and bulk transactions: writes need the key, bad writes lose nothing."""

from __future__ import annotations

import httpx
import pytest

from api import create_app
from tests.helpers import make_collection, make_item, make_settings

ITEMS = "/collections/test-collection/items"


@pytest.fixture
async def seeded(client: httpx.AsyncClient) -> httpx.AsyncClient:
    assert (await client.post("/collections", json=make_collection())).status_code == 201
    return client


async def test_create_then_get_item(seeded: httpx.AsyncClient) -> None:
    response = await seeded.post(ITEMS, json=make_item("x1"))
    assert response.status_code == 201
    assert (await seeded.get(f"{ITEMS}/x1")).json()["id"] == "x1"


async def test_creating_an_existing_item_conflicts(seeded: httpx.AsyncClient) -> None:
    await seeded.post(ITEMS, json=make_item("x1"))
    response = await seeded.post(ITEMS, json=make_item("x1"))
    assert response.status_code == 409
    assert "x1" in response.json()["description"]


async def test_creating_an_existing_collection_conflicts(seeded: httpx.AsyncClient) -> None:
    response = await seeded.post("/collections", json=make_collection())
    assert response.status_code == 409


async def test_item_into_missing_collection_is_404(client: httpx.AsyncClient) -> None:
    response = await client.post("/collections/nowhere/items", json=make_item("x1", "nowhere"))
    assert response.status_code == 404
    assert "nowhere" in response.json()["description"]


async def test_update_replaces_and_patch_merges(seeded: httpx.AsyncClient) -> None:
    await seeded.post(ITEMS, json=make_item("x1", platform="a"))
    replaced = make_item("x1", platform="b", gsd=10)
    assert (await seeded.put(f"{ITEMS}/x1", json=replaced)).status_code == 200
    patch = {"properties": {"platform": "c"}}
    response = await seeded.patch(f"{ITEMS}/x1", json=patch)
    assert response.status_code == 200, response.text
    stored = (await seeded.get(f"{ITEMS}/x1")).json()["properties"]
    assert stored["platform"] == "c" and stored["gsd"] == 10


async def test_json_patch_operations_apply(seeded: httpx.AsyncClient) -> None:
    await seeded.post(ITEMS, json=make_item("x1", platform="a"))
    operations = [{"op": "replace", "path": "/properties/platform", "value": "z"}]
    response = await seeded.patch(
        f"{ITEMS}/x1", json=operations, headers={"Content-Type": "application/json-patch+json"}
    )
    assert response.status_code == 200, response.text
    assert (await seeded.get(f"{ITEMS}/x1")).json()["properties"]["platform"] == "z"


async def test_update_of_missing_item_is_404(seeded: httpx.AsyncClient) -> None:
    response = await seeded.put(f"{ITEMS}/ghost", json=make_item("ghost"))
    assert response.status_code == 404


async def test_delete_item_and_collection(seeded: httpx.AsyncClient) -> None:
    await seeded.post(ITEMS, json=make_item("x1"))
    assert (await seeded.delete(f"{ITEMS}/x1")).status_code in (200, 204)
    assert (await seeded.get(f"{ITEMS}/x1")).status_code == 404
    assert (await seeded.delete("/collections/test-collection")).status_code in (200, 204)
    assert (await seeded.get("/collections/test-collection")).status_code == 404


async def test_collection_update_and_patch(seeded: httpx.AsyncClient) -> None:
    updated = make_collection(title="Renamed")
    assert (await seeded.put("/collections/test-collection", json=updated)).status_code == 200
    response = await seeded.patch("/collections/test-collection", json={"keywords": ["k"]})
    assert response.status_code == 200, response.text
    stored = (await seeded.get("/collections/test-collection")).json()
    assert stored["title"] == "Renamed" and stored["keywords"] == ["k"]


async def test_bulk_upsert_counts_new_changed_unchanged(seeded: httpx.AsyncClient) -> None:
    items = {f"b{i}": make_item(f"b{i}") for i in range(5)}
    url = "/collections/test-collection/bulk_items"
    first = await seeded.post(url, json={"items": items, "method": "upsert"})
    assert "5 new" in first.json()["message"]
    items["b0"] = make_item("b0", platform="changed")
    second = await seeded.post(url, json={"items": items, "method": "upsert"})
    assert "1 changed, 4 unchanged" in second.json()["message"]


async def test_bulk_insert_with_one_existing_item_writes_nothing(
    seeded: httpx.AsyncClient,
) -> None:
    await seeded.post(ITEMS, json=make_item("b1"))
    items = {f"b{i}": make_item(f"b{i}") for i in range(3)}
    response = await seeded.post(
        "/collections/test-collection/bulk_items", json={"items": items, "method": "insert"}
    )
    assert response.status_code == 409
    page = (await seeded.get("/search?collections=test-collection")).json()
    assert [feature["id"] for feature in page["features"]] == ["b1"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/collections"),
        ("POST", ITEMS),
        ("PUT", f"{ITEMS}/x1"),
        ("DELETE", f"{ITEMS}/x1"),
        ("POST", "/collections/test-collection/bulk_items"),
    ],
)
@pytest.mark.parametrize("header", [None, "Bearer wrong-key", "Basic dGVzdA=="])
async def test_writes_need_the_bearer_key(
    seeded: httpx.AsyncClient, method: str, path: str, header: str | None
) -> None:
    headers = {"Authorization": header} if header else {}
    request = seeded.build_request(method, path, json=make_item("x1"))
    request.headers.pop("Authorization")
    request.headers.update(headers)
    response = await seeded.send(request)
    assert response.status_code in (401, 403)
    assert (await seeded.get(f"{ITEMS}/x1")).status_code == 404


async def test_without_a_key_there_are_no_write_endpoints(session_db_url, database) -> None:
    app = create_app(make_settings(session_db_url, api_key=None), database=database)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as http:
        # POST /collections is then collection search (api.app._collection_search): it
        # answers a search, never creates
        response = await http.post("/collections", json=make_collection())
        assert response.status_code != 201
        assert (await http.get(f"/collections/{make_collection()['id']}")).status_code == 404
        for path in ("/collections/x", "/collections/x/items", "/collections/x/bulk_items"):
            assert (await http.post(path, json={})).status_code in (404, 405)
        conformance = (await http.get("/conformance")).json()["conformsTo"]
    assert not any("transaction" in uri for uri in conformance)
