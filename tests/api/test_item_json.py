"""Items are printed by PostgreSQL and their links spliced in as text
(`catalogue.serializers.item_json_text`): what a client parses must be exactly the stored
item plus its structural links, for every way of reading it."""

from __future__ import annotations

import copy
from typing import Any

import httpx
import orjson
import pytest

from api.fields import FieldSelection
from catalogue.repositories import collections as collection_repo
from catalogue.repositories.items import upsert_items
from catalogue.serializers import ItemLinksText, item_links, item_to_row
from tests.conftest import SavepointDatabase
from tests.helpers import make_collection, make_item

BASE = "http://testserver/"


def _awkward_item() -> dict[str, Any]:
    """Stored links, an id needing percent-encoding, non-ASCII and escaped text, numbers
    PostgreSQL spells differently, nested nulls, an extra top-level member."""
    item = make_item("a b#1ü", "c 1")
    item["links"] = [
        {"rel": "license", "href": "https://example.com/licence", "title": 'say "hi"\\'},
        {"rel": "self", "href": "https://elsewhere.example/dropped"},  # structural: replaced
    ]
    item["properties"].update(
        {"title": "Zürich \u2013 \"quoted\"\n", "tiny": 1e-07, "big": 12345678901234567890,
         "ratio": 0.1, "nothing": None, "nested": {"list": [1, 2.5, None, {"links": []}]}}
    )  # fmt: skip
    item["assets"] = {"data": {"href": "https://example.com/a.tif", "roles": ["data"]}}
    item["x:extra"] = {"links": ["not", "the", "item's"]}
    return item


def _expected(item: dict[str, Any]) -> dict[str, Any]:
    expected = copy.deepcopy(item)
    stored = [link for link in expected.pop("links") if link["rel"] != "self"]
    expected["links"] = item_links(BASE, item["collection"], item["id"]) + stored
    expected["stac_version"] = expected.get("stac_version", "1.1.0")
    return expected


async def _store(database: SavepointDatabase, collection: str, item: dict[str, Any]) -> None:
    """Through the repository, as a harvest writes: it keeps extra top-level members."""
    async with database.write() as conn:
        await collection_repo.create_collection(conn, make_collection(collection))
        await upsert_items(conn, [item_to_row(item)])


async def test_search_single_item_and_items_page_print_the_stored_item(
    client: httpx.AsyncClient, database: SavepointDatabase
) -> None:
    item = _awkward_item()
    await _store(database, "c 1", item)
    expected = _expected(item)

    single = await client.get("/collections/c%201/items/a%20b%231%C3%BC")
    assert single.status_code == 200
    assert single.headers["content-type"] == "application/geo+json"
    assert single.json() == expected
    for response in (
        await client.get("/search", params={"collections": "c 1"}),
        await client.post("/search", json={"collections": ["c 1"]}),
        await client.get("/collections/c%201/items"),
    ):
        assert response.status_code == 200
        page = orjson.loads(response.content)  # strict JSON: no NaN, no trailing commas
        assert page["features"] == [expected]
        assert page["type"] == "FeatureCollection"
        assert page["numberReturned"] == 1
    assert list(single.json())[-1] == "links"  # links last, as on every read path


async def test_fields_selection_applies_to_the_printed_items(
    client: httpx.AsyncClient, database: SavepointDatabase
) -> None:
    await _store(database, "c 1", _awkward_item())
    page = (
        await client.get("/search", params={"collections": "c 1", "fields": "id,properties.tiny"})
    ).json()
    assert page["features"] == [{"id": "a b#1ü", "properties": {"tiny": 1e-07}}]


async def test_items_without_stored_links_get_only_structural_ones(
    client: httpx.AsyncClient, database: SavepointDatabase
) -> None:
    item = make_item("p-1", "plain")
    item.pop("links", None)
    await _store(database, "plain", item)
    found = (await client.get("/search", params={"ids": "p-1"})).json()["features"][0]
    assert [link["rel"] for link in found["links"]] == ["self", "parent", "collection", "root"]


async def test_fields_selections_read_only_the_members_they_need_and_match_the_whole_item(
    client: httpx.AsyncClient, database: SavepointDatabase
) -> None:
    """A selection naming members (not `links`) has the database send only those; the
    answer must be what the selection makes of the whole item, GET and POST alike."""
    item = _awkward_item()
    await _store(database, "c 1", item)
    whole = _expected(item)
    for fields in (
        "id,properties.tiny",
        "properties,-properties.nested",
        "assets.data.href,id,nosuch",
        "x:extra,geometry,collection",  # collection and id are read from their columns
        "properties.tiny,properties",  # the whole member wins over a path below it
        "properties.nested.a,properties.nested.list,properties.nosuch,id.below",
        "assets.data,-assets.data.href",  # selected in the database, excluded by the API
        "id,links",  # links: the whole item is read
        "-assets",  # exclude only: the whole item is read
        "",  # the default set
    ):
        values = fields.split(",") if fields else []
        selection = FieldSelection.from_get(values, True)
        assert selection is not None
        expected = selection.apply(copy.deepcopy(whole))
        page = (await client.get("/search", params={"collections": "c 1", "fields": fields})).json()
        assert page["features"] == [expected], fields
        include = [value.lstrip("+") for value in values if not value.startswith("-")]
        exclude = [value[1:] for value in values if value.startswith("-")]
        body = {"collections": ["c 1"], "fields": {"include": include, "exclude": exclude}}
        page = (await client.post("/search", json=body)).json()
        post_selection = FieldSelection.build(include, exclude, include_given=True)
        assert page["features"] == [post_selection.apply(copy.deepcopy(whole))], fields


def test_a_selection_naming_many_members_reads_whole_items() -> None:
    """Each named member is a term of the SQL: past a bound the whole item is read (and the
    selection still applied), so a request cannot make the statement arbitrarily long."""
    few = FieldSelection.build(["id", "properties.datetime"], [])
    assert few.database_paths() == (("id",), ("properties", "datetime"))
    assert few.exact_in_database
    many = FieldSelection.build([f"m{i}" for i in range(1000)], [])
    assert many.database_paths() is None
    deep = FieldSelection.build([".".join(f"m{i}" for i in range(40))], [])
    assert deep.database_paths() is None


@pytest.mark.parametrize(
    "base_url", ["http://testserver/", 'http://a"b\\c.example/x/', "https://ü.example/"]
)
@pytest.mark.parametrize(
    ("collection", "item_id"),
    [("c", "plain-id_1.2~x"), ("c 1", "a b#1ü"), ("x/y", "id/with/slash"), ("c", 'q"\\')],
)
def test_links_text_is_the_encoded_links(base_url: str, collection: str, item_id: str) -> None:
    """The per-page link pieces give exactly what encoding the links does, whatever the
    Host header and the ids hold; a second item of a collection reuses its pieces."""
    links_text = ItemLinksText(base_url)
    for _ in range(2):
        text = links_text(collection, item_id)
        assert text == orjson.dumps(item_links(base_url, collection, item_id)).decode()
        assert orjson.loads(text) == item_links(base_url, collection, item_id)
