"""The Children extension and the landing page's `child` links, with raw requests and with
pystac-client against a live server; with more collections than `max_child_links`, the
landing page links the first ones and `/children` pages through them all."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pystac_client import Client
from sqlalchemy import URL

from api import create_app
from catalogue.settings import ApiSettings, Settings
from tests.helpers import TEST_API_KEY, live_server, make_collection, make_settings

CHILDREN = "https://api.stacspec.org/v1.0.0-rc.2/children"
IDS = [f"child-{index}" for index in (3, 0, 6, 1, 5, 2, 4)]  # created out of order


async def seed(client: httpx.AsyncClient) -> None:
    for collection_id in IDS:
        response = await client.post("/collections", json=make_collection(collection_id))
        assert response.is_success, response.text


def _rels(document: dict[str, Any], rel: str) -> list[dict[str, Any]]:
    return [link for link in document["links"] if link["rel"] == rel]


async def _all_pages(client: httpx.AsyncClient, url: str) -> list[dict[str, Any]]:
    pages = []
    next_url: str | None = url
    while next_url:
        response = await client.get(next_url)
        assert response.status_code == 200, response.text
        page = response.json()
        pages.append(page)
        next_url = next((link["href"] for link in _rels(page, "next")), None)
    return pages


async def test_children_lists_every_collection_as_served(client: httpx.AsyncClient) -> None:
    await seed(client)
    landing = (await client.get("/")).json()
    assert CHILDREN in landing["conformsTo"]
    [children_link] = _rels(landing, "children")
    assert children_link["href"] == "http://testserver/children"
    body = (await client.get("/children")).json()
    assert [child["id"] for child in body["children"]] == sorted(IDS)
    assert body["numberMatched"] == body["numberReturned"] == len(IDS)
    assert _rels(body, "self")[0]["href"] == "http://testserver/children"
    assert _rels(body, "root")[0]["href"] == "http://testserver/"
    assert not _rels(body, "next")
    for child in body["children"]:
        assert child == (await client.get(f"/collections/{child['id']}")).json()
    child_hrefs = [link["href"] for link in _rels(landing, "child")]
    assert child_hrefs == [f"http://testserver/collections/{cid}" for cid in sorted(IDS)]


async def test_children_pages_with_next_links(client: httpx.AsyncClient) -> None:
    await seed(client)
    pages = await _all_pages(client, "/children?limit=3")
    assert [page["numberReturned"] for page in pages] == [3, 3, 1]
    assert [c["id"] for page in pages for c in page["children"]] == sorted(IDS)
    assert all(page["numberMatched"] == len(IDS) for page in pages)


@pytest.mark.parametrize("query", ["limit=0", "limit=x", "token=not-a-token"])
async def test_bad_children_parameters_are_400(client: httpx.AsyncClient, query: str) -> None:
    response = await client.get(f"/children?{query}")
    assert response.status_code == 400
    assert {"code", "description"} <= set(response.json())


@pytest.fixture
async def few_child_links(settings: Settings, database: Any) -> AsyncIterator[httpx.AsyncClient]:
    """An API whose landing page links at most 3 collections."""
    api = ApiSettings(max_child_links=3)
    app = create_app(settings.model_copy(update={"api": api}), database=database)
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {TEST_API_KEY}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", headers=headers
    ) as http:
        yield http


async def test_many_collections_page_the_child_links(few_child_links: httpx.AsyncClient) -> None:
    await seed(few_child_links)
    landing = (await few_child_links.get("/")).json()
    child_ids = [link["href"].rsplit("/", 1)[1] for link in _rels(landing, "child")]
    assert child_ids == sorted(IDS)[:3]
    assert _rels(landing, "children") and _rels(landing, "data")
    pages = await _all_pages(few_child_links, "/children")
    # the first page of /children is exactly the landing page's children
    assert [c["id"] for c in pages[0]["children"]] == child_ids
    assert [c["id"] for page in pages for c in page["children"]] == sorted(IDS)


def test_pystac_client_reads_the_children(fresh_db_url: URL) -> None:
    """pystac-client follows the landing page's `child` links (the first
    `max_child_links`); its collection listing pages /collections to the end."""
    settings = make_settings(fresh_db_url, api=ApiSettings(max_child_links=3))
    with live_server(create_app(settings)) as base:
        headers = {"Authorization": f"Bearer {TEST_API_KEY}"}
        for collection_id in IDS:
            response = httpx.post(
                f"{base}/collections", json=make_collection(collection_id), headers=headers
            )
            assert response.is_success, response.text
        client = Client.open(base)
        assert CHILDREN in client.to_dict()["conformsTo"]
        assert [child.id for child in client.get_children()] == sorted(IDS)[:3]
        assert sorted(c.id for c in client.get_collections()) == sorted(IDS)
        raw = httpx.get(f"{base}/children", params={"limit": 2}).json()
        seen = [c["id"] for c in raw["children"]]
        while _rels(raw, "next"):
            raw = httpx.get(_rels(raw, "next")[0]["href"]).json()
            seen += [c["id"] for c in raw["children"]]
        assert seen == sorted(IDS)
