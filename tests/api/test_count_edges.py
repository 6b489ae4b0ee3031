"""`numberMatched` at the edges: open datetime ranges, huge limits, the count settings at 0
(and at their other extremes), items moved to another collection, a collection deleted with
its items. Every total is checked against a brute-force count of the items sent; searches by
collections and datetime are counted from the per-day counts (migration 0011), so these also
check that those stay exact through each change."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from sqlalchemy import text

from api import create_app
from catalogue.settings import ApiSettings, Settings
from tests.helpers import make_collection, make_item

START = datetime(2019, 12, 20, tzinfo=UTC)
MIDNIGHT = datetime(2020, 1, 1, tzinfo=UTC)


def _items() -> list[dict[str, Any]]:
    """Items 5 hours apart around new year 2020 in two collections, one exactly at midnight,
    and an interval item (no `datetime`) reaching across new year."""
    items = [
        make_item(f"{collection}-{n:03d}", collection, when=START + timedelta(hours=5 * n + k))
        for k, collection in enumerate(("edge-a", "edge-b"))
        for n in range(100)
    ]
    items.append(make_item("edge-a-midnight", "edge-a", when=MIDNIGHT))
    ranged = make_item("edge-b-range", "edge-b")
    ranged["properties"] = {
        "datetime": None,
        "start_datetime": "2019-12-30T18:00:00Z",
        "end_datetime": "2020-01-02T06:00:00Z",
    }
    items.append(ranged)
    return items


ITEMS = _items()
COLLECTIONS = ("edge-a", "edge-b")


def _moment(value: str | None) -> datetime | None:
    return None if value in (None, "..") else datetime.fromisoformat(value)  # type: ignore[arg-type]


def _span(item: dict[str, Any]) -> tuple[datetime, datetime]:
    properties = item["properties"]
    if properties.get("datetime"):
        moment = _moment(properties["datetime"])
        assert moment is not None
        return moment, moment
    start, end = _moment(properties["start_datetime"]), _moment(properties["end_datetime"])
    assert start is not None and end is not None
    return start, end


def brute(
    items: list[dict[str, Any]], interval: str | None = None, collections: tuple[str, ...] = ()
) -> int:
    """How many of `items` a search by `collections` and `interval` (`a/b`, `../b`, `a/..`,
    ends inclusive) matches."""
    low = high = None
    if interval is not None:
        low, high = (_moment(part) for part in interval.split("/"))
    matched = 0
    for item in items:
        if collections and item["collection"] not in collections:
            continue
        start, end = _span(item)
        if (low is None or end >= low) and (high is None or start <= high):
            matched += 1
    return matched


async def seed(client: httpx.AsyncClient, items: list[dict[str, Any]] = ITEMS) -> None:
    for collection in COLLECTIONS:
        assert (await client.post("/collections", json=make_collection(collection))).is_success
        chosen = {item["id"]: item for item in items if item["collection"] == collection}
        response = await client.post(
            f"/collections/{collection}/bulk_items", json={"items": chosen, "method": "insert"}
        )
        assert response.is_success, response.text


def _params(interval: str | None, collections: tuple[str, ...], limit: int) -> dict[str, Any]:
    params: dict[str, Any] = {"limit": limit}
    if interval is not None:
        params["datetime"] = interval
    if collections:
        params["collections"] = ",".join(collections)
    return params


async def matched(
    http: httpx.AsyncClient,
    interval: str | None = None,
    collections: tuple[str, ...] = (),
    limit: int = 3,
) -> int | None:
    """`numberMatched` of GET /search (a first page of `limit`: counted, not free)."""
    response = await http.get("/search", params=_params(interval, collections, limit))
    assert response.status_code == 200, response.text
    return response.json().get("numberMatched")


OPEN_RANGES = [
    "../2020-01-01T00:00:00Z",  # the item at midnight is in (the end is inclusive)
    "../2019-12-31T23:59:59Z",
    "2020-01-01T00:00:00Z/..",
    "2019-12-25T13:30:00Z/..",
    "2020-01-01T03:00:00+05:00/..",  # another zone: the UTC day before
    "../2019-12-20T00:00:00Z",  # the first item alone
    "2020-02-01T00:00:00Z/..",  # nothing
    "../2019-01-01T00:00:00Z",  # nothing
]
SCOPES = [(), ("edge-a",), ("edge-b",), COLLECTIONS, ("nowhere",)]


@pytest.mark.parametrize("interval", OPEN_RANGES)
async def test_open_ranges_are_counted_exactly(client: httpx.AsyncClient, interval: str) -> None:
    await seed(client)
    for collections in SCOPES:
        expected = brute(ITEMS, interval, collections)
        assert await matched(client, interval, collections) == expected, collections
        assert await matched(client, interval, collections, limit=0) == expected, collections
    response = await client.get(
        "/collections/edge-b/items", params={"datetime": interval, "limit": 2}
    )
    assert response.json()["numberMatched"] == brute(ITEMS, interval, ("edge-b",))


@pytest.mark.parametrize(
    "interval",
    ["../2020-01-01", "2020-01-01/..", "../..", "2020-01-02T00:00:00Z/2020-01-01T00:00:00Z"],
)
async def test_bad_open_ranges_are_a_400(client: httpx.AsyncClient, interval: str) -> None:
    """A date without a time zone, both ends open, a start after the end: 400 naming
    `datetime`, with or without a count to make."""
    await seed(client)
    for limit in (0, 3):
        response = await client.get("/search", params={"datetime": interval, "limit": limit})
        assert response.status_code == 400, response.text
        description = response.json()["description"].lower()
        assert "datetime" in description or "interval" in description


@pytest.mark.parametrize("limit", [10_001, 10**9, 2**63])
async def test_huge_limits_are_capped_and_counted(client: httpx.AsyncClient, limit: int) -> None:
    """A `limit` over the maximum is capped to it (OGC API - Features); the page then holds
    the whole result, whose count is known for free."""
    await seed(client)
    for collections in ((), ("edge-b",)):
        response = await client.get("/search", params=_params(None, collections, limit))
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["numberMatched"] == body["numberReturned"] == brute(ITEMS, None, collections)
    post = await client.post(
        "/search", json={"limit": 10**9, "datetime": "2020-01-01T00:00:00Z/.."}
    )
    assert post.status_code == 200, post.text
    assert post.json()["numberMatched"] == brute(ITEMS, "2020-01-01T00:00:00Z/..")


async def test_a_limit_beyond_64_bits_is_capped_too(client: httpx.AsyncClient) -> None:
    await seed(client)
    response = await client.get("/search", params={"limit": "9" * 40, "collections": "edge-a"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["numberMatched"] == body["numberReturned"] == brute(ITEMS, None, ("edge-a",))


Reader = Callable[[ApiSettings], AbstractAsyncContextManager[httpx.AsyncClient]]


# the exact counts these tests compare must not depend on a busy box missing the default
# 100 ms budget (seen in CI: numberMatched omitted, as documented, at load 8 on 2 cores)
BUSY_BOX_MS = 10_000


@pytest.fixture
def reader(settings: Settings, database: Any) -> Reader:
    """An app on the same database with other API settings (read only)."""

    @asynccontextmanager
    async def open_app(api: ApiSettings) -> AsyncIterator[httpx.AsyncClient]:
        app = create_app(settings.model_copy(update={"api": api}), database=database)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http

    return open_app


BBOX = {"bbox": "-180,-90,180,90", "limit": 3}  # not a search by collections and datetime


async def test_count_estimate_max_zero_counts_by_days_only(
    client: httpx.AsyncClient, reader: Reader
) -> None:
    """CUBESTAC_API__COUNT_ESTIMATE_MAX=0: searches by collections and datetime still carry
    their exact total; any other multi-page search leaves it out (the planner never expects
    fewer than one row); a page that holds the whole result still shows it."""
    await seed(client)
    async with reader(ApiSettings(count_estimate_max=0, count_timeout_ms=BUSY_BOX_MS)) as http:
        for interval, collections in [(None, ()), ("../2020-01-01T00:00:00Z", ("edge-a",))]:
            assert await matched(http, interval, collections) == brute(ITEMS, interval, collections)
        assert "numberMatched" not in (await http.get("/search", params=BBOX)).json()
        whole = await http.get("/search", params={**BBOX, "limit": 1000})
        assert whole.json()["numberMatched"] == len(ITEMS)
        limit_zero = await http.get("/search", params={**BBOX, "limit": 0})
        assert "numberMatched" not in limit_zero.json()


async def test_count_timeout_zero_never_counts_even_by_days(
    client: httpx.AsyncClient, reader: Reader
) -> None:
    """CUBESTAC_API__COUNT_TIMEOUT_MS=0 means never count: by days neither."""
    await seed(client)
    async with reader(ApiSettings(count_timeout_ms=0)) as http:
        assert await matched(http, None, ("edge-a",)) is None
        assert await matched(http, "2020-01-01T00:00:00Z/..", ()) is None
        whole = await http.get("/search", params={"collections": "edge-a", "limit": 1000})
        assert whole.json()["numberMatched"] == brute(ITEMS, None, ("edge-a",))


@pytest.mark.parametrize(
    "api",
    [
        # from the items: every search, whatever the planner guesses from the suite's stats
        ApiSettings(count_by_days=False, count_estimate_max=10**15, count_timeout_ms=BUSY_BOX_MS),
        ApiSettings(count_estimate_max=10**15, count_timeout_ms=BUSY_BOX_MS),  # all counted
        ApiSettings(count_by_days=False, count_estimate_max=0),  # only free totals
    ],
)
async def test_other_settings_give_the_same_totals_or_none(
    client: httpx.AsyncClient, reader: Reader, api: ApiSettings
) -> None:
    await seed(client)
    async with reader(api) as http:
        for interval in [None, *OPEN_RANGES[:3]]:
            for collections in SCOPES[:3]:
                expected = brute(ITEMS, interval, collections)
                given = await matched(http, interval, collections)
                free = expected <= 3  # the first page holds the whole result
                assert given == expected or (
                    given is None and api.count_estimate_max == 0 and not free
                )
        bbox = (await http.get("/search", params=BBOX)).json().get("numberMatched")
        assert bbox == (None if api.count_estimate_max == 0 else len(ITEMS))


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        ("CUBESTAC_API__COUNT_ESTIMATE_MAX", "-1", "count_estimate_max"),
        ("CUBESTAC_API__COUNT_ESTIMATE_MAX", "many", "count_estimate_max"),
        ("CUBESTAC_API__COUNT_BY_DAYS", "perhaps", "count_by_days"),
        ("CUBESTAC_API__COUNT_TIMEOUT_MS", "-5", "count_timeout_ms"),
    ],
)
def test_bad_count_settings_are_refused(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, problem: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError, match=problem):
        Settings()


def test_count_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUBESTAC_API__COUNT_ESTIMATE_MAX", "0")
    monkeypatch.setenv("CUBESTAC_API__COUNT_BY_DAYS", "false")
    api = Settings().api
    assert api.count_estimate_max == 0 and api.count_by_days is False
    monkeypatch.delenv("CUBESTAC_API__COUNT_ESTIMATE_MAX")
    monkeypatch.delenv("CUBESTAC_API__COUNT_BY_DAYS")
    defaults = Settings().api
    assert defaults.count_estimate_max == 100_000 and defaults.count_by_days is True


async def _totals(client: httpx.AsyncClient, items: list[dict[str, Any]]) -> None:
    """Every scope and range, and /aggregate's total and collection buckets, against
    `items`."""
    for interval in [None, *OPEN_RANGES[:4]]:
        for collections in SCOPES:
            assert await matched(client, interval, collections) == brute(
                items, interval, collections
            ), (interval, collections)
    answer = await client.get(
        "/aggregate",
        params={
            "aggregations": "total_count,collection_frequency",
            "datetime": "../2020-01-01T00:00:00Z",
        },
    )
    assert answer.status_code == 200, answer.text
    by_name = {entry["name"]: entry for entry in answer.json()["aggregations"]}
    interval = "../2020-01-01T00:00:00Z"
    assert by_name["total_count"]["value"] == brute(items, interval)
    buckets = {b["key"]: b["frequency"] for b in by_name["collection_frequency"]["buckets"]}
    expected = {c: brute(items, interval, (c,)) for c in COLLECTIONS}
    assert buckets == {c: n for c, n in expected.items() if n}


async def test_items_moved_to_another_collection(client: httpx.AsyncClient, database: Any) -> None:
    """Moved through the API (deleted from one collection, added to the other), and by an
    UPDATE of the `collection` column (the triggers see the row leave one and join the
    other); a PATCH that changes `collection` is refused and changes nothing."""
    await seed(client)
    items = [dict(item) for item in ITEMS]
    moving = [item for item in items if item["collection"] == "edge-a"][:30]
    for item in moving:
        assert (await client.delete(f"/collections/edge-a/items/{item['id']}")).is_success
        item["collection"] = "edge-b"
        response = await client.post("/collections/edge-b/items", json=item)
        assert response.status_code == 201, response.text
    await _totals(client, items)

    patch = await client.patch(
        "/collections/edge-a/items/edge-a-050", json={"collection": "edge-b"}
    )
    assert patch.status_code == 400, patch.text
    await _totals(client, items)

    async with database.write() as conn:
        move = "UPDATE items SET collection = 'edge-a' WHERE collection = 'edge-b' AND id < :below"
        await conn.execute(text(move), {"below": "edge-b-040"})
    for item in items:
        if item["collection"] == "edge-b" and item["id"] < "edge-b-040":
            item["collection"] = "edge-a"
    await _totals(client, items)


async def test_deleting_a_collection_with_its_items(client: httpx.AsyncClient) -> None:
    """Without `cascade` a collection with items is kept (409) and every total with it;
    with `cascade=true` its items go and every total drops by exactly them."""
    await seed(client)
    refused = await client.delete("/collections/edge-b")
    assert refused.status_code == 409, refused.text
    await _totals(client, ITEMS)
    gone = await client.delete("/collections/edge-b", params={"cascade": "true"})
    assert gone.is_success, gone.text
    left = [item for item in ITEMS if item["collection"] != "edge-b"]
    await _totals(client, left)
    # the same id again, empty, then refilled: counted from zero, not from the old rows
    assert (await client.post("/collections", json=make_collection("edge-b"))).is_success
    assert await matched(client, None, ("edge-b",)) == 0
    again = [item for item in ITEMS if item["collection"] == "edge-b"][:10]
    response = await client.post(
        "/collections/edge-b/bulk_items",
        json={"items": {item["id"]: item for item in again}, "method": "insert"},
    )
    assert response.is_success, response.text
    await _totals(client, left + again)
