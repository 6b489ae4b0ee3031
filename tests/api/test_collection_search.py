"""Collection search: bbox, datetime, q, filter, sortby, fields, limit and paging on
GET /collections, and on POST /collections when Transactions are off."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from api import create_app
from catalogue.search import PageToken
from tests.helpers import make_collection


def collection(cid: str, bbox: list[float], interval: list, **extra) -> dict:
    return make_collection(
        cid, extent={"spatial": {"bbox": [bbox]}, "temporal": {"interval": [interval]}}, **extra
    )


@pytest.fixture
async def catalogue(client: httpx.AsyncClient) -> httpx.AsyncClient:
    y19, y20, y21 = "2019-01-01T00:00:00Z", "2020-12-31T23:59:59Z", "2021-01-01T00:00:00Z"
    y15 = "2016-01-01T00:00:00Z"
    for body in (
        collection("alps", [5, 45, 16, 48], [y19, y20], title="Alpine glaciers",
                   keywords=["ice", "glacier"]),
        collection("baltic", [10, 53, 30, 66], [y21, None], title="Baltic sea ice",
                   description="Sea ice charts"),
        collection("pacific", [170, -20, -170, 20], ["2015-01-01T00:00:00Z", y15],
                   title="Pacific atolls", keywords=["coral"]),
        collection("world", [-180, -90, 180, 90], [None, None], title="Forest biomass"),
    ):  # fmt: skip
        assert (await client.post("/collections", json=body)).status_code == 201
    return client


async def ids(client: httpx.AsyncClient, **params) -> list[str]:
    response = await client.get("/collections", params=params)
    assert response.status_code == 200, response.text
    return [c["id"] for c in response.json()["collections"]]


async def test_bbox_matches_extents_including_antimeridian(catalogue) -> None:
    assert await ids(catalogue, bbox="6,46,7,47") == ["alps", "world"]
    assert await ids(catalogue, bbox="175,0,179,1") == ["pacific", "world"]


async def test_datetime_matches_open_and_closed_extents(catalogue) -> None:
    assert await ids(catalogue, datetime="2020-06-01T00:00:00Z") == ["alps", "world"]
    assert await ids(catalogue, datetime="2024-01-01T00:00:00Z/..") == ["baltic", "world"]


async def test_free_text(catalogue) -> None:
    assert await ids(catalogue, q="ice") == ["alps", "baltic"]
    assert await ids(catalogue, q="coral,biomass") == ["pacific", "world"]


async def test_sortby_fields_and_paging(catalogue) -> None:
    assert await ids(catalogue, sortby="-title") == ["pacific", "world", "baltic", "alps"]
    page = (await catalogue.get("/collections", params={"limit": 3, "sortby": "title"})).json()
    assert [c["id"] for c in page["collections"]] == ["alps", "baltic", "world"]
    assert page["numberMatched"] == 4 and page["numberReturned"] == 3
    nxt = next(link["href"] for link in page["links"] if link["rel"] == "next")
    rest = (await catalogue.get(nxt)).json()
    assert [c["id"] for c in rest["collections"]] == ["pacific"]
    trimmed = (await catalogue.get("/collections", params={"fields": "id,title"})).json()
    assert all(set(c) <= {"id", "title"} for c in trimmed["collections"])


async def test_conformance_declares_collection_search(client: httpx.AsyncClient) -> None:
    classes = (await client.get("/conformance")).json()["conformsTo"]
    assert any(uri.endswith("/collection-search") for uri in classes)
    assert any(uri.endswith("/collection-search#free-text") for uri in classes)


# -- filter (CQL2 over collection fields) --------------------------------------------------
COLLECTION_FILTERS = [
    # (cql2-text, expected ids) - checked by hand against the four collections above
    ("id = 'alps'", ["alps"]),
    ("title LIKE '%ice%'", ["baltic"]),
    ("title LIKE '%gla%' OR title LIKE 'Pac%'", ["alps", "pacific"]),
    ("CASEI(title) LIKE '%forest%'", ["world"]),
    ("license = 'CC-BY-4.0' AND NOT (id IN ('alps', 'world'))", ["baltic", "pacific"]),
    ("A_CONTAINS(keywords, ('glacier'))", ["alps"]),
    ("keywords IS NULL", ["baltic", "world"]),
    ("description = 'Sea ice charts'", ["baltic"]),
    ("S_INTERSECTS(geometry, BBOX(6, 46, 7, 47))", ["alps", "world"]),
    ("S_INTERSECTS(extent, POINT(178 5))", ["pacific", "world"]),
    ("T_INTERSECTS(datetime, INTERVAL('2020-06-01T00:00:00Z', '2020-07-01T00:00:00Z'))",
     ["alps", "world"]),
    ("T_AFTER(datetime, TIMESTAMP('2020-12-31T23:59:59Z'))", ["baltic"]),
    ("end_datetime < TIMESTAMP('2019-01-01T00:00:00Z')", ["pacific"]),
]  # fmt: skip


@pytest.mark.parametrize(("expression", "expected"), COLLECTION_FILTERS)
async def test_filter_on_collection_fields(catalogue, expression, expected) -> None:
    assert await ids(catalogue, filter=expression, **{"filter-lang": "cql2-text"}) == expected


async def test_filter_cql2_json_and_bad_filters(catalogue) -> None:
    tree = '{"op": "=", "args": [{"property": "title"}, "Baltic sea ice"]}'
    assert await ids(catalogue, filter=tree, **{"filter-lang": "cql2-json"}) == ["baltic"]
    for bad in ("title = ", "S_INTERSECTS(geometry, POLYGON((0 0, 1 1)))"):
        response = await catalogue.get("/collections", params={"filter": bad})
        assert response.status_code == 400, response.text
        assert "filter" in response.json()["description"]


async def test_every_collection_links_its_queryables(catalogue) -> None:
    rel = "http://www.opengis.net/def/rel/ogc/1.0/queryables"
    for listed in (await catalogue.get("/collections")).json()["collections"]:
        single = (await catalogue.get(f"/collections/{listed['id']}")).json()
        for document in (listed, single):
            (target,) = [link for link in document["links"] if link["rel"] == rel]
            assert target["href"] == f"http://testserver/collections/{listed['id']}/queryables"
            assert target["type"] == "application/schema+json"
        response = await catalogue.get(target["href"])
        assert response.status_code == 200 and response.json()["type"] == "object"


# -- POST /collections: search without Transactions, create with them ----------------------
@pytest.fixture
async def read_only(settings, database, catalogue) -> AsyncIterator[httpx.AsyncClient]:
    """The same catalogue through an API without an API key (no Transactions)."""
    app = create_app(settings.model_copy(update={"api_key": None}), database=database)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


async def test_post_collections_searches_when_transactions_are_off(read_only) -> None:
    body = {
        "filter": {"op": "like", "args": [{"property": "title"}, "%i%"]},
        "filter-lang": "cql2-json",
        "sortby": [{"field": "id", "direction": "desc"}],
        "fields": {"include": ["id"], "exclude": ["links"]},
        "limit": 2,
    }
    seen, pages = [], 0
    request = body
    while request is not None and pages < 5:
        response = await read_only.post("/collections", json=request)
        assert response.status_code == 200, response.text
        page = response.json()
        seen += [c["id"] for c in page["collections"]]
        assert all(set(c) <= {"id", "type", "stac_version"} for c in page["collections"])
        nxt = [link for link in page["links"] if link["rel"] == "next"]
        request = nxt[0]["body"] if nxt else None
        if nxt:
            assert nxt[0]["method"] == "POST" and nxt[0]["href"] == "http://testserver/collections"
        pages += 1
    assert seen == ["world", "pacific", "baltic", "alps"]
    bad = await read_only.post("/collections", json={"filter": "title = ", "filter-lang": "x"})
    assert bad.status_code == 400


async def test_post_collections_takes_cql2_text(read_only) -> None:
    body = {"filter": "title LIKE '%ice%'", "filter-lang": "cql2-text"}
    response = await read_only.post("/collections", json=body)
    assert response.status_code == 200, response.text
    assert [c["id"] for c in response.json()["collections"]] == ["baltic"]


async def test_post_collections_creates_when_transactions_are_on(client) -> None:
    response = await client.post("/collections", json=make_collection("fresh"))
    assert response.status_code == 201
    assert (await client.get("/collections/fresh")).status_code == 200


async def test_collection_search_conformance_classes(client, read_only) -> None:
    for api in (client, read_only):
        classes = (await api.get("/conformance")).json()["conformsTo"]
        assert "https://api.stacspec.org/v1.0.0-rc.1/collection-search#filter" in classes


async def test_a_backward_token_is_refused_by_collection_search(catalogue) -> None:
    """Collection search pages forward only: a `prev` token (item search gives them) is a
    400, not a silent forward page."""
    page = (await catalogue.get("/collections", params={"limit": 3, "sortby": "title"})).json()
    href = next(link["href"] for link in page["links"] if link["rel"] == "next")
    token = PageToken.decode(parse_qs(urlsplit(href).query)["token"][0])
    backward = replace(token, backward=True).encode()
    params = {"limit": 3, "sortby": "title", "token": backward}
    response = await catalogue.get("/collections", params=params)
    assert response.status_code == 400 and "forward only" in response.text
