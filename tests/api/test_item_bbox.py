"""An item's bbox must be in range and contain its geometry: a write that says otherwise is
a 400 naming the bbox and the geometry's bounds (harvests recompute it instead)."""

from __future__ import annotations

import httpx
import pytest

from tests.helpers import make_collection, make_item

ITEMS = "/collections/test-collection/items"


@pytest.fixture
async def seeded(client: httpx.AsyncClient) -> httpx.AsyncClient:
    assert (await client.post("/collections", json=make_collection())).status_code == 201
    return client


def _with_bbox(item_id: str, bbox: list[float], **geometry: object) -> dict:
    item = make_item(item_id, **geometry)  # a 1-degree square at lon 10, lat 50 by default
    item["bbox"] = bbox
    return item


@pytest.mark.parametrize(
    ("bbox", "reason"),
    [
        ([0.0, 0.0, 1.0, 1.0], "does not contain the geometry"),
        ([10.0, 50.0, 10.5, 51.0], "does not contain the geometry"),
        ([10.0, 50.0, 11.0, 100.0], "latitude outside -90..90"),
        ([10.0, 50.0, 200.0, 51.0], "longitude outside -180..180"),
        ([10.0, 51.0, 11.0, 50.0], "south edge above its north edge"),
        ([10.0, 50.0, 5.0, 11.0, 51.0, 1.0], "lower elevation above its upper"),
    ],
)
async def test_a_wrong_bbox_is_400_naming_it(
    seeded: httpx.AsyncClient, bbox: list[float], reason: str
) -> None:
    response = await seeded.post(ITEMS, json=_with_bbox("x", bbox))
    assert response.status_code == 400, response.text
    description = response.json()["description"]
    assert reason in description and str(bbox) in description
    assert (await seeded.get(f"{ITEMS}/x")).status_code == 404


async def test_the_same_holds_for_put_and_bulk(seeded: httpx.AsyncClient) -> None:
    assert (await seeded.post(ITEMS, json=make_item("x"))).status_code == 201
    wrong = _with_bbox("x", [0.0, 0.0, 1.0, 1.0])
    assert (await seeded.put(f"{ITEMS}/x", json=wrong)).status_code == 400
    bulk = await seeded.post(
        "/collections/test-collection/bulk_items",
        json={"items": {"x": wrong}, "method": "upsert"},
    )
    assert bulk.status_code == 400
    stored = (await seeded.get(f"{ITEMS}/x")).json()
    assert stored["bbox"] == [10.0, 50.0, 11.0, 51.0]


@pytest.mark.parametrize(
    "bbox",
    [
        [10.0, 50.0, 11.0, 51.0],
        [9.999_999_5, 50.0, 11.000_000_4, 51.0],  # rounded: within the tolerance
        [-180.0, -90.0, 180.0, 90.0],  # wider than needed is still a bbox of it
        [10.0, 50.0, -3.0, 11.0, 51.0, 8.0],  # 3D
    ],
)
async def test_a_bbox_that_contains_the_geometry_is_kept(
    seeded: httpx.AsyncClient, bbox: list[float]
) -> None:
    response = await seeded.post(ITEMS, json=_with_bbox("x", bbox))
    assert response.status_code == 201, response.text
    assert (await seeded.get(f"{ITEMS}/x")).json()["bbox"] == bbox


async def test_an_antimeridian_bbox_holds_a_split_geometry(seeded: httpx.AsyncClient) -> None:
    item = make_item("fiji")
    east = [[178.0, -18.0], [180.0, -18.0], [180.0, -16.0], [178.0, -16.0], [178.0, -18.0]]
    west = [[-180.0, -18.0], [-179.0, -18.0], [-179.0, -16.0], [-180.0, -16.0], [-180.0, -18.0]]
    item["geometry"] = {"type": "MultiPolygon", "coordinates": [[east], [west]]}
    item["bbox"] = [178.0, -18.0, -179.0, -16.0]
    assert (await seeded.post(ITEMS, json=item)).status_code == 201
    item["id"], item["bbox"] = "fiji-wrong", [178.0, -18.0, -179.5, -16.0]
    response = await seeded.post(ITEMS, json=item)
    assert response.status_code == 400
    assert "does not contain the geometry" in response.json()["description"]
