"""`cubestac serve` as operators run it (a subprocess, stderr not a terminal, so JSON
lines): one access line per request without secrets, a database outage that does not
flood the log, and `/metrics` summed over `--workers`."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import URL

from catalogue.embedded import EmbeddedCluster
from catalogue.schema import upgrade
from cubestac.logs import REPEAT_INTERVAL_S
from tests.api.test_metrics import scrape, value
from tests.helpers import free_port

pytestmark = pytest.mark.slow


@contextmanager
def cubestac_serve(url: URL, log: Path, *args: str, **env: str) -> Iterator[str]:
    """`cubestac serve` on a free port, its stderr in `log`; stopped with SIGTERM."""
    port = free_port()
    environment = {**os.environ, "DATABASE_URL": url.render_as_string(False), **env}
    command = [sys.executable, "-c", "from cubestac.cli import main; main()", "serve"]
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [*command, "--port", str(port), *args], env=environment, stderr=stderr
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                assert process.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                try:
                    if httpx.get(f"{base}/_mgmt/ping").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            yield base
        finally:
            process.terminate()
            process.wait(timeout=30)


def _log_lines(log: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]


def _access(log: Path, path: str) -> list[dict[str, Any]]:
    return [
        line
        for line in _log_lines(log)
        if line["logger"] == "cubestac.access" and line["path"] == path
    ]


def test_serve_logs_one_json_line_per_request_without_secrets(
    fresh_db_url: URL, tmp_path: Path
) -> None:
    log = tmp_path / "serve.log"
    with cubestac_serve(fresh_db_url, log, CUBESTAC_API_KEY="server-key-0123456789") as base:
        missing = httpx.get(
            f"{base}/collections/missing-one?token=query-secret-1",
            headers={"Authorization": "Bearer header-secret-2"},
        )
        refused = httpx.post(
            f"{base}/collections", json={}, headers={"Authorization": "Bearer wrong-secret-3"}
        )
        unmatched = httpx.get(f"{base}/no/such/thing")
    assert (missing.status_code, refused.status_code, unmatched.status_code) == (404, 401, 404)

    [line] = _access(log, "/collections/missing-one")
    assert line["level"] == "info"
    assert line["method"] == "GET"
    assert line["route"] == "/collections/{collection_id}"
    assert line["status"] == 404
    assert line["duration_ms"] >= 0
    assert line["message"].startswith("GET /collections/missing-one 404 ")
    [line] = _access(log, "/collections")  # refused before routing: no route template
    assert (line["method"], line["route"], line["status"]) == ("POST", None, 401)
    [line] = _access(log, "/no/such/thing")
    assert (line["route"], line["status"]) == (None, 404)
    text = log.read_text()
    for secret in ("query-secret-1", "header-secret-2", "wrong-secret-3", "server-key"):
        assert secret not in text


def test_a_database_outage_writes_a_bounded_number_of_warnings(
    own_cluster: EmbeddedCluster, tmp_path: Path
) -> None:
    url = own_cluster.url()
    upgrade(url)
    log = tmp_path / "serve.log"
    requests = 300
    with cubestac_serve(url, log) as base:
        own_cluster.stop()
        started = time.monotonic()
        with httpx.Client(timeout=30) as http:
            statuses = [http.get(f"{base}/search").status_code for _ in range(requests)]
        elapsed = time.monotonic() - started
    assert statuses == [503] * requests

    assert [line["status"] for line in _access(log, "/search")] == [503] * requests
    warnings = [line for line in _log_lines(log) if line["logger"] == "api.errors"]
    summaries = [line for line in warnings if "suppressed" in line]
    written = [line for line in warnings if "suppressed" not in line]
    assert written[0]["message"].startswith("database unavailable for GET /search: ")
    # one per rate-limit interval, where there were 300 before
    assert 1 <= len(written) <= 1 + elapsed // REPEAT_INTERVAL_S
    assert len(written) + sum(line["suppressed"] for line in summaries) <= requests


def test_workers_answer_metrics_summed_over_all_of_them(fresh_db_url: URL, tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    with cubestac_serve(fresh_db_url, log, "--workers", "2") as base:
        deadline = time.monotonic() + 60
        # each worker adds its pool once it has started: 2 x 10 when both report
        while value(scrape(base), "cubestac_db_pool_size") != 20:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        for _ in range(40):  # a connection each, so that either worker may answer
            assert httpx.get(f"{base}/collections/missing").status_code == 404
        totals = {
            value(
                scrape(base),
                "cubestac_http_requests_total",
                route="/collections/{collection_id}",
                method="GET",
                status="404",
            )
            for _ in range(6)
        }
    assert totals == {40}
    lines = _access(log, "/collections/missing")
    assert len(lines) == 40  # the spawned workers log too
