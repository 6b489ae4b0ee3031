"""Finding cubes: the cube properties derived from `cube:variables` and `cube:dimensions`
in the queryables, in GET cql2-text and POST cql2-json filters (checked against a Python
reading of the same items), in sortby and in the Query extension; served items unchanged;
bad names are a 400 that names them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cql2
import httpx
import pytest
from pystac_client import Client

from api import create_app
from tests.api.cube_items import catalogue_items, facts
from tests.api.test_bad_input import assert_stac_error
from tests.api.test_core import seed
from tests.helpers import TEST_API_KEY, live_server, make_collection, make_settings

CUBE_NAMES = {
    "cube:variable_names": {"type": "array", "items": {"type": "string"}},
    "cube:variable_units": {"type": "array", "items": {"type": "string"}},
    "cube:dimension_names": {"type": "array", "items": {"type": "string"}},
    "cube:time_step": {"type": "string"},
    "cube:resolution": {"type": "number"},
}
Facts = dict[str, Any]


@pytest.fixture
async def catalogue(client: httpx.AsyncClient) -> httpx.AsyncClient:
    for collection, items in catalogue_items().items():
        await seed(client, items, collection)
    return client


def ids(response: httpx.Response) -> set[str]:
    assert response.status_code == 200, response.text
    return {feature["id"] for feature in response.json()["features"]}


def matching(predicate: Callable[[Facts], bool], nulls: bool = False) -> set[str]:
    """Items whose facts satisfy `predicate`; a non-cube item (no facts) is unknown, so it
    matches nothing, unless `nulls` (IS NULL: a missing property is null)."""
    every = [item for items in catalogue_items().values() for item in items]
    return {
        item["id"]
        for item in every
        if (nulls if (found := facts(item)) is None else predicate(found))
    }


def has(name: str, *values: str) -> Callable[[Facts], bool]:
    return lambda f: set(values) <= set(f[name])


FILTERS: list[tuple[str, Callable[[Facts], bool]]] = [
    ("A_CONTAINS(cube:variable_names, ('agb'))", has("cube:variable_names", "agb")),
    ("A_CONTAINS(cube:variable_names, ('agb', 'agb_sd'))",
     has("cube:variable_names", "agb", "agb_sd")),
    ("A_CONTAINS(cube:variable_names, 'ndvi')", has("cube:variable_names", "ndvi")),
    ("A_OVERLAPS(cube:variable_names, ('ndvi', 'forest_age'))",
     lambda f: bool({"ndvi", "forest_age"} & set(f["cube:variable_names"]))),
    ("A_OVERLAPS(('nothing', 'agb_sd'), cube:variable_names)",
     lambda f: "agb_sd" in f["cube:variable_names"]),
    ("A_CONTAINEDBY(cube:variable_names, ('agb', 'agb_sd', 'ndvi'))",
     lambda f: set(f["cube:variable_names"]) <= {"agb", "agb_sd", "ndvi"}),
    ("A_CONTAINS(cube:variable_units, ('Mg/ha'))", has("cube:variable_units", "Mg/ha")),
    ("A_CONTAINS(cube:dimension_names, ('member'))", has("cube:dimension_names", "member")),
    ("A_EQUALS(cube:dimension_names, ('x', 'y', 'time'))",
     lambda f: set(f["cube:dimension_names"]) == {"x", "y", "time"}),
    ("NOT A_CONTAINS(cube:variable_names, ('agb'))",
     lambda f: "agb" not in f["cube:variable_names"]),
    ("cube:time_step = 'P1Y'", lambda f: f["cube:time_step"] == "P1Y"),
    ("NOT A_CONTAINS(cube:time_step, ('P1Y'))", lambda f: False),  # a string: unknown
    ("cube:time_step IN ('P1Y', 'P1M')", lambda f: f["cube:time_step"] in ("P1Y", "P1M")),
    ("cube:time_step <> 'P1Y'",
     lambda f: f["cube:time_step"] is not None and f["cube:time_step"] != "P1Y"),
    ("cube:resolution <= 30", lambda f: f["cube:resolution"] is not None
     and f["cube:resolution"] <= 30),
    ("cube:resolution BETWEEN 10 AND 100",
     lambda f: f["cube:resolution"] is not None and 10 <= f["cube:resolution"] <= 100),
    ("cube:resolution = 100", lambda f: f["cube:resolution"] == 100),
    ("A_CONTAINS(cube:variable_names, ('agb')) AND cube:time_step = 'P1Y'",
     lambda f: "agb" in f["cube:variable_names"] and f["cube:time_step"] == "P1Y"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "predicate"), FILTERS, ids=[text for text, _ in FILTERS])
async def test_get_cql2_text_finds_cubes(
    catalogue: httpx.AsyncClient, text: str, predicate: Callable[[Facts], bool]
) -> None:
    response = await catalogue.get("/search", params={"filter": text, "limit": 100})
    assert ids(response) == matching(predicate)


@pytest.mark.parametrize(("text", "predicate"), FILTERS, ids=[text for text, _ in FILTERS])
async def test_post_cql2_json_finds_cubes(
    catalogue: httpx.AsyncClient, text: str, predicate: Callable[[Facts], bool]
) -> None:
    body = {"filter": cql2.parse_text(text).to_json(), "filter-lang": "cql2-json", "limit": 100}
    assert ids(await catalogue.post("/search", json=body)) == matching(predicate)


async def test_is_null_counts_non_cube_items_as_missing(catalogue: httpx.AsyncClient) -> None:
    response = await catalogue.get("/search", params={"filter": "cube:time_step IS NULL"})
    assert ids(response) == matching(lambda f: f["cube:time_step"] is None, nulls=True)


async def test_the_collection_items_endpoint_takes_cube_filters(
    catalogue: httpx.AsyncClient,
) -> None:
    params = {"filter": "A_CONTAINS(cube:variable_units, ('t/ha'))"}
    assert ids(await catalogue.get("/collections/cubes/items", params=params)) == {"ndvi-monthly"}


async def test_queryables_list_the_cube_properties_where_cubes_are(
    catalogue: httpx.AsyncClient,
) -> None:
    for path in ("/queryables", "/collections/cubes/queryables"):
        properties = (await catalogue.get(path)).json()["properties"]
        for name, schema in CUBE_NAMES.items():
            assert properties[name].items() >= schema.items(), (path, name)
    scenes = (await catalogue.get("/collections/scenes/queryables")).json()["properties"]
    assert not CUBE_NAMES.keys() & scenes.keys()


async def test_sortables_offer_resolution_and_time_step(catalogue: httpx.AsyncClient) -> None:
    properties = (await catalogue.get("/collections/cubes/sortables")).json()["properties"]
    assert properties["cube:resolution"]["type"] == "number"
    assert properties["cube:time_step"]["type"] == "string"
    assert "cube:variable_names" not in properties


@pytest.mark.parametrize(
    ("sortby", "order"),
    [
        ("cube:resolution", ["ndvi-monthly", "agb-yearly", "forest-age"]),
        ("-cube:resolution", ["forest-age", "agb-yearly", "ndvi-monthly"]),
    ],
)
@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_sortby_resolution_pages_in_order(
    catalogue: httpx.AsyncClient, sortby: str, order: list[str], method: str
) -> None:
    """Two pages of one item then the rest, so the next token carries the resolution."""
    seen: list[str] = []
    if method == "GET":
        params = {"collections": "cubes", "sortby": sortby, "limit": 2}
        response = await catalogue.get("/search", params=params)
    else:
        key = {"field": sortby.lstrip("-"), "direction": "desc" if sortby[0] == "-" else "asc"}
        body = {"collections": ["cubes"], "sortby": [key], "limit": 2}
        response = await catalogue.post("/search", json=body)
    while True:
        assert response.status_code == 200, response.text
        page = response.json()
        seen += [feature["id"] for feature in page["features"]]
        following = [link for link in page["links"] if link["rel"] == "next"]
        if not following:
            break
        link = following[0]
        if link.get("method") == "POST":
            response = await catalogue.post(link["href"], json=link["body"])
        else:
            response = await catalogue.get(link["href"])
    assert seen == order


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"cube:variable_names": {"contains": "agb"}}, {"agb-yearly", "ndvi-monthly"}),
        ({"cube:variable_names": {"in": ["forest_age", "ndvi"]}}, {"forest-age", "ndvi-monthly"}),
        ({"cube:resolution": {"lte": 30}}, {"agb-yearly", "ndvi-monthly"}),
        ({"cube:time_step": {"eq": "P1M"}}, {"ndvi-monthly"}),
    ],
)
async def test_the_query_extension_finds_cubes(
    catalogue: httpx.AsyncClient, query: dict[str, Any], expected: set[str]
) -> None:
    assert ids(await catalogue.post("/search", json={"query": query})) == expected


async def test_served_cube_items_are_as_published(catalogue: httpx.AsyncClient) -> None:
    published = catalogue_items()["cubes"][0]
    served = (await catalogue.get(f"/collections/cubes/items/{published['id']}")).json()
    assert served["properties"] == published["properties"]


@pytest.mark.parametrize(
    ("text", "word"),
    [
        ("A_CONTAINS(cube:variable_nams, ('agb'))", "cube:variable_nams"),
        ("A_CONTAINZ(cube:variable_names, ('agb'))", "a_containz"),
    ],
)
async def test_bad_cube_filters_are_400_naming_the_culprit(
    catalogue: httpx.AsyncClient, text: str, word: str
) -> None:
    assert_stac_error(await catalogue.get("/search", params={"filter": text}), 400, word)
    body = {"filter": {"op": "a_contains", "args": [{"property": "cube:varable_names"}, ["x"]]}}
    assert_stac_error(await catalogue.post("/search", json=body), 400, "cube:varable_names")


@pytest.fixture
def live_cubes(fresh_db_url: Any) -> Iterator[str]:
    """The same catalogue behind uvicorn on 127.0.0.1."""
    with live_server(create_app(make_settings(fresh_db_url))) as base:
        headers = {"Authorization": f"Bearer {TEST_API_KEY}"}
        with httpx.Client(base_url=base, headers=headers) as http:
            for collection, items in catalogue_items().items():
                assert http.post("/collections", json=make_collection(collection)).is_success
                body = {"items": {item["id"]: item for item in items}, "method": "insert"}
                response = http.post(f"/collections/{collection}/bulk_items", json=body)
                assert response.status_code == 200, response.text
        yield base


@pytest.mark.slow
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_pystac_client_finds_cubes(live_cubes: str, method: str) -> None:
    client = Client.open(live_cubes)
    text = "A_CONTAINS(cube:variable_names, ('agb')) AND cube:resolution < 1"
    by_text = client.search(filter=text, filter_lang="cql2-text", method=method)
    assert [item.id for item in by_text.items()] == ["ndvi-monthly"]
    if method == "POST":
        by_json = client.search(filter=cql2.parse_text(text).to_json(), method=method)
        assert [item.id for item in by_json.items()] == ["ndvi-monthly"]
    queryables = client.get_merged_queryables(["cubes"])["properties"]
    assert queryables["cube:variable_names"]["items"] == {"type": "string"}


def readme_filters() -> list[str]:
    """The filters of the README's "Finding cubes" table (second column)."""
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme.split("### Finding cubes", 1)[1].split("\n### ", 1)[0]
    rows = [line.split("|") for line in section.splitlines() if line.startswith("| ")]
    return [row[2].strip().strip("`") for row in rows if row[2].strip().startswith("`")]


async def test_the_readme_examples_work_as_pasted(catalogue: httpx.AsyncClient) -> None:
    examples = readme_filters()
    assert len(examples) >= 8
    found = [ids(await catalogue.get("/search", params={"filter": text})) for text in examples]
    assert found[0] == {"agb-yearly", "ndvi-monthly"}
