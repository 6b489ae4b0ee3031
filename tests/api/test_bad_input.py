"""Bad input: a 400 (or 404/413) with a STAC-shaped error naming the problem; nothing lost."""

from __future__ import annotations

import httpx
import pytest

from tests.helpers import TEST_API_KEY, make_collection, make_item

ITEMS = "/collections/test-collection/items"


def assert_stac_error(response: httpx.Response, status: int, *words: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) >= {"code", "description"}
    for word in words:
        assert word.lower() in body["description"].lower(), body


@pytest.mark.parametrize(
    ("query", "word"),
    [
        ("bbox=1,2,3", "bbox"),
        ("bbox=1,60,3,50", "bbox"),
        ("bbox=a,b,c,d", "bbox"),
        ("datetime=yesterday", "datetime"),
        ("datetime=2021-02-01T00:00:00Z/2021-01-01T00:00:00Z", "datetime"),
        ("limit=-5", "limit"),
        ("token=not-a-token", "token"),
        ("intersects={bad json", "intersects"),
        ('intersects={"type":"Polygon","coordinates":[[[0,0],[1,1]]]}', "intersects"),
    ],
)
async def test_bad_search_parameters_are_400(
    client: httpx.AsyncClient, query: str, word: str
) -> None:
    assert_stac_error(await client.get(f"/search?{query}"), 400, word)


@pytest.mark.parametrize(
    ("body", "word"),
    [
        ({"bbox": [0, 0, 1]}, "bbox"),
        ({"limit": "many"}, "limit"),
        ({"datetime": "2021-13-45"}, "datetime"),
        ({"intersects": {"type": "Polygon", "coordinates": "nope"}}, "intersects"),
        ({"collections": 5}, "collections"),
    ],
)
async def test_bad_search_bodies_are_400(client: httpx.AsyncClient, body: dict, word: str) -> None:
    assert_stac_error(await client.post("/search", json=body), 400, word)


async def test_malformed_json_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/search", content=b'{"limit": 3', headers={"Content-Type": "application/json"}
    )
    assert_stac_error(response, 400)


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_limit_above_the_configured_maximum_is_capped(settings, database, method) -> None:
    """OGC API - Features /rec/core/fc-limit-default-maximum: use the maximum, no error."""
    from api import create_app

    strict = settings.model_copy(update={"api": settings.api.model_copy(update={"max_limit": 2})})
    app = create_app(strict, database=database)
    headers = {"Authorization": f"Bearer {TEST_API_KEY}"}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t", headers=headers
    ) as h:
        assert (await h.post("/collections", json=make_collection())).status_code == 201
        for index in range(3):
            item = make_item(f"item-{index}")
            assert (await h.post(ITEMS, json=item)).status_code == 201
        if method == "GET":
            response = await h.get("/search?limit=50000")
        else:
            response = await h.post("/search", json={"limit": 50000})
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["features"]) == 2
        assert any(link["rel"] == "next" for link in page["links"])
        collections = (await h.get("/collections?limit=50000")).json()
        assert collections["numberReturned"] == 1


async def test_body_over_the_size_limit_is_413(settings, database) -> None:
    from api import create_app

    small = settings.model_copy(
        update={"api": settings.api.model_copy(update={"max_body_bytes": 2048})}
    )
    app = create_app(small, database=database)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as h:
        response = await h.post("/search", json={"ids": ["x" * 100] * 50})
    assert response.status_code == 413
    assert "limit" in response.json()["description"]


@pytest.mark.parametrize(
    ("mutate", "word"),
    [
        (lambda item: item.pop("geometry"), "geometry"),
        (
            lambda item: item.update(
                geometry={
                    "type": "Polygon",
                    "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]],
                }
            ),
            "geometry",
        ),
        (lambda item: item["properties"].update(datetime="not a date"), "datetime"),
        (lambda item: item["properties"].update(datetime=None), "datetime"),
        (lambda item: item.update(type="Collection"), "type"),
        (lambda item: item.update(collection="other"), "collection"),
    ],
)
async def test_invalid_items_are_refused_and_nothing_is_written(
    client: httpx.AsyncClient, mutate, word: str
) -> None:
    await client.post("/collections", json=make_collection())
    item = make_item("bad")
    mutate(item)
    response = await client.post(ITEMS, json=item)
    assert response.status_code == 400, response.text
    assert word in response.text.lower()
    assert (await client.get(f"{ITEMS}/bad")).status_code == 404


async def test_bulk_with_one_invalid_item_writes_nothing(client: httpx.AsyncClient) -> None:
    await client.post("/collections", json=make_collection())
    items = {f"ok{i}": make_item(f"ok{i}") for i in range(3)}
    broken = make_item("broken")
    broken["properties"]["datetime"] = "31/12/2021"
    items["broken"] = broken
    response = await client.post(
        "/collections/test-collection/bulk_items", json={"items": items, "method": "upsert"}
    )
    assert_stac_error(response, 400, "broken")
    assert (await client.get("/search")).json()["features"] == []


@pytest.mark.parametrize(
    "nasty",
    ["' OR 1=1 --", "x'); DROP TABLE items; --", '"; DELETE FROM collections; --', "%' OR '%'='"],
)
async def test_injection_strings_are_just_values(client: httpx.AsyncClient, nasty: str) -> None:
    await client.post("/collections", json=make_collection())
    await client.post(ITEMS, json=make_item("keep"))
    for query in ({"ids": nasty}, {"collections": nasty}):
        response = await client.get("/search", params=query)
        assert response.status_code == 200
        assert response.json()["features"] == []
    assert (await client.get(f"/collections/{nasty}")).status_code == 404
    assert (await client.get(f"{ITEMS}/keep")).status_code == 200


async def test_bulk_item_that_is_not_stac_names_the_item(client: httpx.AsyncClient) -> None:
    await client.post("/collections", json=make_collection())
    broken = make_item("nostac")
    broken["assets"] = {"data": {"title": "an asset without href"}}
    response = await client.post(
        "/collections/test-collection/bulk_items",
        json={"items": {"nostac": broken}, "method": "insert"},
    )
    assert_stac_error(response, 400, "nostac", "href")


@pytest.mark.parametrize(
    "geometry",
    [
        {"type": "LineString", "coordinates": [[0, 0]]},
        {"type": "Polygon", "coordinates": [[[0, 0], [1, 1]]]},
        {"type": "Point", "coordinates": []},
    ],
)
async def test_degenerate_intersects_geometries_are_400(
    client: httpx.AsyncClient, geometry: dict
) -> None:
    response = await client.post("/search", json={"intersects": geometry})
    assert response.status_code == 400, response.text


async def test_unknown_sortby_property_is_400_naming_it(client: httpx.AsyncClient) -> None:
    await client.post("/collections", json=make_collection())
    await client.post(ITEMS, json=make_item("a", gsd=10))
    assert (await client.get("/search?sortby=-gsd")).status_code == 200
    assert_stac_error(await client.get("/search?sortby=-nope"), 400, "nope")
