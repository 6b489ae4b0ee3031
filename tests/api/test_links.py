"""Links stay correct for ids that need percent-encoding."""

from __future__ import annotations

import httpx

from tests.helpers import make_collection, make_item


async def test_ids_with_reserved_characters_round_trip(client: httpx.AsyncClient) -> None:
    await client.post("/collections", json=make_collection("c 1"))
    await client.post("/collections/c%201/items", json=make_item("a b#1", "c 1"))
    page = (await client.get("/collections/c%201/items")).json()
    self_link = next(link["href"] for link in page["links"] if link["rel"] == "self")
    assert self_link == "http://testserver/collections/c%201/items"
    item_href = next(link["href"] for link in page["features"][0]["links"] if link["rel"] == "self")
    assert item_href == "http://testserver/collections/c%201/items/a%20b%231"
    assert (await client.get(item_href)).json()["id"] == "a b#1"


async def test_search_pages_link_to_themselves(client: httpx.AsyncClient) -> None:
    page = (await client.get("/search?limit=3&collections=x")).json()
    self_link = next(link["href"] for link in page["links"] if link["rel"] == "self")
    assert self_link == "http://testserver/search?limit=3&collections=x"
