"""stac-api-validator against a real server: core, browseable, collections, features, item-search.

The API runs under uvicorn on 127.0.0.1 on a database of its own and is seeded only through
its transactions API over HTTP: a Zarr data-cube collection (datacube, zarr, xarray-assets and
projection extensions) and a few dozen projected scenes, some of which the validator's
--geometry intersects. stac-api-validator 0.6.x then runs in-process (`validate_api`, the
function its CLI wraps), one conformance class per test, so the test asserts on its real list
of errors; a crash surfaces as the exception itself (the CLI would print "Failed." and still
exit 0).

Every JSON schema the validator and the libraries it drives fetch by URL is served from
`tests/data/schemas` by `tests.stac_schemas.offline_schemas`, which refuses every other fetch
off the loopback. Which schemas they fetch depends on which packages bundle which schema
(pystac 1.16 moved its extension schemas into `pystac-ext-*` packages), so schema validation
is not left to them: every document the API serves (landing page, collections, every item
of every search page) is validated against its core schema and each extension it declares,
from the mirror alone (`tests.stac_schemas.validate_offline`).

Tolerated errors: none. The only off-host hrefs are the assets on example.com; stac-validator
records those it cannot open under `request_invalid` without failing the object, so they
never become validator errors. Instead the test checks that every refused fetch is such an
asset href, so a schema missing from the mirror (or a stray link) fails the test.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import requests
from sqlalchemy import URL

from api import create_app
from tests.helpers import TEST_API_KEY, live_server, make_collection, make_item, make_settings
from tests.stac_schemas import (
    fresh_schema_caches,
    mirrored_urls,
    offline_schemas,
    validate_offline,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:get_all_items is deprecated:DeprecationWarning"),
]

COLLECTION_ID = "sentinel-2-l2a-cube"
GRID_COLUMNS, GRID_ROWS = 8, 6
ASSET_HOST = "example.com"  # the only host besides 127.0.0.1 that any seeded href names

EXT = "https://stac-extensions.github.io"
PROJECTION = f"{EXT}/projection/v2.0.0/schema.json"
DATACUBE = f"{EXT}/datacube/v2.3.0/schema.json"
ZARR = f"{EXT}/zarr/v1.1.0/schema.json"
XARRAY = f"{EXT}/xarray-assets/v1.0.0/schema.json"
STAC = "https://schemas.stacspec.org/v1.1.0"
ITEM_SCHEMA = f"{STAC}/item-spec/json-schema/item.json"
COLLECTION_SCHEMA = f"{STAC}/collection-spec/json-schema/collection.json"
GEOJSON_SCHEMAS = {
    "https://geojson.org/schema/Feature.json",
    "https://geojson.org/schema/Geometry.json",
}

# The classes stac-api-validator checks; the validator's filter checks run inside
# item-search, so the two are asked for together.
CONFORMANCE_CLASSES = [
    "core", "browseable", "collections", "features", "item-search", "item-search+filter",
    "item-search#sort", "item-search#fields", "item-search#query", "children",
]  # fmt: skip
COLLECTION_EXTENSIONS = {DATACUBE, ZARR, XARRAY, PROJECTION}
# Checks of stac-api-validator 0.6.8 that no correct server can pass, tolerated by prefix:
# - POST fields {"exclude": ["properties"], "include": ["properties.eo:cloud_cover"]} must
#   have `geometry` absent (nothing excludes it) and at least 5 fields, while its
#   include-only check allows at most 5. We follow the extension's text (include lists what
#   is returned), which fails only the "fewer than 5" half. pgstac fails it too.
# - Query `{"platform": {"in": [...]}}` results are checked with
#   `set(value).isdisjoint(values)`, i.e. against the characters of a string property, so
#   every correct match is reported as "non-matching" (pgstac crashes earlier on it).
KNOWN_VALIDATOR_BUGS = (
    "[Item Search - Fields Ext] : POST {'fields': {'exclude': ['properties'], 'include': "
    "['properties.eo:cloud_cover']}} response contained fewer than 5 fields ['properties']",
    '[Item Search - Query Ext] : GET search with Query \'{"platform": {"in": '
    '["sentinel-2a", "sentinel-2b"]}}\' had non-matching results: got',
    '[Item Search - Query Ext] : POST search with Query \'{"platform": {"in": '
    '["sentinel-2a", "sentinel-2b"]}}\' had non-matching results: got',
)
# Values for the Query-extension checks that exist in the seeded items (all gsd 10,
# platforms sentinel-2a/b), as in the benchmark harness's run_validator.sh.
QUERY_VALUES = (
    "gsd", "10", "20", "20", "10", "5", "10",
    "platform", "sentinel", "2a", "nel-2", "platform", "sentinel-2a,sentinel-2b",
)  # fmt: skip

# The Alps (lon 5.9..13.5, lat 45.6..48): intersects some of the seeded scenes, not all.
GEOMETRY = {
    "type": "Polygon",
    "coordinates": [
        [[5.9, 45.8], [10.5, 45.6], [13.5, 46.6], [12.0, 48.0], [7.5, 47.8], [5.9, 45.8]]
    ],
}
# The validator's "ids do not override other parameters" check first looks for an item in
# bbox 20,20,21,21 and is skipped (with a warning) when there is none: one scene sits there.
PROBE = (20.25, 20.25)


# -- the data set --------------------------------------------------------------------------
def seed_collection() -> dict[str, Any]:
    """A Zarr data cube of Sentinel-2 L2A reflectances, as cubestac publishes one.

    The spatial dimensions leave `reference_system` at its default (EPSG:4326): a value would
    make the datacube schema resolve its `$ref` to PROJJSON v0.7 on proj.org, not mirrored.
    """
    start, end = "2021-01-01T00:00:00Z", "2021-01-03T00:00:00Z"
    return make_collection(
        COLLECTION_ID,
        stac_extensions=sorted(COLLECTION_EXTENSIONS),
        title="Sentinel-2 L2A surface reflectance cube",
        description="Sentinel-2 L2A scenes over the Alps, resampled to a 10 m Zarr data cube.",
        keywords=["sentinel-2", "l2a", "reflectance", "datacube", "zarr"],
        license="CC-BY-SA-3.0-IGO",
        providers=[
            {"name": "ESA", "roles": ["producer", "licensor"], "url": "https://www.esa.int"},
            {"name": "cubestac", "roles": ["processor", "host"]},
        ],
        extent={
            "spatial": {
                "bbox": [[4.0, 20.25, 20.75, 48.5], [4.0, 44.0, 15.0, 48.5], [*PROBE, 20.75, 20.75]]
            },
            "temporal": {"interval": [[start, end]]},
        },
        summaries={
            "platform": ["sentinel-2a", "sentinel-2b"],
            "constellation": ["sentinel-2"],
            "gsd": [10],
            "proj:code": ["EPSG:4326"],
        },
        item_assets={
            "data": {
                "title": "Surface reflectance",
                "type": "image/tiff; application=geotiff; profile=cloud-optimized",
                "roles": ["data"],
                "proj:code": "EPSG:4326",
            }
        },
        assets={
            "zarr": {
                "href": f"https://{ASSET_HOST}/cubes/sentinel-2-l2a.zarr",
                "title": "The whole cube as a Zarr v3 store",
                "type": "application/vnd+zarr",
                "roles": ["data"],
                "zarr:zarr_format": 3,
                "zarr:node_type": "group",
                "xarray:open_kwargs": {"engine": "zarr", "consolidated": False},
            }
        },
        **{
            "cube:dimensions": {
                "x": {"type": "spatial", "axis": "x", "extent": [4.0, 20.75]},
                "y": {"type": "spatial", "axis": "y", "extent": [20.25, 48.5]},
                "time": {"type": "temporal", "extent": [start, end], "step": "PT1H"},
            },
            "cube:variables": {
                "reflectance": {"dimensions": ["time", "y", "x"], "type": "data", "unit": "1"}
            },
        },
    )


def seed_items() -> list[dict[str, Any]]:
    """An 8 x 6 grid of half-degree scenes over the Alps plus the probe scene, one hour
    apart, with projection metadata; their assets live on example.com."""
    start = datetime(2021, 1, 1, tzinfo=UTC)
    places = [
        (4.0 + 1.5 * column, 44.0 + 0.8 * row)
        for row in range(GRID_ROWS)
        for column in range(GRID_COLUMNS)
    ] + [PROBE]
    items = []
    for index, (lon, lat) in enumerate(places):
        item = make_item(
            f"s2-l2a-{index:03d}",
            COLLECTION_ID,
            lon=lon,
            lat=lat,
            size=0.5,
            when=start + timedelta(hours=index),
            platform="sentinel-2a" if index % 2 == 0 else "sentinel-2b",
            constellation="sentinel-2",
            mission="sentinel-2",  # the validator's filter checks name mission, eo:cloud_cover
            gsd=10,
            **{"proj:code": "EPSG:4326", "proj:shape": [5000, 5000]},
            **{"eo:cloud_cover": (index * 7) % 60},
        )
        item["stac_extensions"] = [PROJECTION]
        item["properties"]["proj:bbox"] = item["bbox"]
        west, _, _, north = item["bbox"]
        item["assets"]["data"]["proj:transform"] = [0.0001, 0.0, west, 0.0, -0.0001, north]
        items.append(item)
    return items


def seed_over_http(base: str) -> None:
    """POST the collection, the first item on its own and the rest through bulk_items."""
    items = seed_items()
    headers = {"Authorization": f"Bearer {TEST_API_KEY}"}
    with httpx.Client(base_url=base, headers=headers, timeout=30, trust_env=False) as http:
        response = http.post("/collections", json=seed_collection())
        assert response.status_code == 201, response.text
        response = http.post(f"/collections/{COLLECTION_ID}/items", json=items[0])
        assert response.status_code == 201, response.text
        bulk = {"items": {item["id"]: item for item in items[1:]}, "method": "insert"}
        response = http.post(f"/collections/{COLLECTION_ID}/bulk_items", json=bulk)
        assert response.status_code == 200, response.text
        # the extension fields survive the round trip, so their schemas really get applied
        served = http.get(f"/collections/{COLLECTION_ID}").json()
        assert sorted(served["stac_extensions"]) == sorted(COLLECTION_EXTENSIONS)
        assert served["cube:dimensions"] == seed_collection()["cube:dimensions"]
        listed = http.get("/search", params={"limit": 100}).json()
        assert listed["numberReturned"] == len(items)
        hits = http.post("/search", json={"intersects": GEOMETRY, "limit": 100}).json()
        assert 0 < hits["numberReturned"] < len(items)


# -- running the validator -----------------------------------------------------------------
@dataclass
class Outcome:
    errors: list[str]
    warnings: list[str]
    served: list[str]
    refused: list[str]

    def report(self) -> str:
        lines = [
            "errors:", *self.errors, "warnings:", *self.warnings,
            "schemas served:", *self.served, "refused:", *self.refused,
        ]  # fmt: skip
        return "\n  ".join(lines)


def run_validator(base: str, conformance_class: str, db_host: str | None) -> Outcome:
    from stac_api_validator.validations import QueryConfig, validate_api

    with fresh_schema_caches(), offline_schemas([db_host] if db_host else []) as log:
        warnings, errors = validate_api(
            root_url=f"{base}/",
            ccs_to_validate=conformance_class.split("+"),
            collection=COLLECTION_ID,
            geometry=json.dumps(GEOMETRY),
            auth_bearer_token=None,
            auth_query_parameter=None,
            fields_nested_property="properties.eo:cloud_cover",
            validate_pagination=True,
            query_config=QueryConfig(*QUERY_VALUES),
            transaction_collection=None,
            headers={},
        )
    return Outcome(errors.as_list(), warnings.as_list(), log.served, log.refused)


@pytest.fixture
def api_base(fresh_db_url: URL) -> Iterator[str]:
    with live_server(create_app(make_settings(fresh_db_url))) as base:
        seed_over_http(base)
        yield base


@pytest.mark.parametrize("conformance_class", CONFORMANCE_CLASSES)
def test_stac_api_validator_passes(
    api_base: str, fresh_db_url: URL, conformance_class: str
) -> None:
    outcome = run_validator(api_base, conformance_class, fresh_db_url.host)
    print(f"stac-api-validator --conformance {conformance_class}\n  {outcome.report()}")

    errors = [error for error in outcome.errors if not error.startswith(KNOWN_VALIDATOR_BUGS)]
    assert errors == [], outcome.report()
    off_host = [url for url in outcome.refused if urlsplit(url).hostname != ASSET_HOST]
    assert off_host == [], f"fetches refused other than example.com assets: {off_host}"


# -- the offline mirror itself ---------------------------------------------------------------
def test_offline_schemas_validate_for_real_and_refuse_other_hosts() -> None:
    """The mirror is what stac-validator really validates against: a valid item passes, a
    broken one fails on the schema, and fetches to other hosts are refused, not attempted."""
    from stac_validator.validate import StacValidate

    item = seed_items()[0]
    # as served: the item schema wants a collection link when `collection` is set
    item["links"] = [{"rel": "collection", "href": f"https://{ASSET_HOST}/collection.json"}]
    broken = json.loads(json.dumps(item))
    broken["properties"]["proj:shape"] = ["5000", "5000"]  # projection: integers only
    with fresh_schema_caches(), offline_schemas() as log:
        good = StacValidate(assets=True, assets_open_urls=True)
        assert good.validate_dict(item), good.message
        bad = StacValidate()
        assert not bad.validate_dict(broken)
        assert bad.message[0]["error_type"] == "JSONSchemaValidationError", bad.message
        assert bad.message[0]["failed_schema"] == PROJECTION, bad.message
        with pytest.raises(requests.ConnectionError):
            requests.get("https://example.com/elsewhere.json", timeout=5)
    assert {ITEM_SCHEMA, PROJECTION} | GEOJSON_SCHEMAS <= set(log.served)
    assert log.refused == [item["assets"]["data"]["href"], "https://example.com/elsewhere.json"]
    assert COLLECTION_EXTENSIONS | {ITEM_SCHEMA, COLLECTION_SCHEMA} <= set(mirrored_urls())


def served_documents(base: str) -> Iterator[dict[str, Any]]:
    """Every STAC document the API serves for the seeded data: the landing page, each
    collection (from /collections and on its own) and every item of every search page,
    following `next` links."""
    with httpx.Client(base_url=base, timeout=30, trust_env=False) as http:
        yield http.get("/").json()
        for collection in http.get("/collections").json()["collections"]:
            yield collection
            yield http.get(f"/collections/{collection['id']}").json()
        url: str | None = f"{base}/search?limit=10"
        while url:
            page = http.get(url).json()
            yield from page["features"]
            url = next((link["href"] for link in page["links"] if link["rel"] == "next"), None)


def test_every_served_document_validates_against_its_schemas(api_base: str) -> None:
    """Core and every declared extension, from the offline mirror only."""
    applied: dict[str, int] = {}
    for document in served_documents(api_base):
        for url in validate_offline(document):
            applied[url] = applied.get(url, 0) + 1
    assert applied[ITEM_SCHEMA] == len(seed_items())
    assert applied[COLLECTION_SCHEMA] == 2
    assert applied[PROJECTION] == len(seed_items()) + 2
    assert {DATACUBE, ZARR, XARRAY} <= set(applied)
