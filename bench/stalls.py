#!/usr/bin/env python3
"""How long an ordinary request takes while one client tries to stall the API (issue 14).

Steps (everything on 127.0.0.1, everything started is stopped in `finally`):

1. a private embedded PostGIS in a temporary folder, migrated, ITEMS soak items loaded;
2. `cubestac serve` with its defaults (and, with `--peer-tree DIR`, the same command run
   from an older source tree, e.g. `git archive <commit> | tar -x -C DIR`: the peer);
3. for each server, three phases, each REQUESTS ordinary requests (`GET /search?limit=1`
   and `GET /_mgmt/ping` in turn, a new connection each, one after the other):
   - `quiet`: no attack;
   - `slow-headers`: SOCKETS connections that send half a request head and wait; the
     attacker reopens any the server closes, so the attack holds for the whole phase;
   - `big-geometry`: one client POSTs a 13 MB `intersects` (600k vertices) again and
     again, one at a time;
4. per phase: requests, answers other than 200, median and max latency, and for
   big-geometry how long each refusal took. Markdown on stdout and in --out.

`python bench/stalls.py [--sockets 1000] [--requests 60] [--peer-tree /tmp/before]`
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from soak import free_port, generate, load, wait_until_up  # noqa: E402 - the soak benchmark, beside this file

PARTIAL_HEAD = b"GET /search HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "


def log(message: str) -> None:
    print(f"[stalls {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@contextmanager
def cubestac_serve(db_url: str, tree: Path, work: Path, name: str) -> Iterator[str]:
    """`cubestac serve` (its defaults) run from the source tree `tree`."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": db_url, "PYTHONPATH": str(tree)}
    env.pop("CUBESTAC_API_KEY", None)
    command = [sys.executable, "-c", "from cubestac.cli import main; main()"]
    command += ["serve", "--port", str(port)]
    log_file = (work / f"{name}.log").open("wb")
    api = subprocess.Popen(
        command, env=env, cwd=tree, stdout=log_file, stderr=log_file, start_new_session=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base, api, work / f"{name}.log", name)
        yield base
    finally:
        os.killpg(api.pid, signal.SIGTERM)
        try:
            api.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(api.pid, signal.SIGKILL)
        log_file.close()


def ordinary_requests(base: str, count: int, max_s: float = 90) -> dict[str, Any]:
    """`count` requests one after the other, each on a new connection (fewer if they take
    longer than `max_s` together)."""
    latencies, failures = [], 0
    paths = ["/search?limit=1", "/_mgmt/ping"]
    deadline = time.monotonic() + max_s
    for index in range(count):
        if time.monotonic() > deadline:
            break
        started = time.perf_counter()
        try:
            status = httpx.get(base + paths[index % 2], timeout=60).status_code
        except httpx.HTTPError:
            status = 0
        latencies.append(time.perf_counter() - started)
        failures += status != 200
        time.sleep(0.1)
    return {
        "requests": len(latencies),
        "not_200": failures,
        "median_ms": round(statistics.median(latencies) * 1000, 1),
        "max_ms": round(max(latencies) * 1000, 1),
    }


class SlowHeaders:
    """SOCKETS connections that each send half a head and wait; closed ones are reopened."""

    def __init__(self, port: int, sockets: int) -> None:
        self.port, self.count = port, sockets
        self.selector = selectors.DefaultSelector()
        self.stop = threading.Event()
        self.reopened = 0
        self.thread = threading.Thread(target=self.run, daemon=True)

    def open_one(self) -> None:
        sock = socket.socket()
        sock.setblocking(True)
        sock.settimeout(5)
        try:
            sock.connect(("127.0.0.1", self.port))
            sock.sendall(PARTIAL_HEAD)
        except OSError:
            sock.close()
            return
        self.selector.register(sock, selectors.EVENT_READ)

    def run(self) -> None:
        for _ in range(self.count):
            self.open_one()
        while not self.stop.is_set():
            for key, _ in self.selector.select(timeout=0.2):  # the server answered or closed
                self.selector.unregister(key.fileobj)
                key.fileobj.close()  # type: ignore[union-attr]
                self.open_one()
                self.reopened += 1
            while len(self.selector.get_map()) < self.count and not self.stop.is_set():
                self.open_one()

    def __enter__(self) -> SlowHeaders:
        self.thread.start()
        while len(self.selector.get_map()) < self.count * 0.9:
            time.sleep(0.1)
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join()
        for key in list(self.selector.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
        self.selector.close()


def big_geometry() -> bytes:
    vertices = 600_000
    ring = [
        [
            round(10 + math.cos(2 * math.pi * i / vertices), 6),
            round(50 + math.sin(2 * math.pi * i / vertices), 6),
        ]
        for i in range(vertices)
    ]
    return orjson.dumps({"intersects": {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}})


class BigGeometry:
    """One client POSTing the big `intersects` again and again."""

    def __init__(self, base: str) -> None:
        self.base, self.body = base, big_geometry()
        self.stop = threading.Event()
        self.refusals: list[tuple[int, float]] = []
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        headers = {"Content-Type": "application/json"}
        while not self.stop.is_set():
            started = time.perf_counter()
            try:
                status = httpx.post(
                    f"{self.base}/search", content=self.body, headers=headers, timeout=120
                ).status_code
            except httpx.HTTPError:
                status = 0
            self.refusals.append((status, time.perf_counter() - started))

    def __enter__(self) -> BigGeometry:
        self.thread.start()
        time.sleep(0.2)
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join()


def measure(base: str, args: argparse.Namespace) -> dict[str, Any]:
    port = int(base.rsplit(":", 1)[1])
    result: dict[str, Any] = {"quiet": ordinary_requests(base, args.requests)}
    with SlowHeaders(port, args.sockets) as attack:
        result["slow-headers"] = ordinary_requests(base, args.requests)
        result["slow-headers"]["attack"] = f"{args.sockets} sockets, {attack.reopened} reopened"
    with BigGeometry(base) as attack:
        result["big-geometry"] = ordinary_requests(base, args.requests)
    statuses = sorted({status for status, _ in attack.refusals})
    seconds = [duration for _, duration in attack.refusals]
    result["big-geometry"]["attack"] = (
        f"{len(seconds)} POSTs of {len(attack.body) / 1e6:.1f} MB, status {statuses}, "
        f"median {statistics.median(seconds):.2f} s"
        if seconds
        else "none finished"
    )
    return result


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"# Stall attacks (bench/stalls.py), {report['when']}",
        "",
        f"Machine: {report['machine']}; load before: {report['load']}. "
        f"Command: `{report['command']}`.",
        "",
        "| server | phase | requests | not 200 | median ms | max ms | attack |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for server, phases in report["servers"].items():
        for phase, row in phases.items():
            lines.append(
                f"| {server} | {phase} | {row['requests']} | {row['not_200']} | "
                f"{row['median_ms']} | {row['max_ms']} | {row.get('attack', '')} |"
            )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--peer-tree", type=Path, help="an older source tree to compare with")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "stalls.md")
    args = parser.parse_args()

    from catalogue.embedded import EmbeddedCluster
    from catalogue.schema import upgrade
    from catalogue.settings import EmbeddedDatabaseSettings

    work = Path(tempfile.mkdtemp(prefix="cubestac-stalls-"))
    work.chmod(0o755)
    cluster = EmbeddedCluster(EmbeddedDatabaseSettings(data_dir=work / "cluster", port=free_port()))
    trees: dict[str, Path] = {"cubestac (this tree)": REPO}
    if args.peer_tree:
        trees[f"peer ({args.peer_tree})"] = args.peer_tree
    try:
        url = cluster.start()
        upgrade(url)
        asyncio.run(load(url, generate(args.items, 42)))
        servers: dict[str, Any] = {}
        db_url = url.render_as_string(hide_password=False)
        for name, tree in trees.items():
            with cubestac_serve(db_url, tree, work, name.split()[0]) as base:
                log(f"{name}: measuring at {base}")
                servers[name] = measure(base, args)
        report = {
            "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": f"{os.cpu_count()} CPUs",
            "load": " ".join(f"{value:.1f}" for value in os.getloadavg()),
            "command": "python bench/stalls.py " + " ".join(sys.argv[1:]),
            "servers": servers,
        }
        text = markdown(report)
        print(text)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
        log(f"wrote {args.out}")
        return 0
    finally:
        cluster.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
