"""Requests as the common clients send them: STAC Browser's one-condition `and`, cql2-text in
a POST body (rustac, pystac-client), `sortby` on a collection's items, sortables, and
properties that only some collections hold."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.test_bad_input import assert_stac_error
from tests.api.test_core import seed
from tests.helpers import make_item

SCENES = "scenes"
PLOTS = "plots"


def scene(index: int) -> dict[str, Any]:
    """Scenes with a cloud cover and a platform; `rank` follows neither id nor time."""
    return make_item(
        f"scene-{index}",
        SCENES,
        lon=index,
        **{
            "eo:cloud_cover": index * 10,
            "platform": "sentinel-2a" if index % 2 else "sentinel-2b",
            "rank": (index * 3) % 5,  # 0, 3, 1, 4, 2
        },
    )


@pytest.fixture
async def catalogue(client: httpx.AsyncClient) -> httpx.AsyncClient:
    """Two collections: `scenes` (cloud cover, platform, rank), `plots` (a `biomass` and a
    `title`, properties that no scene holds)."""
    await seed(client, [scene(index) for index in range(5)], SCENES)
    plots = [make_item(f"plot-{i}", PLOTS, biomass=i * 1.5, title=f"Plot {i}") for i in range(3)]
    await seed(client, plots, PLOTS)
    return client


def ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [feature["id"] for feature in response.json()["features"]]


def equals(name: str, value: Any) -> dict[str, Any]:
    return {"op": "=", "args": [{"property": name}, value]}


# -- STAC Browser's "additional filters" ---------------------------------------------------
@pytest.mark.parametrize("logical", ["and", "or"])
async def test_one_condition_under_and_or_means_that_condition(
    catalogue: httpx.AsyncClient, logical: str
) -> None:
    """STAC Browser sends one additional filter wrapped in the chosen and/or."""
    body = {
        "collections": [SCENES],
        "filter-lang": "cql2-json",
        "filter": {"op": logical, "args": [equals("platform", "sentinel-2a")]},
    }
    response = await catalogue.post("/search", json=body)
    assert sorted(ids(response)) == ["scene-1", "scene-3"]
    negated = {**body, "filter": {"op": "not", "args": [body["filter"]]}}
    assert sorted(ids(await catalogue.post("/search", json=negated))) == [
        "scene-0",
        "scene-2",
        "scene-4",
    ]


async def test_and_or_without_conditions_is_a_400(catalogue: httpx.AsyncClient) -> None:
    response = await catalogue.post("/search", json={"filter": {"op": "and", "args": []}})
    assert_stac_error(response, 400, "and takes one or more conditions")


# -- cql2-text in a POST body ---------------------------------------------------------------
@pytest.mark.parametrize("lang", [{"filter-lang": "cql2-text"}, {}])
async def test_post_search_takes_cql2_text(catalogue: httpx.AsyncClient, lang: dict) -> None:
    body = {"filter": "eo:cloud_cover < 25 AND platform = 'sentinel-2b'", **lang}
    assert ids(await catalogue.post("/search", json=body)) == ["scene-2", "scene-0"]


async def test_post_paging_carries_a_cql2_text_filter(catalogue: httpx.AsyncClient) -> None:
    body: dict[str, Any] | None = {
        "filter": "eo:cloud_cover >= 10",
        "filter-lang": "cql2-text",
        "sortby": [{"field": "eo:cloud_cover", "direction": "asc"}],
        "limit": 2,
    }
    seen: list[str] = []
    while body is not None:
        page = await catalogue.post("/search", json=body)
        seen += ids(page)
        following = [lk for lk in page.json()["links"] if lk["rel"] == "next"]
        body = following[0]["body"] if following else None
        if body is not None:
            assert body["filter"] == "eo:cloud_cover >= 10"
    assert seen == ["scene-1", "scene-2", "scene-3", "scene-4"]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"filter": "eo:cloud_cover < ", "filter-lang": "cql2-text"}, ["line 1, column"]),
        ({"filter": equals("id", "x"), "filter-lang": "cql2-text"}, ["cql2-text", "string"]),
        ({"filter": "id = 'x'", "filter-lang": "cql3"}, ["filter-lang"]),
        ({"filter": "nope = 1", "filter-lang": "cql2-text"}, ["unknown property 'nope'"]),
    ],
)
async def test_bad_cql2_text_in_post_is_a_400(
    catalogue: httpx.AsyncClient, body: dict[str, Any], words: list[str]
) -> None:
    assert_stac_error(await catalogue.post("/search", json=body), 400, *words)


# -- sortby on a collection's items ---------------------------------------------------------
@pytest.mark.parametrize(
    ("sortby", "expected"),
    [
        ("rank", ["scene-0", "scene-2", "scene-4", "scene-1", "scene-3"]),
        ("-rank", ["scene-3", "scene-1", "scene-4", "scene-2", "scene-0"]),
        ("+properties.eo:cloud_cover", ["scene-0", "scene-1", "scene-2", "scene-3", "scene-4"]),
        ("-platform,id", ["scene-0", "scene-2", "scene-4", "scene-1", "scene-3"]),
    ],
)
async def test_collection_items_honour_sortby(
    catalogue: httpx.AsyncClient, sortby: str, expected: list[str]
) -> None:
    response = await catalogue.get(f"/collections/{SCENES}/items", params={"sortby": sortby})
    assert ids(response) == expected


async def test_collection_items_page_in_sortby_order(catalogue: httpx.AsyncClient) -> None:
    url: str | None = f"/collections/{SCENES}/items?sortby=rank&limit=2"
    seen: list[str] = []
    while url:
        page = await catalogue.get(url)
        seen += ids(page)
        url = next((lk["href"] for lk in page.json()["links"] if lk["rel"] == "next"), None)
    assert seen == ["scene-0", "scene-2", "scene-4", "scene-1", "scene-3"]


async def test_unknown_sortby_on_items_is_the_400_of_search(catalogue: httpx.AsyncClient) -> None:
    on_items = await catalogue.get(f"/collections/{SCENES}/items", params={"sortby": "-nosuch"})
    on_search = await catalogue.get("/search", params={"sortby": "-nosuch"})
    assert_stac_error(on_items, 400, "sortby: unknown property 'nosuch'")
    assert on_items.json() == on_search.json()


# -- properties that other collections hold -------------------------------------------------
async def test_a_filter_on_another_collections_property_matches_nothing(
    catalogue: httpx.AsyncClient,
) -> None:
    """`biomass` is only in `plots`: valid everywhere, and no scene has it."""
    text = {"filter": "biomass > 1"}
    assert ids(await catalogue.get("/search", params={**text, "collections": SCENES})) == []
    assert ids(await catalogue.get(f"/collections/{SCENES}/items", params=text)) == []
    body = {"collections": [SCENES], "filter": {"op": "isNull", "args": [{"property": "title"}]}}
    assert len(ids(await catalogue.post("/search", json=body))) == 5  # missing is null
    assert ids(await catalogue.get("/search", params=text)) == ["plot-2", "plot-1"]


@pytest.mark.parametrize("direction", ["", "-"])
async def test_a_sortby_on_another_collections_property_sorts_as_missing(
    catalogue: httpx.AsyncClient, direction: str
) -> None:
    """No scene has a `title`: the order falls through to the tie-breakers (id)."""
    params = {"sortby": f"{direction}properties.title", "collections": SCENES}
    by_id = [f"scene-{index}" for index in range(5)]
    expected = by_id if direction == "" else by_id[::-1]
    assert ids(await catalogue.get("/search", params=params)) == expected
    items = await catalogue.get(f"/collections/{SCENES}/items", params={"sortby": params["sortby"]})
    assert ids(items) == expected


# -- sortables and conformance ----------------------------------------------------------------
async def test_sortables_list_what_sortby_takes(catalogue: httpx.AsyncClient) -> None:
    landing = (await catalogue.get("/")).json()
    sortables_rel = "http://www.opengis.net/def/rel/ogc/1.0/sortables"
    (link,) = [lk for lk in landing["links"] if lk["rel"] == sortables_rel]
    response = await catalogue.get(link["href"])
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/schema+json")
    schema = response.json()
    assert schema["$id"] == link["href"]
    names = set(schema["properties"])
    assert {"id", "datetime", "eo:cloud_cover", "platform", "rank", "biomass", "title"} <= names
    assert "geometry" not in names
    assert schema["properties"]["eo:cloud_cover"] == {"type": "number"}
    assert schema["properties"]["datetime"]["title"] == "Acquired"
    for name in names:  # every name offered sorts
        assert ids(await catalogue.get("/search", params={"sortby": f"-{name}"}))


async def test_collection_sortables_are_that_collections(catalogue: httpx.AsyncClient) -> None:
    collection = (await catalogue.get(f"/collections/{SCENES}")).json()
    sortables_rel = "http://www.opengis.net/def/rel/ogc/1.0/sortables"
    (link,) = [lk for lk in collection["links"] if lk["rel"] == sortables_rel]
    names = set((await catalogue.get(link["href"])).json()["properties"])
    assert {"id", "eo:cloud_cover", "platform", "rank"} <= names
    assert not {"biomass", "title"} & names
    missing = await catalogue.get("/collections/nosuch/sortables")
    assert_stac_error(missing, 404, "nosuch")


async def test_collection_search_sortables(catalogue: httpx.AsyncClient) -> None:
    listing = (await catalogue.get("/collections")).json()
    sortables_rel = "http://www.opengis.net/def/rel/ogc/1.0/sortables"
    (link,) = [lk for lk in listing["links"] if lk["rel"] == sortables_rel]
    properties = (await catalogue.get(link["href"])).json()["properties"]
    assert {"id", "description", "license"} <= set(properties)
    assert not {"extent", "type", "stac_version"} & set(properties)  # no sort keys
    by_description = await catalogue.get("/collections", params={"sortby": "-description"})
    assert [c["id"] for c in by_description.json()["collections"]] == [SCENES, PLOTS]


async def test_sort_conformance_in_both_versions(client: httpx.AsyncClient) -> None:
    conforms = set((await client.get("/conformance")).json()["conformsTo"])
    for version in ("v1.0.0", "v1.1.0"):
        assert {
            f"https://api.stacspec.org/{version}/item-search#sort",
            f"https://api.stacspec.org/{version}/item-search#sortables",
            f"https://api.stacspec.org/{version}/ogcapi-features#sort",
        } <= conforms
    assert "http://www.opengis.net/spec/ogcapi-features-5/1.0/conf/sortables" in conforms
    assert "https://api.stacspec.org/v1.0.0-rc.1/collection-search#sort" in conforms
    assert "https://api.stacspec.org/v1.1.0/collection-search#sortables" in conforms
