"""`limit=0`: `numberMatched` alone, no features, on GET and POST /search and on
/collections/{id}/items; the count obeys the same budget as every other page's."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from shapely.geometry import box, shape

from api import create_app
from catalogue.settings import ApiSettings, Settings
from tests.helpers import grid_items, make_collection

ITEMS = grid_items(45, "zero-a") + grid_items(15, "zero-b")
REGION = box(-10, 35, 0, 36)
IN_REGION = [item for item in ITEMS if shape(item["geometry"]).intersects(REGION)]


async def seed(client: httpx.AsyncClient) -> None:
    for collection in ("zero-a", "zero-b"):
        assert (await client.post("/collections", json=make_collection(collection))).is_success
        chosen = {item["id"]: item for item in ITEMS if item["collection"] == collection}
        response = await client.post(
            f"/collections/{collection}/bulk_items", json={"items": chosen, "method": "insert"}
        )
        assert response.is_success, response.text


def assert_count_alone(body: dict[str, Any], matched: int | None) -> None:
    assert body["type"] == "FeatureCollection"
    assert body["features"] == [] and body["numberReturned"] == 0
    assert body.get("numberMatched") == matched
    assert not [link for link in body["links"] if link["rel"] in ("next", "prev")]


@pytest.mark.parametrize(
    ("params", "matched"),
    [
        ({}, 60),
        ({"collections": "zero-b"}, 15),
        ({"bbox": "-10,35,0,36"}, len(IN_REGION)),
        ({"filter": "id LIKE 'item-000%'"}, 20),
        ({"datetime": "1999-01-01T00:00:00Z/1999-12-31T00:00:00Z"}, 0),
    ],
)
async def test_get_search_limit_zero_counts(
    client: httpx.AsyncClient, params: dict[str, Any], matched: int
) -> None:
    await seed(client)
    response = await client.get("/search", params={**params, "limit": 0})
    assert response.status_code == 200, response.text
    assert_count_alone(response.json(), matched)


async def test_post_search_limit_zero_counts(client: httpx.AsyncClient) -> None:
    await seed(client)
    body = {"limit": 0, "collections": ["zero-a"], "bbox": [-10, 35, 0, 36]}
    response = await client.post("/search", json=body)
    assert response.status_code == 200, response.text
    assert_count_alone(
        response.json(), len([item for item in IN_REGION if item["collection"] == "zero-a"])
    )


async def test_items_limit_zero_counts_the_collection(client: httpx.AsyncClient) -> None:
    await seed(client)
    response = await client.get("/collections/zero-b/items", params={"limit": 0})
    assert response.status_code == 200, response.text
    assert_count_alone(response.json(), 15)


@pytest.fixture
async def never_counting(settings: Settings, database: Any) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(
        settings.model_copy(update={"api": ApiSettings(count_timeout_ms=0)}), database=database
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


async def test_without_a_count_budget_only_an_empty_result_is_counted(
    client: httpx.AsyncClient, never_counting: httpx.AsyncClient
) -> None:
    """CUBESTAC_API__COUNT_TIMEOUT_MS=0 turns the count off for `limit=0` too: what is free
    to know (no match at all) is still said."""
    await seed(client)
    assert_count_alone((await never_counting.get("/search?limit=0")).json(), None)
    empty = await never_counting.get("/search", params={"limit": 0, "ids": "nothing"})
    assert_count_alone(empty.json(), 0)


@pytest.mark.parametrize("limit", ["-1", "x"])
async def test_a_negative_limit_is_still_a_400(client: httpx.AsyncClient, limit: str) -> None:
    response = await client.get("/search", params={"limit": limit})
    assert response.status_code == 400
    assert "limit" in response.json()["description"]
    assert (await client.post("/search", json={"limit": -1})).status_code == 400
    assert (await client.get("/collections/x/items", params={"limit": limit})).status_code == 400
