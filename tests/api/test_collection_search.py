"""Collection search: bbox, datetime, q, sortby, fields, limit and paging on GET /collections."""

from __future__ import annotations

import httpx
import pytest

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
