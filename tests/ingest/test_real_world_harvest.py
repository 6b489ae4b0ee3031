"""Real-world STAC documents (tests/data/real_world/) harvested by `stac-static` (an old
static catalog on disk behind a file server on 127.0.0.1) and `stac-api` (a small upstream
API under uvicorn serving old documents): stored as current STAC, the changes counted in
the job record, what cannot be migrated reported per item while the rest is harvested."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from catalogue.repositories.jobs import JobStatus
from catalogue.serializers import row_to_collection, row_to_item
from tests.helpers import live_server
from tests.ingest.catalogs import file_server
from tests.ingest.conftest import rows, scalar
from tests.real_world import accepted_collections, accepted_items, load, validate_current

pytestmark = pytest.mark.slow
REFUSED_ITEMS = [
    "refused/item-0.9.0-band-index-out-of-range.json",
    "refused/item-version-not-a-version.json",
]


def _write(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=1))


def old_static_catalog(root: Path) -> Path:
    """A 0.9.0 root catalog (no `type`, as 0.9 had none) linking the corpus collections,
    each linking its corpus items (and the landsat one two items that cannot be migrated)."""
    items = [*accepted_items(), *(load(path) for path in REFUSED_ITEMS)]
    children = []
    for collection in accepted_collections():
        folder = root / collection["id"]
        links = [{"rel": "root", "href": "../catalog.json"}]
        for item in items:
            if item["collection"] == collection["id"]:
                _write(folder / f"{item['id']}.json", item)
                links.append({"rel": "item", "href": f"./{item['id']}.json"})
        _write(folder / "collection.json", {**collection, "links": collection["links"] + links})
        children.append({"rel": "child", "href": f"./{collection['id']}/collection.json"})
    catalog = {
        "stac_version": "0.9.0",
        "id": "old-catalog",
        "description": "A static catalog as public buckets still publish them",
        "links": children,
    }
    _write(root / "catalog.json", catalog)
    return root


async def stored(catalogue) -> tuple[list[dict], list[dict]]:
    """Collections and items as the API serves them."""
    collections = await rows(catalogue, "SELECT content FROM collections ORDER BY id")
    items = await rows(catalogue, "SELECT content FROM items ORDER BY id")
    base = "http://testserver/"
    return (
        [row_to_collection(dict(row.content), base) for row in collections],
        [row_to_item(dict(row.content), base) for row in items],
    )


async def test_an_old_static_catalog_is_harvested_as_current_stac(
    harvest, catalogue, tmp_path: Path
) -> None:
    root = old_static_catalog(tmp_path / "upstream")
    source = {"id": "old", "kind": "stac-static", "url": "", "retry_wait_s": 0.05}
    with file_server(root) as base:
        [outcome] = await harvest({**source, "url": f"{base}/catalog.json"})
        [rerun] = await harvest({**source, "url": f"{base}/catalog.json"})
    counts = outcome.counts.as_dict()
    assert counts == {"new": len(accepted_items()), "changed": 0, "unchanged": 0,
                      "removed": 0, "failed": 2}  # fmt: skip
    reasons = {problem.url.rsplit("/", 1)[1]: problem.reason for problem in outcome.problems}
    assert (
        "cannot be migrated: IndexError" in reasons["LC08_L1TP_152038_20200611_broken_bands.json"]
    )
    assert "'latest' is not a STAC version" in reasons["version-latest.json"]
    collections, items = await stored(catalogue)
    assert sorted(c["id"] for c in collections) == sorted(c["id"] for c in accepted_collections())
    assert len(items) == len(accepted_items())
    validate_current(collections + items)
    naip = next(c for c in collections if c["id"] == "naip")
    assert naip["extent"]["spatial"]["bbox"][0] == [-156.003, 18.864, -66.951, 49.346]
    message = await scalar(catalogue, "SELECT message FROM jobs WHERE id = :id", id=outcome.job_id)
    assert "migrated from STAC 0.9.0 to 1.1.0 (2x, first: " in message
    assert "their union was put first (1x, first: collection naip)" in message
    assert rerun.counts.new == 0 and rerun.counts.changed == 0  # migrated alike every run


@contextmanager
def old_stac_api() -> Iterator[str]:
    """A STAC API whose search answers 1.0.0-beta.2 items (and one that cannot be
    migrated) and whose collection is the 1.0.0-beta.2 corpus collection."""
    collection = load("collection-1.0.0-beta.2-sentinel.json")
    features = [
        load("item-1.0.0-beta.2-sentinel.json"),
        load("item-1.0.0-beta.2-sat-untyped-assets.json"),
        {**load("refused/item-0.9.0-band-index-out-of-range.json"),
         "collection": collection["id"]},
    ]  # fmt: skip

    async def landing(request: Request) -> JSONResponse:
        base = str(request.base_url).rstrip("/")
        return JSONResponse({
            "type": "Catalog", "stac_version": "1.0.0", "id": "old-api", "description": "old",
            "conformsTo": ["https://api.stacspec.org/v1.0.0/core",
                           "https://api.stacspec.org/v1.0.0/item-search"],
            "links": [{"rel": "self", "href": f"{base}/"},
                      {"rel": "root", "href": f"{base}/"},
                      {"rel": "search", "href": f"{base}/search", "method": "GET",
                       "type": "application/geo+json"},
                      {"rel": "data", "href": f"{base}/collections"}],
        })  # fmt: skip

    async def search(_: Request) -> JSONResponse:
        return JSONResponse({"type": "FeatureCollection", "features": features, "links": []})

    async def one_collection(_: Request) -> JSONResponse:
        return JSONResponse(collection)

    app = Starlette(
        routes=[
            Route("/", landing),
            Route("/search", search),
            Route("/collections/sentinel-s2-l2a-cogs", one_collection),
        ]
    )
    with live_server(app) as base:  # type: ignore[arg-type]  # any ASGI app serves
        yield base


async def test_an_old_stac_api_is_harvested_as_current_stac(harvest, catalogue) -> None:
    with old_stac_api() as base:
        [outcome] = await harvest(
            {"id": "old-api", "kind": "stac-api", "url": base, "retry_wait_s": 0.05,
             "collections": ["sentinel-s2-l2a-cogs"]}
        )  # fmt: skip
    assert outcome.status is JobStatus.SUCCEEDED, outcome.message
    assert (outcome.counts.new, outcome.counts.failed) == (2, 1)
    assert "cannot be migrated" in outcome.problems[0].reason
    collections, items = await stored(catalogue)
    assert [c["stac_version"] for c in collections + items] == ["1.1.0"] * 3
    validate_current(collections + items)
    assert "migrated from STAC 1.0.0-beta.2 to 1.1.0 (3x" in outcome.message
