"""The Filter extension over HTTP: GET cql2-text, POST cql2-json, the items endpoint, paging,
and bad input (a 400 that says what and where, never a 500)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from catalogue.filters import CRS84
from tests.api.test_bad_input import assert_stac_error
from tests.api.test_core import seed
from tests.helpers import make_item

COLLECTION = "filter-test"
ITEMS = f"/collections/{COLLECTION}/items"
START = datetime(2021, 6, 1, tzinfo=UTC)


def scenes(count: int = 30) -> list[dict[str, Any]]:
    """Scenes one day apart on a row of squares; cloud cover 0, 7, 14 ... (mod 100)."""
    return [
        make_item(
            f"scene-{index:02d}",
            COLLECTION,
            lon=index,
            lat=45.0,
            when=START + timedelta(days=index),
            **{
                "eo:cloud_cover": (index * 7) % 100,
                "platform": "sentinel-2a" if index % 2 else "Sentinel-2B",
                "tags": ["even"] if index % 2 == 0 else ["odd"],
            },
        )
        for index in range(count)
    ]


def ids(response: httpx.Response) -> set[str]:
    assert response.status_code == 200, response.text
    return {feature["id"] for feature in response.json()["features"]}


def expected(predicate: Any) -> set[str]:
    return {item["id"] for item in scenes() if predicate(item["properties"])}


@pytest.fixture
async def catalogue(client: httpx.AsyncClient) -> httpx.AsyncClient:
    await seed(client, scenes(), COLLECTION)
    return client


# -- the three places a filter goes --------------------------------------------------------------
async def test_get_search_takes_cql2_text_by_default(catalogue: httpx.AsyncClient) -> None:
    params = {"filter": "eo:cloud_cover < 30 AND CASEI(platform) = 'sentinel-2b'", "limit": 100}
    want = expected(lambda p: p["eo:cloud_cover"] < 30 and p["platform"] == "Sentinel-2B")
    assert ids(await catalogue.get("/search", params=params)) == want


async def test_get_search_takes_cql2_json_when_told(catalogue: httpx.AsyncClient) -> None:
    cql2_json = op("a_contains", {"property": "tags"}, ["odd"])
    params = {"filter": json.dumps(cql2_json), "filter-lang": "cql2-json", "limit": 100}
    assert ids(await catalogue.get("/search", params=params)) == expected(
        lambda p: p["tags"] == ["odd"]
    )


def op(name: str, *args: Any) -> dict[str, Any]:
    return {"op": name, "args": list(args)}


GEOMETRY, DATETIME = {"property": "geometry"}, {"property": "datetime"}


async def test_post_search_takes_cql2_json(catalogue: httpx.AsyncClient) -> None:
    body = {
        "filter-lang": "cql2-json",
        "filter-crs": CRS84,
        "filter": op(
            "and",
            op("s_intersects", GEOMETRY, {"bbox": [4.5, 44, 9.5, 47]}),
            op("t_after", DATETIME, {"timestamp": "2021-06-06T00:00:00Z"}),
        ),
        "limit": 100,
    }
    # squares [i, i+1]: 4..9 meet the bbox; days 6.. are after June 6th 00:00
    want = {f"scene-{i:02d}" for i in (6, 7, 8, 9)}
    assert ids(await catalogue.post("/search", json=body)) == want


async def test_items_endpoint_takes_a_filter(catalogue: httpx.AsyncClient) -> None:
    params = {"filter": "eo:cloud_cover BETWEEN 10 AND 50", "limit": 100}
    want = expected(lambda p: 10 <= p["eo:cloud_cover"] <= 50)
    assert ids(await catalogue.get(ITEMS, params=params)) == want


async def test_the_filter_combines_with_the_other_parameters(catalogue: httpx.AsyncClient) -> None:
    params = {"filter": "eo:cloud_cover > 50", "bbox": "0,44,10,46", "ids": "scene-07,scene-08"}
    assert ids(await catalogue.get("/search", params=params)) == {"scene-08"}  # 7 * 7, 8 * 7


# -- paging --------------------------------------------------------------------------------------
async def test_get_paging_carries_the_filter(catalogue: httpx.AsyncClient) -> None:
    want = expected(lambda p: p["platform"] == "sentinel-2a")
    seen: list[str] = []
    url: str | None = (
        "/search?" + httpx.QueryParams({"filter": "platform = 'sentinel-2a'", "limit": 4}).__str__()
    )
    while url:
        response = await catalogue.get(url)
        seen += [feature["id"] for feature in response.json()["features"]]
        next_links = [link for link in response.json()["links"] if link["rel"] == "next"]
        url = next_links[0]["href"] if next_links else None
        if url:
            assert parse_qs(urlsplit(url).query)["filter"] == ["platform = 'sentinel-2a'"]
    assert len(seen) == len(set(seen)) and set(seen) == want


async def test_post_paging_carries_the_filter(catalogue: httpx.AsyncClient) -> None:
    cloudless = op("<", {"property": "eo:cloud_cover"}, 50)
    body: dict[str, Any] = {"filter": cloudless, "limit": 3}
    seen: list[str] = []
    while True:
        response = await catalogue.post("/search", json=body)
        seen += [feature["id"] for feature in response.json()["features"]]
        next_links = [link for link in response.json()["links"] if link["rel"] == "next"]
        if not next_links:
            break
        body = next_links[0]["body"]
        assert body["filter"] == cloudless
    assert len(seen) == len(set(seen)) and set(seen) == expected(lambda p: p["eo:cloud_cover"] < 50)


# -- what the API declares -------------------------------------------------------------------------
async def test_conformance_and_queryables_are_declared(client: httpx.AsyncClient) -> None:
    conforms = set((await client.get("/conformance")).json()["conformsTo"])
    cql2 = "http://www.opengis.net/spec/cql2/1.0/conf/"
    assert {
        f"{cql2}{name}"
        for name in (
            "cql2-text",
            "cql2-json",
            "basic-cql2",
            "spatial-functions",
            "temporal-functions",
            "array-functions",
            "accent-insensitive-comparison",
        )
    } <= conforms
    assert "https://api.stacspec.org/v1.0.0-rc.2/item-search#filter" in conforms
    assert f"{cql2}functions" not in conforms  # no custom functions
    landing = (await client.get("/")).json()
    queryables = [lk for lk in landing["links"] if lk["rel"].endswith("/ogc/1.0/queryables")]
    assert queryables and (await client.get(queryables[0]["href"])).status_code == 200  # fmt: skip


# -- bad input ----------------------------------------------------------------------------------
BAD_TEXT = [
    ("eo:cloud_cover < ", ["line 1, column 18", "expected"]),
    ("eo:cloud_cover <> 5 AND (platform = 'x'", ["line 1", "column"]),
    ("nope = 1", ["unknown property", "nope"]),
    ("properties.nope IS NULL", ["unknown property", "properties.nope"]),
    ("S_INTERSECTS(geometry, POLYGON((0 0, 1 1)))", ["geometry"]),
    ("S_INTERSECTS(geometry, POLYGON((0 0, 2 2, 2 0, 0 2, 0 0)))", ["self-intersection"]),
    ("S_INTERSECTS(geometry, POINT(1 x))", ["line 1, column"]),
    ("S_INTERSECTS(eo:cloud_cover, POINT(1 1))", ["eo:cloud_cover"]),
    (
        "T_DURING(datetime, INTERVAL('2022-01-01T00:00:00Z', '2021-01-01T00:00:00Z'))",
        ["starts after it ends"],
    ),
    ("datetime > TIMESTAMP('2021-13-45T00:00:00Z')", ["timestamp"]),
    ("id = 5", ["cannot compare", "id"]),
    ("LOWER(platform) = 'x'", ["LOWER"]),
    ("(" * 5000 + "id = 'x'" + ")" * 5000, ["parentheses nested 5000 deep"]),
    ("NOT " * 15000 + "id = 'x'", ["nested more than"]),
    ("eo:cloud_cover ^ -1 > 1 AND eo:cloud_cover = 0", ["raises zero to a negative power"]),
]


@pytest.mark.parametrize(("cql2_text", "words"), BAD_TEXT)
async def test_bad_filters_are_400_saying_what_and_where(
    catalogue: httpx.AsyncClient, cql2_text: str, words: list[str]
) -> None:
    response = await catalogue.get("/search", params={"filter": cql2_text})
    assert_stac_error(response, 400, *words)


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"filter-lang": "cql3"}, ["filter-lang"]),
        ({"filter-crs": "EPSG:3857"}, ["filter-crs", "CRS84"]),
        ({"filter-lang": "cql2-json", "filter": '{"op": "=", "args": [{"x": 1}, 2]}'}, ['{"x":1}']),
        ({"filter-lang": "cql2-json", "filter": '{"op": "="'}, ["line 1, column"]),
    ],
)
async def test_bad_filter_languages_and_crs_are_400(
    catalogue: httpx.AsyncClient, params: dict[str, str], words: list[str]
) -> None:
    response = await catalogue.get("/search", params={"filter": "platform = 'x'", **params})
    assert_stac_error(response, 400, *words)


BAD_POLYGON = {"type": "Polygon", "coordinates": [[[0, 0], [1, 1]]]}


def nested_not(depth: int) -> dict[str, Any]:
    tree = op("=", {"property": "id"}, "x")
    for _ in range(depth):
        tree = op("not", tree)
    return tree


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"filter": op("=", {"property": "nope"}, 1)}, ["unknown property", "nope"]),
        ({"filter": op("bogus", 1)}, ["bogus"]),
        ({"filter": op("=", {"property": "id"})}, ["takes 2 argument"]),
        ({"filter": "id = ", "filter-lang": "cql2-text"}, ["invalid cql2-text", "line 1"]),
        ({"filter": op("s_intersects", GEOMETRY, BAD_POLYGON)}, ["geometry"]),
        ({"filter": op("=", {"property": "id"}, "x"), "filter-crs": "EPSG:4326"}, ["filter-crs"]),
        ({"filter": nested_not(300)}, ["nested more than"]),
    ],
)
async def test_bad_post_filters_are_400(
    catalogue: httpx.AsyncClient, body: dict[str, Any], words: list[str]
) -> None:
    assert_stac_error(await catalogue.post("/search", json=body), 400, *words)


INJECTIONS = [
    "'; DROP TABLE items; --",
    '" OR 1=1 --',
    "x') OR ('1'='1",
    "1; SELECT pg_sleep(5)",
    "$1",
    "\\'; DELETE FROM collections; --",
    "%' OR '%'='",
]


@pytest.mark.parametrize("injection", INJECTIONS)
async def test_injection_strings_are_a_400_or_an_empty_result(
    catalogue: httpx.AsyncClient, injection: str
) -> None:
    quoted = injection.replace("'", "''")
    identifier = injection.replace('"', "")
    texts = [
        f"platform = '{quoted}'",
        f"id LIKE '{quoted}'",
        f'"{identifier}" = 1',
        f"collection IN ('{quoted}', 'x')",
    ]
    trees = [
        op("=", {"property": injection}, 1),
        op("=", {"property": "platform"}, injection),
        op("a_contains", {"property": "tags"}, [injection]),
    ]
    for text in texts:
        response = await catalogue.get("/search", params={"filter": text})
        assert response.status_code in (200, 400), response.text
        if response.status_code == 200:
            assert response.json()["features"] == []
    for tree in trees:
        response = await catalogue.post("/search", json={"filter": tree})
        assert response.status_code in (200, 400), response.text
        if response.status_code == 200:
            assert response.json()["features"] == []
    everything = await catalogue.get("/search", params={"limit": 100})
    assert len(ids(everything)) == len(scenes())  # nothing dropped or deleted
