"""Prometheus metrics of the API at `/metrics` (docs/operations.md, "Monitoring").

Requests by route template, method and status, a latency histogram per route, the
database pool's use, and the ingest and cube runs recorded in the jobs table. Labels are
route templates (`/collections/{collection_id}`), never raw paths, and an unknown method
or a path no route matches gets one fixed label, so the number of series stays bounded
whatever clients send.

With several uvicorn workers (`cubestac serve --workers N`) each worker is a process
with its own counters, and a scrape reaches one of them at random. `cubestac serve` then
sets `PROMETHEUS_MULTIPROC_DIR` before the workers start, every worker writes its values
there (prometheus-client's multiprocess mode) and any worker's `/metrics` answers the sum
over all of them.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import time

from fastapi import FastAPI
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)
from starlette.requests import Request
from starlette.responses import Response

from api.responses import ORJSONResponse
from catalogue.database import Database
from catalogue.repositories.jobs import job_tallies
from catalogue.settings import DatabasePoolSettings, MonitoringSettings

logger = logging.getLogger(__name__)

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
METRICS_PATH = "/metrics"
UNMATCHED = "unmatched"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# single-item GETs take about a millisecond, searches tens; the tail goes to the timeout
LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    15.0,
    30.0,
)


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROCESS_ENV) or None


class ApiMetrics:
    """The metrics of one app; in multiprocess mode their values live in files instead."""

    def __init__(self, db: Database, pool: DatabasePoolSettings) -> None:
        # `*_created` series would double the output; Prometheus derives resets itself
        disable_created_metrics()
        self.db = db
        self.registry = CollectorRegistry(auto_describe=False)
        registry = self.registry
        self.requests = Counter(
            "cubestac_http_requests",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=registry,
        )
        self.duration = Histogram(
            "cubestac_http_request_duration_seconds",
            "Time from a request's arrival to the end of its response, by route template.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.pool_checked_out = Gauge(
            "cubestac_db_pool_checked_out",
            "Database connections in use (summed over workers), as of each one's last request.",
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.pool_size = Gauge(
            "cubestac_db_pool_size",
            "Database connections each pool keeps open, summed over workers.",
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.pool_max = Gauge(
            "cubestac_db_pool_max",
            "Most connections the pools may open (size + overflow), summed over workers; "
            "past it requests wait, then answer 503.",
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.jobs = Gauge(
            "cubestac_jobs",
            "Ingest and cube runs recorded in the catalogue, by kind and status.",
            ["kind", "status"],
            multiprocess_mode="mostrecent",
            registry=registry,
        )
        self.jobs_last_finished = Gauge(
            "cubestac_jobs_last_finished_timestamp_seconds",
            "When the newest run of this kind and status ended (Unix time).",
            ["kind", "status"],
            multiprocess_mode="mostrecent",
            registry=registry,
        )
        self.pool_size.set(pool.pool_size)
        self.pool_max.set(pool.pool_size + pool.max_overflow)
        self._series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self._jobs_read_at = -float("inf")

    def observe(self, route: str | None, method: str, status: int, seconds: float) -> None:
        """Count one answered request; labelled children are cached (`labels()` is the
        costly part of an update)."""
        key = (route or UNMATCHED, method if method in METHODS else "other", status)
        series = self._series.get(key)
        if series is None:
            series = (
                self.requests.labels(key[0], key[1], str(status)),
                self.duration.labels(key[0]),
            )
            self._series[key] = series
        series[0].inc()
        series[1].observe(seconds)
        self.pool_checked_out.set(self.db.pool_use().checked_out)

    async def refresh_jobs(self, max_age_s: float, timeout_s: float) -> None:
        """Read the job tallies when the last read is older than `max_age_s`: scrapes,
        however frequent, cost the database one grouped query per interval. When the
        database does not answer, the gauges keep their last values."""
        now = time.monotonic()
        if now - self._jobs_read_at < max_age_s:
            return
        self._jobs_read_at = now
        try:
            async with asyncio.timeout(timeout_s):
                async with self.db.read() as connection:
                    tallies = await job_tallies(connection)
        except Exception as error:  # noqa: BLE001 - the metrics answer without them
            logger.warning("metrics: could not read the job counts: %s", type(error).__name__)
            return
        for tally in tallies:
            self.jobs.labels(tally.kind, tally.status).set(tally.count)
            if tally.last_finished is not None:
                self.jobs_last_finished.labels(tally.kind, tally.status).set(
                    tally.last_finished.timestamp()
                )

    def exposition(self) -> bytes:
        directory = multiprocess_dir()
        if directory is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=directory)
        return generate_latest(registry)

    def close(self) -> None:
        """At worker exit: take this process's pool out of the multiprocess sums."""
        if multiprocess_dir() is not None:
            multiprocess.mark_process_dead(os.getpid())


def _authorised(request: Request, token: str | None) -> bool:
    if token is None:
        return True
    given = request.headers.get("authorization", "")
    return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())


def add_metrics_route(app: FastAPI, metrics: ApiMetrics, monitoring: MonitoringSettings) -> None:
    """`GET /metrics` in Prometheus' text format; with `metrics_token` set, only for
    `Authorization: Bearer <token>`. Not in the OpenAPI document: it is not part of STAC."""
    token = monitoring.metrics_token.get_secret_value() if monitoring.metrics_token else None

    async def metrics_endpoint(request: Request) -> Response:
        if not _authorised(request, token):
            return ORJSONResponse(
                {"code": "Unauthorized", "description": "metrics need a bearer token"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        await metrics.refresh_jobs(monitoring.jobs_refresh_s, monitoring.health_timeout_s)
        return Response(
            metrics.exposition(),
            media_type=CONTENT_TYPE_LATEST,
            headers={"Cache-Control": "no-store"},
        )

    app.add_route(METRICS_PATH, metrics_endpoint, methods=["GET"], include_in_schema=False)
