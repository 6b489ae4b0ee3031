"""Paging through the API as clients follow it: `next` and `prev` links (GET, and POST with
the token in the link's `body` as STAC Browser sends it), and `numberMatched`."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from api import create_app
from catalogue.settings import ApiSettings, Settings
from tests.helpers import make_collection, make_item

MISSING = object()


def _items(count: int = 90) -> list[dict[str, Any]]:
    """Ties on every property, JSON nulls and missing values, equal datetimes."""
    rng = random.Random(11)
    start = datetime(2022, 3, 1, tzinfo=UTC)
    items = []
    for index in range(count):
        extra: dict[str, Any] = {}
        gsd = rng.choice([10, 10, 20, None, MISSING])
        if gsd is not MISSING:
            extra["gsd"] = gsd
        if rng.random() < 0.7:
            extra["platform"] = rng.choice(["sentinel-2a", "sentinel-2b"])
        when = start + timedelta(days=rng.randrange(5))
        items.append(make_item(f"p-{index:03d}", when=when, **extra))
    return items


ITEMS = _items()


async def _seed(client: httpx.AsyncClient) -> None:
    assert (await client.post("/collections", json=make_collection())).status_code == 201
    body = {"items": {item["id"]: item for item in ITEMS}, "method": "insert"}
    assert (await client.post("/collections/test-collection/bulk_items", json=body)).is_success


def _link(page: dict[str, Any], rel: str) -> dict[str, Any] | None:
    found = [link for link in page["links"] if link["rel"] == rel]
    assert len(found) <= 1
    return found[0] if found else None


async def _follow(client: httpx.AsyncClient, link: dict[str, Any]) -> dict[str, Any]:
    """What STAC Browser and pystac-client do with a link: GET its href, or POST its body."""
    if link.get("method") == "POST":
        response = await client.post(link["href"], json=link["body"])
    else:
        response = await client.get(link["href"])
    assert response.status_code == 200, response.text
    return response.json()


def _ids(page: dict[str, Any]) -> list[str]:
    return [feature["id"] for feature in page["features"]]


async def _walk(client: httpx.AsyncClient, first: dict[str, Any]) -> list[list[str]]:
    """Forward with `next` to the last page, back with `prev` to the first; the pages
    going back must be the pages going forward, and `numberMatched` the whole result."""
    forward = [first]
    while (next_link := _link(forward[-1], "next")) is not None:
        forward.append(await _follow(client, next_link))
        assert len(forward) < 50
    backward = [forward[-1]]
    while (prev_link := _link(backward[-1], "prev")) is not None:
        backward.append(await _follow(client, prev_link))
        assert len(backward) <= len(forward)
    assert _link(first, "prev") is None
    pages = [_ids(page) for page in forward]
    assert [_ids(page) for page in reversed(backward)] == pages
    total = sum(len(ids) for ids in pages)
    assert len({item for ids in pages for item in ids}) == total
    assert {page.get("numberMatched") for page in forward + backward} == {total}
    return pages


SORTBY = ["", "-gsd", "+gsd", "-properties.platform,+gsd", "+datetime", "-id"]


@pytest.mark.parametrize("sortby", SORTBY)
async def test_get_search_pages_back_with_prev(client: httpx.AsyncClient, sortby: str) -> None:
    await _seed(client)
    params = {"limit": "8", **({"sortby": sortby} if sortby else {})}
    pages = await _walk(client, (await client.get("/search", params=params)).json())
    assert sum(map(len, pages)) == len(ITEMS) and len(pages) == 12


@pytest.mark.parametrize("sortby", SORTBY)
async def test_post_search_pages_back_with_prev_in_the_body(
    client: httpx.AsyncClient, sortby: str
) -> None:
    """STAC Browser's request shape: POST /search, then POST of each link's `body`."""
    await _seed(client)
    body: dict[str, Any] = {
        "collections": ["test-collection"],
        "limit": 7,
        "filter-lang": "cql2-json",
        "filter": {"op": "<>", "args": [{"property": "platform"}, "sentinel-2b"]},
    }
    if sortby:
        body["sortby"] = [
            {"field": key.lstrip("+-"), "direction": "desc" if key[0] == "-" else "asc"}
            for key in sortby.split(",")
        ]
    first = (await client.post("/search", json=body)).json()
    second = await _follow(client, _link(first, "next"))  # type: ignore[arg-type]
    prev = _link(second, "prev")
    assert prev is not None and prev["method"] == "POST" and prev["merge"] is False
    assert {key: value for key, value in prev["body"].items() if key != "token"} == body
    pages = await _walk(client, first)
    expected = [i["id"] for i in ITEMS if i["properties"].get("platform") == "sentinel-2a"]
    assert sorted(item for ids in pages for item in ids) == sorted(expected)


async def test_collection_items_page_back_with_prev(client: httpx.AsyncClient) -> None:
    await _seed(client)
    first = (await client.get("/collections/test-collection/items?limit=13")).json()
    pages = await _walk(client, first)
    assert sum(map(len, pages)) == len(ITEMS)


async def test_single_page_results_have_no_paging_links(client: httpx.AsyncClient) -> None:
    await _seed(client)
    page = (await client.get("/search", params={"limit": 100})).json()
    assert page["numberMatched"] == page["numberReturned"] == len(ITEMS)
    assert _link(page, "next") is None and _link(page, "prev") is None


async def test_a_tampered_token_is_400(client: httpx.AsyncClient) -> None:
    await _seed(client)
    first = (await client.get("/search", params={"limit": 5})).json()
    second = await _follow(client, _link(first, "next"))  # type: ignore[arg-type]
    token = _link(second, "prev")["href"].split("token=")[1]  # type: ignore[index]
    for bad in (token[:-3] + "AAA", token + "x", "eyJ"):
        response = await client.get("/search", params={"limit": 5, "token": bad})
        assert response.status_code == 400, bad
    other_sort = await client.get("/search", params={"limit": 5, "sortby": "gsd", "token": token})
    assert other_sort.status_code == 400 and "sortby" in other_sort.text


@pytest.fixture
async def never_counting(settings: Settings, database: Any) -> AsyncIterator[httpx.AsyncClient]:
    api = ApiSettings(count_timeout_ms=0)
    app = create_app(settings.model_copy(update={"api": api}), database=database)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


async def test_a_budget_of_zero_never_counts(
    client: httpx.AsyncClient, never_counting: httpx.AsyncClient
) -> None:
    await _seed(client)
    first = (await never_counting.get("/search", params={"limit": 10})).json()
    second = await _follow(never_counting, _link(first, "next"))  # type: ignore[arg-type]
    assert "numberMatched" not in first and "numberMatched" not in second
    assert first["numberReturned"] == second["numberReturned"] == 10
    whole = (await never_counting.get("/search", params={"limit": 1000})).json()
    assert whole["numberMatched"] == len(ITEMS)  # one page holds it all: free to know
