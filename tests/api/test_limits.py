"""Request limits (ApiSettings): each refusal is a 400 naming the limit and its setting, on
GET and POST alike; a request just within the limit is answered. Security headers on the
HTML docs page."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from api import create_app
from tests.api.test_bad_input import assert_stac_error

SMALL = {
    "max_ids": 3,
    "max_collections": 2,
    "max_geometry_vertices": 10,
    "max_filter_text_chars": 300,
    "max_filter_json_chars": 400,
    "max_filter_depth": 8,
    "max_filter_nodes": 30,
    "max_q_chars": 20,
}


@pytest.fixture
async def strict(settings, database) -> AsyncIterator[httpx.AsyncClient]:
    small = settings.model_copy(update={"api": settings.api.model_copy(update=SMALL)})
    app = create_app(small, database=database)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        yield http


def ring(vertices: int) -> list[list[float]]:
    """A closed ring of `vertices` positions (the last repeats the first) on a small circle."""
    import math

    points = [
        [
            10 + math.cos(2 * math.pi * i / (vertices - 1)),
            50 + math.sin(2 * math.pi * i / (vertices - 1)),
        ]
        for i in range(vertices - 1)
    ]
    return [*points, points[0]]


def polygon(vertices: int) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": [ring(vertices)]}


def wkt(vertices: int) -> str:
    return "POLYGON((" + ", ".join(f"{x:.3f} {y:.3f}" for x, y in ring(vertices)) + "))"


def nested_not(levels: int) -> dict[str, Any]:
    """4 JSON levels for the comparison, 2 more per NOT."""
    tree: dict[str, Any] = {"op": "=", "args": [{"property": "id"}, "x"]}
    for _ in range(levels):
        tree = {"op": "not", "args": [tree]}
    return tree


def in_list(values: int) -> dict[str, Any]:
    return {"op": "in", "args": [{"property": "id"}, [f"v{i}" for i in range(values)]]}


# (name, GET query parameters, POST body, words the 400 names); each case is over the
# SMALL limits, and its `within` twin below is just inside them.
OVER = [
    ("ids", {"ids": "a,b,c,d"}, {"ids": ["a", "b", "c", "d"]}, ["ids", "MAX_IDS", "3"]),
    (
        "collections",
        {"collections": "a,b,c"},
        {"collections": ["a", "b", "c"]},
        ["collections", "MAX_COLLECTIONS", "2"],
    ),
    (
        "intersects",
        {"intersects": json.dumps(polygon(11))},
        {"intersects": polygon(11)},
        ["intersects", "vertices", "MAX_GEOMETRY_VERTICES"],
    ),
    (
        "intersects-multi",
        {"intersects": json.dumps({"type": "MultiPoint", "coordinates": [[0, 0]] * 11})},
        {"intersects": {"type": "MultiPoint", "coordinates": [[0, 0]] * 11}},
        ["intersects", "MAX_GEOMETRY_VERTICES"],
    ),
    (
        "filter-geometry",
        {"filter": f"S_INTERSECTS(geometry, {wkt(11)})"},
        {"filter": {"op": "s_intersects", "args": [{"property": "geometry"}, polygon(11)]}},
        ["filter", "vertices", "MAX_GEOMETRY_VERTICES"],
    ),
    (
        "filter-depth",
        {"filter": "(" * 9 + "id = 'x'" + ")" * 9},
        {"filter": nested_not(3)},
        ["filter", "MAX_FILTER_DEPTH"],
    ),
    (
        "filter-nodes",
        {"filter": json.dumps(in_list(30)), "filter-lang": "cql2-json"},
        {"filter": in_list(30)},
        ["filter", "30 nodes", "MAX_FILTER_NODES"],
    ),
    (
        "filter-length",
        {"filter": "id = '" + "x" * 300 + "'"},
        {"filter": {"op": "=", "args": [{"property": "id"}, "x" * 400]}},
        ["filter", "characters", "MAX_FILTER_"],
    ),
    ("q", {"q": "x" * 21}, {"q": ["x" * 10, "y" * 10]}, ["q", "MAX_Q_CHARS", "20"]),
]
WITHIN = {
    "ids": ({"ids": "a,b,c"}, {"ids": ["a", "b", "c"]}),
    "collections": ({"collections": "a,b"}, {"collections": ["a", "b"]}),
    "intersects": ({"intersects": json.dumps(polygon(10))}, {"intersects": polygon(10)}),
    "intersects-multi": (
        {"intersects": json.dumps({"type": "MultiPoint", "coordinates": [[0, 0]] * 10})},
        {"intersects": {"type": "MultiPoint", "coordinates": [[0, 0]] * 10}},
    ),
    "filter-geometry": (
        {"filter": f"S_INTERSECTS(geometry, {wkt(10)})"},
        {"filter": {"op": "s_intersects", "args": [{"property": "geometry"}, polygon(10)]}},
    ),
    "filter-depth": ({"filter": "(" * 8 + "id = 'x'" + ")" * 8}, {"filter": nested_not(2)}),
    "filter-nodes": (
        {"filter": json.dumps(in_list(20)), "filter-lang": "cql2-json"},
        {"filter": in_list(20)},
    ),
    "filter-length": (
        {"filter": "id = '" + "x" * 280 + "'"},
        {"filter": {"op": "=", "args": [{"property": "id"}, "x" * 340]}},
    ),
    "q": ({"q": "x" * 20}, {"q": ["x" * 10, "y" * 9]}),
}


@pytest.mark.parametrize(("name", "params", "body", "words"), OVER, ids=[c[0] for c in OVER])
async def test_over_a_limit_is_400_naming_it_on_get_and_post(
    strict: httpx.AsyncClient, name: str, params: dict, body: dict, words: list[str]
) -> None:
    assert_stac_error(await strict.get("/search", params=params), 400, *words)
    assert_stac_error(await strict.post("/search", json=body), 400, *words)


@pytest.mark.parametrize("name", list(WITHIN))
async def test_just_within_a_limit_is_answered(strict: httpx.AsyncClient, name: str) -> None:
    params, body = WITHIN[name]
    get = await strict.get("/search", params=params)
    post = await strict.post("/search", json=body)
    assert get.status_code == 200, get.text
    assert post.status_code == 200, post.text


async def test_limits_apply_to_the_items_endpoint_and_collection_search(
    strict: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    from tests.helpers import make_collection

    assert (await client.post("/collections", json=make_collection())).status_code == 201
    response = await strict.get(
        "/collections/test-collection/items", params={"filter": "(" * 9 + "id = 'x'" + ")" * 9}
    )
    assert_stac_error(response, 400, "MAX_FILTER_DEPTH")
    assert_stac_error(await strict.get("/collections", params={"q": "x" * 21}), 400, "MAX_Q_CHARS")


async def test_legacy_query_is_bounded_like_a_filter(strict: httpx.AsyncClient) -> None:
    query = {"id": {"in": [f"v{i}" for i in range(40)]}}
    assert_stac_error(await strict.post("/search", json={"query": query}), 400, "MAX_FILTER_NODES")


async def test_a_search_body_with_too_many_values_is_400_before_it_is_parsed(
    settings, database
) -> None:
    """Members nobody reads cost their parsing too: bounded by commas and brackets."""
    bounded = settings.api.model_copy(update={"max_search_body_values": 1_000})
    app = create_app(settings.model_copy(update={"api": bounded, "api_key": None}), database)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        for path in ("/search", "/collections"):  # item and collection search
            response = await http.post(path, json={"junk": [[] for _ in range(1_000)]})
            assert_stac_error(response, 400, "MAX_SEARCH_BODY_VALUES")
            assert (await http.post(path, json={"junk": [[] for _ in range(400)]})).is_success


async def test_brackets_in_strings_are_not_counted_as_vertices(strict: httpx.AsyncClient) -> None:
    """The raw count of `intersects` positions skips strings: no false refusal."""
    body = {
        "intersects": {"type": "Point", "coordinates": [10.0, 50.0]},
        "collections": ["[1, 2]" * 40],
    }
    response = await strict.post("/search", json=body)
    assert response.status_code == 200, response.text


async def test_the_raw_vertex_count_matches_the_parsed_one(strict: httpx.AsyncClient) -> None:
    """Positions counted on the bytes (spaces, negative numbers, a MultiPolygon) agree with
    the parsed count: 11 is refused, 10 answered."""
    square = [[[-1, -1], [1, -1], [1, 1], [-1, 1], [-1, -1]]]
    for vertices, status in ((11, 400), (10, 200)):
        triangle = [[[5, 5], [6, 5], [5, 6], *[[5, 6]] * (vertices - 9), [5, 5]]]
        geometry = {"type": "MultiPolygon", "coordinates": [square, triangle]}
        text = json.dumps({"intersects": geometry}).replace(",", " , ")
        response = await strict.post(
            "/search", content=text, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == status, response.text
        if status == 400:
            assert "MAX_GEOMETRY_VERTICES" in response.json()["description"]


def test_settings_come_from_the_environment(monkeypatch) -> None:
    from catalogue.settings import Settings

    monkeypatch.setenv("CUBESTAC_API__MAX_GEOMETRY_VERTICES", "123")
    monkeypatch.setenv("CUBESTAC_API__MAX_Q_CHARS", "45")
    api = Settings().api
    assert (api.max_geometry_vertices, api.max_q_chars) == (123, 45)


async def test_the_docs_page_has_security_headers_and_allows_its_own_script(
    client: httpx.AsyncClient,
) -> None:
    import base64
    import hashlib
    import re

    response = await client.get("/api.html")
    assert response.status_code == 200
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    csp = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp
    # Swagger UI keeps working offline: its bundle comes from this origin, its one inline
    # script is allowed by hash
    [inline] = re.findall(r"<script>(.*?)</script>", response.text, re.DOTALL)
    digest = base64.b64encode(hashlib.sha256(inline.encode()).digest()).decode()
    script_src = next(part for part in csp.split(";") if "script-src" in part).split()
    assert f"'sha256-{digest}'" in script_src
    assert "'unsafe-inline'" not in script_src
    assert not re.findall(r'(?:src|href)="https?://', response.text)  # nothing from a CDN
    assert "script-src 'self'" in csp
    for asset in re.findall(r'(?:src|href)="(/api\.html-assets/[^"]+)"', response.text):
        served = await client.get(asset)
        assert served.status_code == 200 and len(served.content) > 100, asset
    assert (
        (await client.get("/api.html-assets/swagger-ui-bundle.js"))
        .headers["content-type"]
        .endswith("javascript; charset=utf-8")
    )
    assert "connect-src 'self'" in csp  # the page fetches /api from its own origin


async def test_json_responses_get_nosniff_only(client: httpx.AsyncClient) -> None:
    response = await client.get("/")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" not in response.headers
