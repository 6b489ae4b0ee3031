"""Paging and totals under uvicorn on 127.0.0.1, as pystac-client and STAC Browser use them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from pystac_client import Client
from sqlalchemy import URL, text

from api import create_app
from api.state import state_of
from catalogue.database import Database, create_engine
from catalogue.search import ItemQuery
from catalogue.search.service import ItemSearch
from catalogue.settings import ApiSettings
from tests.helpers import TEST_API_KEY, grid_items, live_server, make_collection, make_settings

pytestmark = pytest.mark.slow


@dataclass
class LiveApi:
    base: str
    search: ItemSearch  # the app's own: its memory of slow counts


@pytest.fixture
def live(fresh_db_url: URL) -> Iterator[LiveApi]:
    # a budget no busy test box runs over: totals must not depend on the machine's load (the
    # over-budget case below passes its own budget and a lock that holds the count up)
    app = create_app(make_settings(fresh_db_url, api=ApiSettings(count_timeout_ms=10_000)))
    with live_server(app) as base:
        headers = {"Authorization": f"Bearer {TEST_API_KEY}"}
        with httpx.Client(base_url=base, headers=headers) as http:
            assert http.post("/collections", json=make_collection("scenes")).status_code == 201
            items = {item["id"]: item for item in grid_items(120, "scenes")}
            response = http.post(
                "/collections/scenes/bulk_items", json={"items": items, "method": "insert"}
            )
            assert response.status_code == 200, response.text
        yield LiveApi(base, state_of(app).search)


@pytest.fixture
def live_api(live: LiveApi) -> str:
    return live.base


def test_pystac_client_matched_and_pages(live_api: str) -> None:
    """`matched()` asks for one item and reads `numberMatched`; the pages agree with it."""
    client = Client.open(live_api)
    search = client.search(collections=["scenes"], bbox=[-10, 35, 30, 36], limit=7)
    assert search.matched() == 80  # two grid rows of 40 touch the bbox
    pages = list(search.pages_as_dicts())
    assert len(pages) == 12 and {page["numberMatched"] for page in pages} == {80}
    assert sum(len(page["features"]) for page in pages) == 80
    everything = client.search(method="POST", limit=50)
    assert everything.matched() == 120


def _follow(http: httpx.Client, link: dict[str, Any]) -> dict[str, Any]:
    """STAC Browser: a POST link is sent as the link's `body`; a GET link as its href."""
    if link.get("method") == "POST":
        return http.post(link["href"], json=link["body"]).raise_for_status().json()
    return http.get(link["href"]).raise_for_status().json()


def _rel(page: dict[str, Any], rel: str) -> dict[str, Any] | None:
    return next((link for link in page["links"] if link["rel"] == rel), None)


def test_stac_browser_previous_button(live_api: str) -> None:
    """STAC Browser's item search: POST /search, "Next" twice, then "Previous" twice gives
    back the same pages, and every page shows the total."""
    body = {"collections": ["scenes"], "limit": 12, "sortby": [{"field": "id", "direction": "asc"}]}
    with httpx.Client(timeout=30) as http:  # a busy CI box: first requests warm caches
        pages = [http.post(f"{live_api}/search", json=body).raise_for_status().json()]
        assert _rel(pages[0], "prev") is None
        for _ in range(2):
            pages.append(_follow(http, _rel(pages[-1], "next")))  # type: ignore[arg-type]
        back = _follow(http, _rel(pages[2], "prev"))  # type: ignore[arg-type]
        assert [f["id"] for f in back["features"]] == [f["id"] for f in pages[1]["features"]]
        first = _follow(http, _rel(back, "prev"))  # type: ignore[arg-type]
    assert [f["id"] for f in first["features"]] == [f"item-{i:04d}" for i in range(12)]
    assert _rel(first, "prev") is None and _rel(first, "next") == _rel(pages[0], "next")
    assert {page["numberMatched"] for page in [*pages, back, first]} == {120}


async def _count_under_lock(url: URL, search: ItemSearch, query: ItemQuery) -> int | None:
    """The count of `query` while another transaction holds an ACCESS EXCLUSIVE lock on the
    items and their per-day counts (a search by collections is counted from the latter): it
    cannot end within any budget, so PostgreSQL cancels it (deterministically)."""
    database = Database(create_engine(make_settings(url)))
    try:
        async with database.engine.connect() as locker:
            await locker.execute(text("LOCK TABLE items, item_day_counts IN ACCESS EXCLUSIVE MODE"))
            async with database.read_in_transaction() as conn:
                return await search.count(conn, query, budget_ms=100)
    finally:
        await database.dispose()


def test_number_matched_is_left_out_when_the_count_ran_over(
    live: LiveApi, fresh_db_url: URL
) -> None:
    """A count cancelled at the budget leaves `numberMatched` out of that search's pages
    (paging still works, pystac-client's `matched()` says None); other searches count."""
    scenes = ItemQuery(collections=("scenes",))
    assert asyncio.run(_count_under_lock(fresh_db_url, live.search, scenes)) is None
    client = Client.open(live.base)
    search = client.search(collections=["scenes"], limit=50)
    with pytest.warns(UserWarning, match="numberMatched"):
        assert search.matched() is None
    pages = list(search.pages_as_dicts())
    assert [len(page["features"]) for page in pages] == [50, 50, 20]
    assert not any("numberMatched" in page for page in pages)
    assert client.search(collections=["scenes"], bbox=[-10, 35, 30, 36], limit=7).matched() == 80
