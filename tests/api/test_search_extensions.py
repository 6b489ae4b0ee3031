"""Sort, fields and free-text search through the API (GET and POST)."""

from __future__ import annotations

import httpx
import orjson
import pytest

from tests.helpers import grid_items, make_collection, make_item


async def seed(client: httpx.AsyncClient, items: list[dict]) -> None:
    await client.post("/collections", json=make_collection())
    body = {"items": {item["id"]: item for item in items}, "method": "insert"}
    assert (await client.post("/collections/test-collection/bulk_items", json=body)).is_success


async def test_get_sortby_pages_in_order(client: httpx.AsyncClient) -> None:
    items = [make_item(f"s{i:02d}", rank=i % 4) for i in range(20)]
    await seed(client, items)
    url: str | None = "/search?sortby=-rank,%2Bid&limit=6"
    seen = []
    while url:
        page = (await client.get(url)).json()
        seen += [(f["properties"]["rank"], f["id"]) for f in page["features"]]
        url = next((link["href"] for link in page["links"] if link["rel"] == "next"), None)
    assert seen == sorted(seen, key=lambda pair: (-pair[0], pair[1]))
    assert len(seen) == 20


async def test_post_sortby_objects(client: httpx.AsyncClient) -> None:
    await seed(client, grid_items(10))
    body = {"sortby": [{"field": "properties.datetime", "direction": "asc"}], "limit": 3}
    page = (await client.post("/search", json=body)).json()
    assert [f["id"] for f in page["features"]] == ["item-0000", "item-0001", "item-0002"]
    assert page["links"][-1]["body"]["sortby"] == body["sortby"]


@pytest.mark.parametrize(
    ("fields", "present", "absent"),
    [
        ("", {"id", "type", "geometry", "bbox", "links", "assets"}, set()),
        ("id,properties.gsd", {"id", "properties"}, {"geometry", "assets"}),
        ("-geometry,-assets", {"id", "properties", "links"}, {"geometry", "assets"}),
        ("+geometry,-geometry", {"geometry"}, set()),
    ],
)
async def test_get_fields(
    client: httpx.AsyncClient, fields: str, present: set, absent: set
) -> None:
    await seed(client, [make_item("f1", gsd=10, platform="x")])
    response = await client.get("/search", params={"fields": fields})
    assert response.headers["content-type"] == "application/geo+json"
    feature = response.json()["features"][0]
    assert present <= set(feature) and not absent & set(feature)


async def test_post_fields_nested_include_inside_excluded_parent(client: httpx.AsyncClient) -> None:
    await seed(client, [make_item("f1", gsd=10, platform="x")])
    body = {"fields": {"include": ["properties.gsd"], "exclude": ["properties"]}}
    feature = (await client.post("/search", json=body)).json()["features"][0]
    assert feature == {"properties": {"gsd": 10}}


async def test_post_fields_null_is_400(client: httpx.AsyncClient) -> None:
    assert (await client.post("/search", json={"fields": None})).status_code == 400


async def test_free_text_matches_title_description_and_keywords(client: httpx.AsyncClient) -> None:
    items = [
        make_item("t1", title="Sea ice in the Arctic"),
        make_item("t2", description="Forest recovery after storm damage"),
        make_item("t3", keywords=["glacier", "alps"]),
        make_item("t4", title="Nothing to see"),
    ]
    await seed(client, items)

    async def ids(q: str) -> set[str]:
        return {f["id"] for f in (await client.get("/search", params={"q": q})).json()["features"]}

    assert await ids("ice") == {"t1"}
    assert await ids("forest,glacier") == {"t2", "t3"}
    assert await ids('"storm damage"') == {"t2"}
    assert await ids('"damage storm"') == set()
    page = (await client.post("/search", json={"q": ["alps"]})).json()
    assert [f["id"] for f in page["features"]] == ["t3"]


@pytest.mark.parametrize("nasty", ["'); DROP TABLE items; --", "a & b | !c", "::*", "\\x00"])
async def test_free_text_and_sortby_injection_strings_are_harmless(
    client: httpx.AsyncClient, nasty: str
) -> None:
    await seed(client, [make_item("keep")])
    response = await client.get("/search", params={"q": nasty})
    assert response.status_code in (200, 400)
    response = await client.get("/search", params={"sortby": nasty})
    assert response.status_code in (200, 400)
    assert (await client.get("/collections/test-collection/items/keep")).status_code == 200


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"gsd": {"eq": 10}}, {"q1"}),
        ({"gsd": {"neq": 10}}, {"q2", "q3"}),
        ({"gsd": {"gte": 20, "lt": 60}}, {"q2"}),
        ({"platform": {"startsWith": "sentinel"}}, {"q1", "q2"}),
        ({"platform": {"endsWith": "2a"}}, {"q1"}),
        ({"platform": {"contains": "nel-1"}}, {"q2"}),
        ({"platform": {"in": ["landsat-8", "sentinel-2a"]}}, {"q1", "q3"}),
        ({"platform": {"contains": "%"}}, set()),
    ],
)
async def test_query_extension(client: httpx.AsyncClient, query: dict, expected: set) -> None:
    await seed(
        client,
        [
            make_item("q1", gsd=10, platform="sentinel-2a"),
            make_item("q2", gsd=20, platform="sentinel-1b"),
            make_item("q3", gsd=60, platform="landsat-8"),
        ],
    )
    posted = (await client.post("/search", json={"query": query})).json()["features"]
    assert {f["id"] for f in posted} == expected
    got = (await client.get("/search", params={"query": orjson.dumps(query).decode()})).json()
    assert {f["id"] for f in got["features"]} == expected


async def test_query_extension_bad_operator_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post("/search", json={"query": {"gsd": {"almost": 3}}})
    assert response.status_code == 400
    assert "almost" in response.json()["description"]


async def test_query_extension_numeric_strings_compare_as_numbers(
    client: httpx.AsyncClient,
) -> None:
    await seed(client, [make_item("n1", gsd=10), make_item("n2", gsd=20, code="10")])
    for query, expected in (
        ({"gsd": {"eq": "10"}}, {"n1"}),
        ({"gsd": {"lt": "15"}}, {"n1"}),
        ({"code": {"eq": "10"}}, {"n2"}),
    ):
        found = (await client.post("/search", json={"query": query})).json()["features"]
        assert {f["id"] for f in found} == expected, query
