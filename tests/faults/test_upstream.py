"""An upstream that times out, resets connections, cuts bodies short or answers garbage:
transient failures are retried (and a record that recovers is harvested), a record that
keeps failing is counted as failed with its reason, and the rest of the source is
harvested. A 200 with a body that is not JSON is not transient: it fails at once."""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from catalogue.repositories.jobs import JobStatus
from tests.ingest.catalogs import StaticCatalog
from tests.ingest.conftest import rows

TIMEOUT_S = 0.5
RETRIES = 2


@dataclass
class Misbehaviour:
    """By URL path: how to fail (`timeout`, `reset`, `truncate`, `garbage`) and how many
    times (None: always); every request is recorded."""

    plan: dict[str, tuple[str, int | None]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, path: str) -> str | None:
        with self.lock:
            self.requests.append(path)
            mode, times = self.plan.get(path, (None, 0))
            if mode is None or times == 0:
                return None
            if times is not None:
                self.plan[path] = (mode, times - 1)
            return mode


class _Handler(SimpleHTTPRequestHandler):
    misbehaviour: Misbehaviour

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        return None

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        mode = self.misbehaviour.take(self.path)
        if mode == "timeout":
            time.sleep(TIMEOUT_S * 3)  # longer than the source's timeout_s
            self.close_connection = True
            return
        if mode == "reset":  # an RST instead of an answer
            linger = struct.pack("ii", 1, 0)
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
            self.close_connection = True
            self.connection.close()
            return
        if mode == "truncate":  # promises 10 kB, sends 10 bytes, hangs up
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "10000")
            self.end_headers()
            self.wfile.write(b'{"type": "')
            self.close_connection = True
            return
        if mode == "garbage":
            body = b"\x00\xff<html>not json at all"
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()


@contextmanager
def misbehaving_server(directory: Path, misbehaviour: Misbehaviour) -> Iterator[str]:
    handler = type("Handler", (_Handler,), {"misbehaviour": misbehaviour})
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(directory)))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


async def test_misbehaving_upstream_is_retried_then_counted_and_the_rest_harvested(
    harvest, catalogue, static_catalog: StaticCatalog
) -> None:
    def url_path(item_id: str) -> str:
        return "/" + static_catalog.item_path(item_id).relative_to(static_catalog.root).as_posix()

    misbehaviour = Misbehaviour()
    always = {"gami-0001": "timeout", "gami-0002": "reset", "gami-0003": "truncate"}
    twice = {"gami-0011": "timeout", "gami-0012": "reset", "biomass-0013": "truncate"}
    for item_id, mode in always.items():
        misbehaviour.plan[url_path(item_id)] = (mode, None)
    for item_id, mode in twice.items():
        misbehaviour.plan[url_path(item_id)] = (mode, 2)
    misbehaviour.plan[url_path("biomass-0004")] = ("garbage", None)
    misbehaviour.plan["/forest/catalog.json"] = ("reset", 1)  # a listing page recovers too

    source = {
        "id": "flaky",
        "kind": "stac-static",
        "url": "",
        "timeout_s": TIMEOUT_S,
        "retries": RETRIES,
        "retry_wait_s": 0.05,
    }
    with misbehaving_server(static_catalog.root, misbehaviour) as base:
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
