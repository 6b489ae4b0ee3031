"""`/metrics` on a real server: requests by route template and status, latency, the
pool's use and the ingest/cube runs recorded in the catalogue; bounded labels; a token."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import URL
from sqlalchemy.ext.asyncio import create_async_engine

from api import create_app
from catalogue.repositories.jobs import JobStatus, finish_job, record_skipped, start_job
from catalogue.settings import DatabasePoolSettings, MonitoringSettings
from tests.helpers import live_server, make_settings

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(base: str, **headers: str) -> Samples:
    response = httpx.get(f"{base}/metrics", headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


@pytest.fixture
def server(fresh_db_url: URL) -> Iterator[str]:
    settings = make_settings(fresh_db_url, pool=DatabasePoolSettings(pool_size=4, max_overflow=2))
    with live_server(create_app(settings)) as base:
        yield base


def test_requests_are_counted_by_route_template_method_and_status(server: str) -> None:
    for collection_id in ("a", "b", "c"):
        assert httpx.get(f"{server}/collections/{collection_id}").status_code == 404
    assert httpx.get(f"{server}/search").status_code == 200
    assert httpx.post(f"{server}/search", json={"limit": 1}).status_code == 200
    samples = scrape(server)
    requests = "cubestac_http_requests_total"
    route = "/collections/{collection_id}"
    assert value(samples, requests, route=route, method="GET", status="404") == 3
    assert value(samples, requests, route="/search", method="GET", status="200") == 1
    assert value(samples, requests, route="/search", method="POST", status="200") == 1
    durations = "cubestac_http_request_duration_seconds"
    assert value(samples, f"{durations}_count", route=route) == 3
    assert value(samples, f"{durations}_bucket", route=route, le="+Inf") == 3
    assert value(samples, f"{durations}_sum", route=route) > 0


def test_labels_stay_bounded_whatever_paths_and_methods_clients_send(server: str) -> None:
    for index in range(40):
        httpx.get(f"{server}/no/such/{index}")
    httpx.request("PROPFIND", f"{server}/search")
    httpx.request("PROPFIND", f"{server}/coffee")
    response = httpx.get(f"{server}/metrics")
    assert "/no/such" not in response.text
    assert "PROPFIND" not in response.text
    samples = scrape(server)
    requests = "cubestac_http_requests_total"
    assert value(samples, requests, route="unmatched", method="GET", status="404") == 40
    assert value(samples, requests, route="unmatched", method="other", status="404") == 1
    assert value(samples, requests, route="/search", method="other", status="405") == 1


def test_pool_gauges_give_the_pool_bounds(server: str) -> None:
    httpx.get(f"{server}/collections")
    samples = scrape(server)
    assert value(samples, "cubestac_db_pool_size") == 4
    assert value(samples, "cubestac_db_pool_max") == 6
    assert value(samples, "cubestac_db_pool_checked_out") == 0


async def test_job_gauges_count_runs_by_kind_and_status(fresh_db_url: URL) -> None:
    engine = create_async_engine(fresh_db_url)
    async with engine.begin() as conn:
        for target, status in (("s1", JobStatus.SUCCEEDED), ("s2", JobStatus.FAILED)):
            job = await start_job(conn, "ingest", target)
            await finish_job(conn, job, status, {"new": 1}, [])
        await start_job(conn, "cube", "forest-age")  # still running
        await record_skipped(conn, "cube", "forest-age", "locked by another run")
    await engine.dispose()
    with live_server(create_app(make_settings(fresh_db_url))) as base:
        samples = scrape(base)
    assert value(samples, "cubestac_jobs", kind="ingest", status="succeeded") == 1
    assert value(samples, "cubestac_jobs", kind="ingest", status="failed") == 1
    assert value(samples, "cubestac_jobs", kind="cube", status="running") == 1
    assert value(samples, "cubestac_jobs", kind="cube", status="skipped") == 1
    finished = "cubestac_jobs_last_finished_timestamp_seconds"
    assert value(samples, finished, kind="ingest", status="succeeded") > 1.7e9
    assert value(samples, finished, kind="cube", status="running") is None


def test_a_metrics_token_keeps_metrics_private(fresh_db_url: URL) -> None:
    monitoring = MonitoringSettings(metrics_token="scrape-token-123")
    with live_server(create_app(make_settings(fresh_db_url, monitoring=monitoring))) as base:
        refused = httpx.get(f"{base}/metrics")
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == "Bearer"
        wrong = httpx.get(f"{base}/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        samples = scrape(base, Authorization="Bearer scrape-token-123")
        assert value(samples, "cubestac_db_pool_size") == 10


def test_metrics_can_be_turned_off(fresh_db_url: URL) -> None:
    monitoring = MonitoringSettings(metrics=False)
    with live_server(create_app(make_settings(fresh_db_url, monitoring=monitoring))) as base:
        assert httpx.get(f"{base}/metrics").status_code == 404
        assert "/metrics" not in httpx.get(f"{base}/api").json()["paths"]
