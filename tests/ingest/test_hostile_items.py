"""A harvest meets the ids and bboxes the API refuses (issue 14): an item whose id or
collection cannot be a URL path segment is reported and skipped, the rest is harvested; a
bbox that misses its geometry is recomputed from the geometry, with a warning."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from catalogue.repositories.jobs import JobStatus
from tests.ingest.catalogs import StaticCatalog, file_server
from tests.ingest.conftest import rows, scalar

pytestmark = pytest.mark.slow


def _edit(catalog: StaticCatalog, item_id: str, **fields: Any) -> None:
    path = catalog.item_path(item_id)
    document = json.loads(path.read_text())
    document.update(fields)
    path.write_text(json.dumps(document))


async def test_hostile_ids_are_reported_and_the_rest_harvested(
    harvest, catalogue, static_catalog: StaticCatalog
) -> None:
    _edit(static_catalog, "gami-0001", id="..")
    _edit(static_catalog, "gami-0002", id="a/b")
    _edit(static_catalog, "gami-0003", id="x\\y")
    _edit(static_catalog, "biomass-0004", collection="../../x")
    with file_server(static_catalog.root) as base:
        [outcome] = await harvest(
            {"id": "eoforest", "kind": "stac-static", "url": f"{base}/catalog.json"}
        )
    assert outcome.status is JobStatus.SUCCEEDED, outcome.message
    assert outcome.counts.new == 296 and outcome.counts.failed == 4
    reasons = {problem.url.rsplit("/", 1)[-1]: problem.reason for problem in outcome.problems}
    assert "item id '..'" in reasons["gami-0001.json"]
    assert "item id 'a/b'" in reasons["gami-0002.json"]
    assert "item id 'x\\\\y'" in reasons["gami-0003.json"]
    assert "collection id '../../x'" in reasons["biomass-0004.json"]
    stored = await scalar(catalogue, "SELECT count(*) FROM items WHERE id IN ('..', 'a/b')")
    assert stored == 0
    collections = await rows(catalogue, "SELECT id FROM collections ORDER BY id")
    assert [row.id for row in collections] == ["biomass", "gami"]
    job = await rows(catalogue, "SELECT counts, errors FROM jobs")
    assert job[0].counts["failed"] == 4
    assert any("'..'" in error["reason"] for error in job[0].errors)


async def test_a_bbox_that_misses_its_geometry_is_recomputed_with_a_warning(
    harvest, catalogue, static_catalog: StaticCatalog, caplog: pytest.LogCaptureFixture
) -> None:
    original = json.loads(static_catalog.item_path("gami-0005").read_text())["bbox"]
    _edit(static_catalog, "gami-0005", bbox=[0.0, 0.0, 1.0, 1.0])
    _edit(static_catalog, "gami-0006", bbox=[0.0, 0.0, 1.0, 95.0])
    with caplog.at_level(logging.WARNING), file_server(static_catalog.root) as base:
        [outcome] = await harvest(
            {"id": "eoforest", "kind": "stac-static", "url": f"{base}/catalog.json"}
        )
    assert outcome.counts.new == 300 and outcome.counts.failed == 0
    bbox = await scalar(catalogue, "SELECT content->'bbox' FROM items WHERE id = 'gami-0005'")
    assert bbox == original
    other = await scalar(catalogue, "SELECT content->'bbox' FROM items WHERE id = 'gami-0006'")
    assert other[3] <= 90
    warned = [r.getMessage() for r in caplog.records if "geometry's bounds" in r.getMessage()]
    assert len(warned) == 2 and "gami-0005" in warned[0] + warned[1]
