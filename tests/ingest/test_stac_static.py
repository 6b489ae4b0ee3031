"""`stac-static` against a generated nested catalog served over HTTP on 127.0.0.1."""

from __future__ import annotations

import json

import pytest

from catalogue.repositories.jobs import JobStatus
from tests.ingest.catalogs import Faults, StaticCatalog, file_server
from tests.ingest.conftest import rows, scalar, validate_items

pytestmark = pytest.mark.slow


def source(url: str, **extra: object) -> dict[str, object]:
    return {"id": "eoforest", "kind": "stac-static", "url": url, "retry_wait_s": 0.05, **extra}


async def test_first_run_harvests_every_item_with_absolute_hrefs(
    harvest, catalogue, static_catalog: StaticCatalog
) -> None:
    with file_server(static_catalog.root) as base:
        [outcome] = await harvest(source(f"{base}/catalog.json"))
    assert outcome.status is JobStatus.SUCCEEDED, outcome.message
    assert outcome.counts.as_dict() == {
        "new": 300, "changed": 0, "unchanged": 0, "removed": 0, "failed": 0
    }  # fmt: skip
    collections = await rows(catalogue, "SELECT id FROM collections ORDER BY id")
    assert [row.id for row in collections] == ["biomass", "gami"]
    content = await scalar(catalogue, "SELECT content FROM items WHERE id = :id", id="gami-0007")
    assert content["assets"]["cog"]["href"] == f"{base}/forest/gami/gami-0007/gami-0007.tif"
    assert content["assets"]["zarr"]["href"] == f"{base}/forest/cubes/gami-0007.zarr"
    gami = await scalar(catalogue, "SELECT content FROM collections WHERE id = 'gami'")
    assert {link["rel"] for link in gami["links"]} == {"license"}
    assert gami["links"][0]["href"] == f"{base}/forest/gami/LICENSE.txt"
    assert json.dumps(gami).count("item") == 0  # no links into the upstream tree


async def test_unchanged_rerun_reads_and_writes_nothing(
    harvest, catalogue, static_catalog: StaticCatalog
) -> None:
    faults = Faults()
    with file_server(static_catalog.root, faults) as base:
        await harvest(source(f"{base}/catalog.json"))
        before = await rows(catalogue, "SELECT id, xmin::text AS version FROM items ORDER BY id")
        records = await rows(catalogue, "SELECT xmin::text AS v FROM source_items ORDER BY 1")
        [outcome] = await harvest(source(f"{base}/catalog.json"))
    assert outcome.counts.summary().startswith("0 new, 0 changed, 300 unchanged")
    assert "0 new, 0 changed" in outcome.summary()
    after = await rows(catalogue, "SELECT id, xmin::text AS version FROM items ORDER BY id")
    assert after == before  # no row was rewritten (xmin is the writing transaction)
    assert await rows(catalogue, "SELECT xmin::text AS v FROM source_items ORDER BY 1") == records


async def test_harvested_items_are_valid_stac(
    harvest, catalogue, static_catalog: StaticCatalog
) -> None:
    with file_server(static_catalog.root) as base:
        await harvest(source(f"{base}/catalog.json"))
    contents = await rows(catalogue, "SELECT content FROM items ORDER BY id LIMIT 40")
    assert validate_items([row.content for row in contents]) == 40


async def test_changed_and_removed_items_are_updated_and_mirrored(
    harvest, catalogue, static_catalog: StaticCatalog
) -> None:
    with file_server(static_catalog.root) as base:
        await harvest(source(f"{base}/catalog.json", mirror=True))
        static_catalog.rewrite_item("gami-0003", {"proj:code": "EPSG:32632"})
        static_catalog.remove_item("biomass-0042")
        [outcome] = await harvest(source(f"{base}/catalog.json", mirror=True))
    assert outcome.counts.as_dict() == {
        "new": 0, "changed": 1, "unchanged": 298, "removed": 1, "failed": 0
    }  # fmt: skip
    changed = await scalar(catalogue, "SELECT content FROM items WHERE id = 'gami-0003'")
    assert changed["properties"]["proj:code"] == "EPSG:32632"
    assert await scalar(catalogue, "SELECT count(*) FROM items WHERE id = 'biomass-0042'") == 0
    assert await scalar(catalogue, "SELECT count(*) FROM source_items") == 299


async def test_without_mirror_gone_items_stay(
    harvest, catalogue, static_catalog: StaticCatalog
) -> None:
    with file_server(static_catalog.root) as base:
        await harvest(source(f"{base}/catalog.json"))
        static_catalog.remove_item("biomass-0042")
        [outcome] = await harvest(source(f"{base}/catalog.json"))
    assert outcome.counts.removed == 0
    assert await scalar(catalogue, "SELECT count(*) FROM items") == 300


async def test_collections_filter_walks_only_those_collections(
    harvest, catalogue, static_catalog: StaticCatalog
) -> None:
    faults = Faults()
    with file_server(static_catalog.root, faults) as base:
        [outcome] = await harvest(source(f"{base}/catalog.json", collections=["biomass"]))
    assert outcome.counts.new == 100
    assert await scalar(catalogue, "SELECT array_agg(DISTINCT collection) FROM items") == [
        "biomass"
    ]
    assert not any("/gami/" in path and path.endswith("0.json") for path in faults.requests)


async def test_bad_items_and_links_are_skipped_counted_and_reported(
    harvest, catalogue, static_catalog: StaticCatalog
) -> None:
    static_catalog.item_path("gami-0001").write_text("{not json")
    bad_geometry = json.loads(static_catalog.item_path("gami-0002").read_text())
    ring = [[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]  # a bow tie: self-intersecting
    bad_geometry["geometry"] = {"type": "Polygon", "coordinates": [ring]}
    static_catalog.item_path("gami-0002").write_text(json.dumps(bad_geometry))
    not_stac = json.loads(static_catalog.item_path("gami-0003").read_text())
    not_stac["assets"] = {"cog": {"title": "no href"}}
    static_catalog.item_path("gami-0003").write_text(json.dumps(not_stac))
    static_catalog.item_path("gami-0004").unlink()  # a broken item link
    root = json.loads(static_catalog.catalog.read_text())
    root["links"].append({"rel": "child", "href": "./missing/catalog.json"})
    static_catalog.catalog.write_text(json.dumps(root))
    with file_server(static_catalog.root) as base:
        [outcome] = await harvest(source(f"{base}/catalog.json", mirror=True))
    assert outcome.status is JobStatus.SUCCEEDED
    assert outcome.counts.new == 296 and outcome.counts.failed == 5
    reasons = {problem.url.rsplit("/", 1)[-1]: problem.reason for problem in outcome.problems}
    assert "not valid JSON" in reasons["gami-0001.json"]
    assert "invalid geometry" in reasons["gami-0002.json"]
    assert "asset 'cog'" in reasons["gami-0003.json"]
    assert "404" in reasons["gami-0004.json"]
    assert "404" in reasons["catalog.json"]
    assert "incomplete" in (outcome.message or "")  # mirror removes nothing after a broken link
    job = await rows(catalogue, "SELECT counts, errors FROM jobs WHERE status = 'succeeded'")
    assert job[0].counts["failed"] == 5 and len(job[0].errors) == 5


async def test_an_upstream_that_fails_twice_then_answers_is_retried(
    harvest, catalogue, static_catalog: StaticCatalog
) -> None:
    faults = Faults()
    faults.fail("/catalog.json", 2, 503)
    faults.fail("/biomass/biomass-0005/biomass-0005.json", 2, 502)
    with file_server(static_catalog.root, faults) as base:
        [outcome] = await harvest(source(f"{base}/catalog.json"))
    assert outcome.status is JobStatus.SUCCEEDED and outcome.counts.new == 300
    assert faults.requests.count("/catalog.json") == 3
    assert faults.requests.count("/biomass/biomass-0005/biomass-0005.json") == 3


async def test_an_upstream_that_keeps_failing_fails_the_source(
    harvest, catalogue, static_catalog: StaticCatalog
) -> None:
    faults = Faults()
    faults.fail("/catalog.json", 10, 500)
    with file_server(static_catalog.root, faults) as base:
        [outcome] = await harvest(source(f"{base}/catalog.json", retries=2))
    assert outcome.status is JobStatus.FAILED
    assert "kept failing" in (outcome.message or "")
    assert faults.requests.count("/catalog.json") == 3
    job = await rows(catalogue, "SELECT status, message FROM jobs")
    assert job[0].status == "failed"


async def test_a_local_catalog_path_is_harvested_and_rerun_by_size_and_mtime(
    harvest, catalogue, static_catalog: StaticCatalog
) -> None:
    url = f"file://{static_catalog.catalog}"
    [first] = await harvest(source(url))
    static_catalog.rewrite_item("biomass-0001", {"proj:code": "EPSG:32633"})
    [second] = await harvest(source(url))
    assert first.counts.new == 300
    assert (second.counts.changed, second.counts.unchanged) == (1, 299)
    content = await scalar(catalogue, "SELECT content FROM items WHERE id = 'biomass-0001'")
    assert content["assets"]["cog"]["href"].startswith(f"file://{static_catalog.root}/")
