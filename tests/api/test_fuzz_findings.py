"""What the schemathesis run (test_fuzz.py) found, pinned as plain tests: each was a 500 or
a response that broke the documented schema, and is now a 400 or a documented answer."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.api.test_bad_input import assert_stac_error
from tests.helpers import make_collection, make_item


async def test_a_search_body_that_is_not_an_object_is_400(client: httpx.AsyncClient) -> None:
    for body in (b'""', b"[]", b"3"):
        response = await client.post(
            "/search", content=body, headers={"Content-Type": "application/json"}
        )
        assert_stac_error(response, 400, "JSON object")


async def test_a_null_item_or_patch_body_is_400(client: httpx.AsyncClient) -> None:
    assert (await client.post("/collections", json=make_collection())).status_code == 201
    null = {"content": b"null", "headers": {"Content-Type": "application/json"}}
    assert_stac_error(await client.put("/collections/test-collection/items/x", **null), 400)
    assert_stac_error(await client.patch("/collections/test-collection", **null), 400)


@pytest.mark.parametrize("text", ["a\u0000b", "a\ud800b"])  # NUL; a lone surrogate
async def test_text_postgresql_cannot_store_is_400_in_our_words(
    client: httpx.AsyncClient, text: str
) -> None:
    """PostgreSQL's own message (its types, functions, the data) is logged, not answered."""
    body = json.dumps(make_collection(title=text)).encode()  # ASCII escapes, as sent
    response = await client.post(
        "/collections", content=body, headers={"Content-Type": "application/json"}
    )
    assert_stac_error(response, 400, "cannot store")
    description = response.json()["description"]
    assert not any(word in description for word in ("jsonb", "Unicode escape", "DETAIL"))
    assert (await client.get("/collections/test-collection")).status_code == 404


async def test_a_patch_that_leaves_an_invalid_collection_is_400(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.post("/collections", json=make_collection())).status_code == 201
    response = await client.patch("/collections/test-collection", json={"extent": None})
    assert_stac_error(response, 400, "extent")
    assert (await client.get("/collections/test-collection")).json()["extent"]


async def test_unparseable_bodies_get_stac_error_bodies(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/collections", content=b"\xff\xfe", headers={"Content-Type": "application/json"}
    )
    assert_stac_error(response, 400)


async def test_feature_collection_and_bulk_inserts_answer_counts(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.post("/collections", json=make_collection())).status_code == 201
    features = {"type": "FeatureCollection", "features": [make_item("a"), make_item("b")]}
    response = await client.post("/collections/test-collection/items", json=features)
    assert response.status_code == 201
    assert response.json()["received"] == response.json()["success"] == 2
    bulk = {"items": {"c": make_item("c")}, "method": "insert"}
    response = await client.post("/collections/test-collection/bulk_items", json=bulk)
    body = response.json()
    assert (body["received"], body["success"], body["skipped"], body["errors"]) == (1, 1, 0, [])
