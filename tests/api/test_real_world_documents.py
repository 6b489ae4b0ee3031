"""Real-world STAC documents (tests/data/real_world/) written through the transactions API:
accepted, migrated to STAC 1.1.0, reported in `Warning` headers, served valid; what cannot
be migrated is a 400 that names the problem and writes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pystac_client import Client

from api import create_app
from tests.helpers import TEST_API_KEY, live_server, make_collection, make_settings
from tests.real_world import accepted_collections, accepted_items, corpus, load, validate_current


async def store_corpus(client: httpx.AsyncClient) -> None:
    for collection in accepted_collections():
        response = await client.post("/collections", json=collection)
        assert response.status_code == 201, response.text
    for item in accepted_items():
        response = await client.post(f"/collections/{item['collection']}/items", json=item)
        assert response.status_code == 201, response.text


@pytest.mark.parametrize("path", corpus("collection-*.json"), ids=lambda path: path.name)
async def test_a_real_world_collection_is_stored_and_served_current(
    client: httpx.AsyncClient, path: Path
) -> None:
    document = load(path)
    response = await client.post("/collections", json=document)
    assert response.status_code == 201, response.text
    served = (await client.get(f"/collections/{document['id']}")).json()
    assert served == response.json()
    validate_current([served])
    if document["stac_version"] != "1.1.0":
        warning = response.headers["warning"]
        assert f'299 cubestac "migrated from STAC {document["stac_version"]} to 1.1.0"' in warning


async def test_every_real_world_item_is_stored_and_served_current(
    client: httpx.AsyncClient,
) -> None:
    await store_corpus(client)
    search = (await client.get("/search", params={"limit": 100})).json()
    assert sorted(item["id"] for item in search["features"]) == sorted(
        item["id"] for item in accepted_items()
    )
    validate_current(search["features"])
    for item in search["features"]:
        single = await client.get(f"/collections/{item['collection']}/items/{item['id']}")
        assert single.json() == item


async def test_the_overall_bbox_of_a_multi_bbox_collection_is_repaired_with_a_warning(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/collections", json=load("collection-1.0.0-conus-hawaii.json"))
    assert response.status_code == 201, response.text
    boxes = response.json()["extent"]["spatial"]["bbox"]
    assert boxes[0] == [-156.003, 18.864, -66.951, 49.346] and len(boxes) == 3
    assert "did not contain the others" in response.headers["warning"]
    hawaii = await client.get("/collections", params={"bbox": "-155.6,19.9,-155.4,20.0"})
    assert [c["id"] for c in hawaii.json()["collections"]] == ["naip"]


async def test_an_item_changed_in_several_ways_gets_one_warning_per_change(
    client: httpx.AsyncClient,
) -> None:
    await client.post("/collections", json=load("collection-0.9.0-landsat.json"))
    item = load("item-1.0.0-numbers-as-strings.json")
    response = await client.put(f"/collections/landsat-8-l1/items/{item['id']}", json=item)
    assert response.status_code == 404  # PUT replaces; the item is not there yet
    response = await client.post("/collections/landsat-8-l1/items", json=item)
    warnings = response.headers.get_list("warning")
    assert '299 cubestac "migrated from STAC 1.0.0 to 1.1.0"' in warnings
    assert '299 cubestac "properties.eo:cloud_cover: a number given as a string, stored as ' \
        'a number"' in warnings  # fmt: skip
    assert response.json()["properties"]["eo:cloud_cover"] == 12.34
    response = await client.put(f"/collections/landsat-8-l1/items/{item['id']}", json=item)
    assert response.status_code == 200 and len(response.headers.get_list("warning")) == 5


async def test_a_current_document_gets_no_warning(client: httpx.AsyncClient) -> None:
    response = await client.post("/collections", json=make_collection())
    assert response.status_code == 201 and "warning" not in response.headers


async def test_bulk_items_are_migrated_and_listed_per_item(client: httpx.AsyncClient) -> None:
    await client.post("/collections", json=load("collection-1.0.0-beta.2-sentinel.json"))
    items = [load("item-1.0.0-beta.2-sentinel.json"), load(
        "item-1.0.0-beta.2-sat-untyped-assets.json"
    )]  # fmt: skip
    body = {"items": {item["id"]: item for item in items}, "method": "upsert"}
    response = await client.post("/collections/sentinel-s2-l2a-cogs/bulk_items", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["warnings"] == [
        f"item {item['id']!r}: migrated from STAC 1.0.0-beta.2 to 1.1.0" for item in items
    ]
    assert response.headers["warning"] == (
        '299 cubestac "migrated from STAC 1.0.0-beta.2 to 1.1.0 (2 documents)"'
    )
    stored = (await client.get("/collections/sentinel-s2-l2a-cogs/items")).json()["features"]
    validate_current(stored)


async def test_a_feature_collection_of_old_items_is_migrated(client: httpx.AsyncClient) -> None:
    await client.post("/collections", json=load("collection-1.0.0-beta.2-sentinel.json"))
    features = [load("item-1.0.0-beta.2-sentinel.json")]
    response = await client.post(
        "/collections/sentinel-s2-l2a-cogs/items",
        json={"type": "FeatureCollection", "features": features},
    )
    assert response.status_code == 201, response.text
    assert "migrated from STAC 1.0.0-beta.2" in response.headers["warning"]
    stored = (await client.get("/collections/sentinel-s2-l2a-cogs/items")).json()["features"]
    assert [item["stac_version"] for item in stored] == ["1.1.0"]


async def test_a_patch_that_adds_a_cluster_outside_the_overall_bbox_is_repaired(
    client: httpx.AsyncClient,
) -> None:
    conus = [-124.784, 24.744, -66.951, 49.346]
    collection = make_collection("naip")
    collection["extent"]["spatial"]["bbox"] = [conus]
    await client.post("/collections", json=collection)
    hawaii = [-156.003, 18.864, -154.809, 20.269]
    extent = {**collection["extent"], "spatial": {"bbox": [conus, hawaii]}}
    response = await client.patch(
        "/collections/naip",
        json={"extent": extent},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["extent"]["spatial"]["bbox"] == [
        [-156.003, 18.864, -66.951, 49.346], conus, hawaii
    ]  # fmt: skip
    assert "did not contain the others" in response.headers["warning"]


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("refused/item-0.9.0-band-index-out-of-range.json", "cannot be migrated: IndexError"),
        ("refused/item-version-not-a-version.json", "'latest' is not a STAC version"),
    ],
)
async def test_an_item_that_cannot_be_migrated_is_a_400_and_nothing_is_written(
    client: httpx.AsyncClient, path: str, reason: str
) -> None:
    await client.post("/collections", json=load("collection-0.9.0-landsat.json"))
    item = load(path)
    response = await client.post("/collections/landsat-8-l1/items", json=item)
    assert response.status_code == 400 and reason in response.json()["description"]
    bulk = {"items": {item["id"]: item, "ok": {**load("item-0.9.0-landsat.json"), "id": "ok"}}}
    response = await client.post("/collections/landsat-8-l1/bulk_items", json=bulk)
    assert response.status_code == 400 and reason in response.json()["description"]
    assert (await client.get("/collections/landsat-8-l1/items")).json()["features"] == []


async def test_a_catalog_posted_as_a_collection_is_a_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/collections", json=load("refused/collection-0.9.0-is-a-catalog.json")
    )
    assert response.status_code == 400
    assert "reads as a STAC catalog" in response.json()["description"]
    assert (await client.get("/collections/sat-api")).status_code == 404


@pytest.fixture
def live_corpus_api(fresh_db_url) -> Iterator[str]:
    """The API under uvicorn holding the whole accepted corpus, written through HTTP."""
    with live_server(create_app(make_settings(fresh_db_url))) as base:
        headers = {"Authorization": f"Bearer {TEST_API_KEY}"}
        with httpx.Client(base_url=base, headers=headers) as http:
            for collection in accepted_collections():
                assert http.post("/collections", json=collection).status_code == 201
            for item in accepted_items():
                url = f"/collections/{item['collection']}/items"
                assert http.post(url, json=item).status_code == 201
        yield base


@pytest.mark.slow
def test_pystac_client_reads_the_whole_catalogue_after_old_documents_are_stored(
    live_corpus_api: str,
) -> None:
    client = Client.open(live_corpus_api)
    collections = list(client.get_collections())
    assert sorted(c.id for c in collections) == sorted(c["id"] for c in accepted_collections())
    items = list(client.search(limit=3).items())
    assert sorted(i.id for i in items) == sorted(i["id"] for i in accepted_items())
    validate_current([c.to_dict() for c in collections] + [i.to_dict() for i in items])
    old = client.get_collection("sentinel-s2-l2a-cogs").get_item("S2B_32UNE_20200603_0_L2A")
    assert old is not None and old.properties["proj:code"] == "EPSG:32632"
