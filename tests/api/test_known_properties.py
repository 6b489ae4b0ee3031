"""Property names in filters and sortby are checked against the queryables, which the API
caches: a property added after the cache was filled must be usable at once, and an
unknown one must still be a 400 naming it."""

from __future__ import annotations

import httpx

from tests.helpers import make_collection, make_item


async def _post_item(client: httpx.AsyncClient, item_id: str, **properties: object) -> None:
    item = make_item(item_id, "kp")
    item["properties"].update(properties)
    assert (await client.post("/collections/kp/items", json=item)).status_code == 201


async def test_a_property_added_after_caching_is_accepted_at_once(
    client: httpx.AsyncClient,
) -> None:
    await client.post("/collections", json=make_collection("kp"))
    await _post_item(client, "old", cloud=5)
    first = await client.get("/search", params={"filter": "cloud < 10", "collections": "kp"})
    assert [f["id"] for f in first.json()["features"]] == ["old"]  # names now cached

    await _post_item(client, "new", snow=3)
    for params in (
        {"filter": "snow = 3", "collections": "kp"},
        {"sortby": "snow", "collections": "kp", "limit": 1},  # ascending: NULLs last
    ):
        response = await client.get("/search", params=params)
        assert response.status_code == 200, response.text
        assert [f["id"] for f in response.json()["features"]] == ["new"]


async def test_unknown_properties_stay_a_400_with_a_cached_set(client: httpx.AsyncClient) -> None:
    await client.post("/collections", json=make_collection("kp"))
    await _post_item(client, "one", cloud=5)
    assert (await client.get("/search", params={"filter": "cloud < 10"})).status_code == 200
    for params in ({"filter": "nosuch = 1"}, {"sortby": "nosuch"}):
        response = await client.get("/search", params=params)
        assert response.status_code == 400
        assert "unknown property 'nosuch'" in response.json()["description"]
