"""An upstream that times out, resets connections, cuts bodies short or answers garbage:
transient failures are retried (and a record that recovers is harvested), a record that
keeps failing is counted as failed with its reason, and the rest of the source is
harvested. A 200 with a body that is not JSON is not transient: it fails at once."""

from __future__ import annotations

from catalogue.repositories.jobs import JobStatus
from tests.ingest.catalogs import Faults, StaticCatalog, file_server
from tests.ingest.conftest import rows

TIMEOUT_S = 0.5
RETRIES = 2


async def test_misbehaving_upstream_is_retried_then_counted_and_the_rest_harvested(
    harvest, catalogue, static_catalog: StaticCatalog
) -> None:
    def url_path(item_id: str) -> str:
        return "/" + static_catalog.item_path(item_id).relative_to(static_catalog.root).as_posix()

    misbehaviour = Faults(hang_s=TIMEOUT_S * 3)  # longer than the source's timeout_s
    always = {"gami-0001": "timeout", "gami-0002": "reset", "gami-0003": "truncate"}
    twice = {"gami-0011": "timeout", "gami-0012": "reset", "biomass-0013": "truncate"}
    for item_id, mode in always.items():
        misbehaviour.fail(url_path(item_id), None, mode)
    for item_id, mode in twice.items():
        misbehaviour.fail(url_path(item_id), 2, mode)
    misbehaviour.fail(url_path("biomass-0004"), None, "garbage")
    misbehaviour.fail("/forest/catalog.json", 1, "reset")  # a listing page recovers too

    source = {
        "id": "flaky",
        "kind": "stac-static",
        "url": "",
        "timeout_s": TIMEOUT_S,
        "retries": RETRIES,
        "retry_wait_s": 0.05,
    }
    with file_server(static_catalog.root, misbehaviour) as base:
        [outcome] = await harvest({**source, "url": f"{base}/catalog.json"})

    assert outcome.status is JobStatus.SUCCEEDED, outcome.message
    assert (outcome.counts.new, outcome.counts.failed) == (296, 4)
    reasons = {problem.url.rsplit("/", 1)[-1]: problem.reason for problem in outcome.problems}
    assert set(reasons) == {f"{item_id}.json" for item_id in [*always, "biomass-0004"]}
    assert "timed out" in reasons["gami-0001.json"]
    assert "reset" in reasons["gami-0002.json"]
    assert "payload is not completed" in reasons["gami-0003.json"]
    for item_id in always:
        assert "kept failing" in reasons[f"{item_id}.json"], reasons
        attempts = misbehaviour.requests.count(url_path(item_id))
        # aiohttp itself reconnects once when a kept-alive connection is reset
        assert RETRIES + 1 <= attempts <= 2 * (RETRIES + 1)
    assert "not valid JSON" in reasons["biomass-0004.json"]
    assert misbehaviour.requests.count(url_path("biomass-0004")) == 1  # not transient
    for item_id in twice:  # two failures, then read
        assert 3 <= misbehaviour.requests.count(url_path(item_id)) <= 5
    stored = await rows(catalogue, "SELECT id FROM items")
    assert {row.id for row in stored} >= set(twice)
    assert not {row.id for row in stored} & {*always, "biomass-0004"}
    job = await rows(catalogue, "SELECT status, counts, errors FROM jobs")
    assert job[0].status == "succeeded" and job[0].counts["failed"] == 4
    assert len(job[0].errors) == 4
