"""Integers beyond 64 bits (issue 14): stored and served with the same digits where JSON
and PostgreSQL hold them, a 400 naming the value where the catalogue compares numbers as
doubles (CQL2 filters, the Query extension); never a 500, never a reset connection."""

from __future__ import annotations

import json

import httpx
import pytest

from api import create_app
from tests.helpers import TEST_API_KEY, live_server, make_collection, make_item, make_settings

ITEMS = "/collections/test-collection/items"
BIG = 2**64 + 5  # 18446744073709551621: orjson neither writes nor reads it exactly
NEGATIVE = -(2**63) - 1
DIGITS = str(BIG)


@pytest.fixture
async def seeded(client: httpx.AsyncClient) -> httpx.AsyncClient:
    assert (await client.post("/collections", json=make_collection())).status_code == 201
    return client


def _exact(response: httpx.Response) -> dict:
    """The body parsed by the stdlib, which keeps big integers exact (as clients' do)."""
    return json.loads(response.content)


@pytest.mark.parametrize("value", [BIG, NEGATIVE, 10**80, [1, BIG]])
async def test_an_item_keeps_the_digits_it_was_sent_with(
    seeded: httpx.AsyncClient, value: object
) -> None:
    created = await seeded.post(ITEMS, json=make_item("big", n=value))
    assert created.status_code == 201, created.text
    assert _exact(created)["properties"]["n"] == value
    read = await seeded.get(f"{ITEMS}/big")
    assert _exact(read)["properties"]["n"] == value
    page = await seeded.post("/search", json={"ids": ["big"]})
    assert _exact(page)["features"][0]["properties"]["n"] == value


async def test_an_item_migrated_from_older_stac_keeps_the_digits(
    seeded: httpx.AsyncClient,
) -> None:
    """The body is rewritten as current STAC before validation: not through a double."""
    item = make_item("old", n=BIG)
    item["stac_version"] = "1.0.0"
    created = await seeded.post(ITEMS, json=item)
    assert created.status_code == 201, created.text
    assert _exact(await seeded.get(f"{ITEMS}/old"))["properties"]["n"] == BIG


async def test_fields_selection_keeps_the_digits(seeded: httpx.AsyncClient) -> None:
    await seeded.post(ITEMS, json=make_item("big", n=BIG))
    page = await seeded.get("/search", params={"ids": "big", "fields": "properties.n"})
    assert page.status_code == 200, page.text
    assert DIGITS in page.text
    assert _exact(page)["features"][0]["properties"]["n"] == BIG


async def test_replace_and_patch_keep_the_digits(seeded: httpx.AsyncClient) -> None:
    await seeded.post(ITEMS, json=make_item("big", n=BIG))
    replaced = await seeded.put(f"{ITEMS}/big", json=make_item("big", n=BIG, m=BIG + 1))
    assert replaced.status_code == 200, replaced.text
    patched = await seeded.patch(f"{ITEMS}/big", json={"properties": {"platform": "x"}})
    assert patched.status_code == 200, patched.text
    properties = _exact(await seeded.get(f"{ITEMS}/big"))["properties"]
    assert (properties["n"], properties["m"], properties["platform"]) == (BIG, BIG + 1, "x")


@pytest.mark.parametrize("count", [3, 100])  # the prepared-INSERT and the COPY paths
async def test_bulk_items_keep_the_digits(seeded: httpx.AsyncClient, count: int) -> None:
    items = {f"b{i}": make_item(f"b{i}", n=BIG + i) for i in range(count)}
    response = await seeded.post(
        "/collections/test-collection/bulk_items", json={"items": items, "method": "upsert"}
    )
    assert response.status_code == 200, response.text
    last = _exact(await seeded.get(f"{ITEMS}/b{count - 1}"))
    assert last["properties"]["n"] == BIG + count - 1


async def test_a_collection_keeps_the_digits(client: httpx.AsyncClient) -> None:
    created = await client.post("/collections", json=make_collection("c", **{"ext:n": BIG}))
    assert created.status_code == 201, created.text
    assert _exact(created)["ext:n"] == BIG
    assert _exact(await client.get("/collections/c"))["ext:n"] == BIG
    listed = _exact(await client.get("/collections"))["collections"]
    assert next(c for c in listed if c["id"] == "c")["ext:n"] == BIG


@pytest.mark.parametrize(
    "body",
    [
        {"filter": {"op": "=", "args": [{"property": "n"}, BIG]}},
        {"filter": {"op": "in", "args": [{"property": "n"}, [1, NEGATIVE]]}},
        {"filter-lang": "cql2-json", "filter": {"op": ">", "args": [{"property": "n"}, BIG]}},
        {"query": {"n": {"eq": BIG}}},
        {"query": {"n": {"in": [1, BIG]}}},
    ],
)
async def test_a_big_integer_in_a_search_is_400_naming_it(
    seeded: httpx.AsyncClient, body: dict
) -> None:
    response = await seeded.post("/search", json=body)
    assert response.status_code == 400, response.text
    description = response.json()["description"]
    assert str(BIG) in description or str(NEGATIVE) in description
    assert description.startswith("query:" if "query" in body else "filter:")


async def test_a_big_integer_in_an_items_filter_is_400(seeded: httpx.AsyncClient) -> None:
    cql2 = json.dumps({"op": "=", "args": [{"property": "n"}, BIG]})
    response = await seeded.get(ITEMS, params={"filter": cql2, "filter-lang": "cql2-json"})
    assert response.status_code in (200, 400), response.text  # read as a double, or refused


async def test_a_big_integer_in_cql2_text_is_compared_as_a_double(
    seeded: httpx.AsyncClient,
) -> None:
    await seeded.post(ITEMS, json=make_item("small", n=1))
    response = await seeded.get("/search", params={"filter": f"n < {BIG}"})
    assert response.status_code == 200, response.text
    assert [f["id"] for f in response.json()["features"]] == ["small"]


def test_a_big_integer_does_not_break_the_keep_alive_connection(fresh_db_url) -> None:
    """On uvicorn over TCP: the refused search is answered (400) on the same connection
    that then carries the next request, which succeeds."""
    app = create_app(make_settings(fresh_db_url))
    headers = {"Authorization": f"Bearer {TEST_API_KEY}"}
    with live_server(app) as base, httpx.Client(base_url=base, headers=headers) as http:
        assert http.post("/collections", json=make_collection()).status_code == 201
        local_addresses = set()

        def sent(response: httpx.Response) -> httpx.Response:
            stream = response.extensions["network_stream"]
            local_addresses.add(stream.get_extra_info("client_addr"))
            return response

        refused = sent(http.post("/search", json={"filter": {"op": "=", "args": [1, BIG]}}))
        assert refused.status_code == 400
        created = sent(http.post(ITEMS, json=make_item("big", n=BIG)))
        assert created.status_code == 201
        assert _exact(sent(http.get(f"{ITEMS}/big")))["properties"]["n"] == BIG
        assert sent(http.post("/search", json={"query": {"n": {"gt": BIG}}})).status_code == 400
        assert sent(http.get("/collections")).status_code == 200
        assert len(local_addresses) == 1  # one keep-alive connection carried all five
