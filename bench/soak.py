#!/usr/bin/env python3
"""Bounded soak of the STAC API: DURATION s at CONCURRENCY on 127.0.0.1, mixed queries.

Steps (everything on 127.0.0.1, everything started is stopped in `finally`):

1. a private embedded PostGIS (`catalogue.embedded.EmbeddedCluster`) in a temporary folder,
   migrated; N generated items in two collections (`bench/documents.py`, seeded random
   cloud cover / platform / grid position / time), loaded with `upsert_items`, ANALYZEd;
2. `cubestac serve` (uvicorn, `--workers W`) with that DATABASE_URL;
3. CONCURRENCY asyncio clients (httpx) for DURATION s, each drawing its next request from a
   fixed mix: collection search, bbox+datetime, CQL2 filter (GET and POST), sort, item GET,
   paging (page 1 then its `next` link), intersects;
4. the API's resident memory (the process and its workers) sampled every second;
5. a report: requests, errors (any status other than 200, any transport error), req/s,
   p50/p95/p99 latency, RSS at start/middle/end and its peak; JSON and markdown on stdout
   and in --out (default bench/results/soak.md).

Needs root only for what PostgreSQL needs (the cluster runs as the `postgres` OS user).
`python bench/soak.py --duration 60 --concurrency 32 --items 20000`
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

COLLECTIONS = ("soak-optical", "soak-radar")


def log(message: str) -> None:
    print(f"[soak {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(base: str, api: subprocess.Popen, log_path: Path, what: str) -> None:
    """Poll `/_mgmt/ping` until the server answers 200, so the timed part starts against a
    ready server; stop with its log when it exits or a minute passes."""
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{base}/_mgmt/ping", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if api.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{what} did not start: {log_path.read_text()}")
        time.sleep(0.2)


def generate(count: int, seed: int) -> list[dict[str, Any]]:
    """Items over Europe, hourly through 2023, with queryable properties (deterministic)."""
    from documents import item

    rng = random.Random(seed)
    start = datetime(2023, 1, 1, tzinfo=UTC)
    items = []
    for index in range(count):
        collection = COLLECTIONS[index % 2]
        items.append(
            item(
                f"{collection}-{index:06d}",
                collection,
                corner=(rng.uniform(-10, 29), rng.uniform(35, 69)),
                size=0.5,
                when=start + timedelta(hours=index * 8760 // count),
                properties={
                    "eo:cloud_cover": round(rng.uniform(0, 100), 2),
                    "platform": rng.choice(["sentinel-2a", "sentinel-2b", "landsat-9"]),
                    "gsd": rng.choice([10, 20, 30]),
                },
            )
        )
    return items


async def load(url: Any, items: list[dict[str, Any]]) -> None:
    from documents import collection as soak_collection

    from catalogue.database import Database, create_engine
    from catalogue.repositories import collections as collection_repo
    from catalogue.repositories.items import upsert_items
    from catalogue.serializers import item_to_row
    from catalogue.settings import DatabasePoolSettings, Settings

    settings = Settings(pool=DatabasePoolSettings(statement_timeout_ms=600_000))
    database = Database(create_engine(settings, url))
    try:
        async with database.write() as conn:
            for collection in COLLECTIONS:
                keywords = ["soak", collection.split("-")[1]]
                document = soak_collection(collection, f"Soak {collection}", keywords)
                await collection_repo.upsert_collection(conn, document)
        for offset in range(0, len(items), 2000):
            rows = [item_to_row(item) for item in items[offset : offset + 2000]]
            async with database.write() as conn:
                await upsert_items(conn, rows)
        async with database.engine.connect() as raw:
            conn = await raw.execution_options(isolation_level="AUTOCOMMIT")
            await conn.exec_driver_sql("VACUUM ANALYZE items")
    finally:
        await database.dispose()


def requests_mix(rng: random.Random, ids: list[str]) -> tuple[str, str, dict[str, Any]]:
    """(name, method, httpx keyword arguments) for one request."""
    west, south = rng.uniform(-10, 25), rng.uniform(35, 65)
    bbox = f"{west:.2f},{south:.2f},{west + 4:.2f},{south + 4:.2f}"
    month = rng.randint(1, 12)
    period = f"2023-{month:02d}-01T00:00:00Z/2023-{month:02d}-28T00:00:00Z"
    cloud = rng.randint(5, 60)
    choice = rng.randrange(9)
    if choice == 0:
        return "collections_q", "GET", {"url": "/collections", "params": {"q": "radar,optical"}}
    if choice == 1:
        return (
            "bbox_datetime",
            "GET",
            {"url": "/search", "params": {"bbox": bbox, "datetime": period}},
        )
    if choice == 2:
        params = {"filter": f"eo:cloud_cover < {cloud} AND platform = 'sentinel-2a'", "limit": 20}
        return "filter_get", "GET", {"url": "/search", "params": params}
    if choice == 3:
        body = {
            "collections": [COLLECTIONS[0]],
            "filter": {"op": "<", "args": [{"property": "eo:cloud_cover"}, cloud]},
            "datetime": period,
        }
        return "filter_post", "POST", {"url": "/search", "json": body}
    if choice == 4:
        params = {"collections": COLLECTIONS[1], "sortby": "-eo:cloud_cover", "bbox": bbox}
        return "sortby", "GET", {"url": "/search", "params": params}
    if choice == 5:
        item_id = rng.choice(ids)
        collection = item_id.rsplit("-", 1)[0]
        return "item_get", "GET", {"url": f"/collections/{collection}/items/{item_id}"}
    if choice == 6:
        ring = [[west, south], [west + 3, south], [west + 3, south + 3], [west, south + 3]]
        geometry = {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}
        return "intersects", "POST", {"url": "/search", "json": {"intersects": geometry}}
    if choice == 7:
        return "collection_bbox", "GET", {"url": "/collections", "params": {"bbox": bbox}}
    return "paging", "GET", {"url": "/search", "params": {"limit": 50, "bbox": bbox}}


async def soak(base: str, duration: float, concurrency: int, ids: list[str], seed: int) -> dict:
    latencies: dict[str, list[float]] = {}
    errors: list[str] = []
    deadline = time.monotonic() + duration
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def client(number: int, http: httpx.AsyncClient) -> None:
        rng = random.Random(seed * 1000 + number)
        while time.monotonic() < deadline:
            name, method, kwargs = requests_mix(rng, ids)
            started = time.perf_counter()
            try:
                response = await http.request(method, **kwargs)
                if response.status_code == 200 and name == "paging":
                    nxt = [lk for lk in response.json()["links"] if lk["rel"] == "next"]
                    if nxt:
                        response = await http.get(nxt[0]["href"])
            except httpx.HTTPError as error:
                errors.append(f"{name}: {type(error).__name__}: {error}")
                continue
            if response.status_code != 200:
                errors.append(f"{name}: {response.status_code} {response.text[:200]}")
                continue
            latencies.setdefault(name, []).append(time.perf_counter() - started)

    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as http:
        started = time.perf_counter()
        await asyncio.gather(*(client(number, http) for number in range(concurrency)))
        elapsed = time.perf_counter() - started
    every = sorted(value for values in latencies.values() for value in values)

    def pct(values: list[float], q: float) -> float:
        return round(1000 * values[min(len(values) - 1, int(q * len(values)))], 1)

    return {
        "seconds": round(elapsed, 1),
        "requests": len(every) + len(errors),
        "errors": len(errors),
        "error_examples": errors[:10],
        "req_per_s": round((len(every) + len(errors)) / elapsed, 1),
        "p50_ms": pct(every, 0.50),
        "p95_ms": pct(every, 0.95),
        "p99_ms": pct(every, 0.99),
        "per_query": {
            name: {"n": len(values), "p50_ms": pct(sorted(values), 0.5)}
            for name, values in sorted(latencies.items())
        },
    }


def rss_mib(pid: int) -> float:
    process = psutil.Process(pid)
    total = process.memory_info().rss
    for child in process.children(recursive=True):
        try:
            total += child.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return round(total / 2**20, 1)


async def sample_rss(pid: int, every_s: float, samples: list[tuple[float, float]]) -> None:
    started = time.monotonic()
    while True:
        samples.append((round(time.monotonic() - started, 1), rss_mib(pid)))
        await asyncio.sleep(every_s)


async def measure(base: str, pid: int, args: argparse.Namespace, ids: list[str]) -> dict:
    # warm-up: a few seconds of the same mix, not counted (first plans, pool connections)
    await soak(base, 5, args.concurrency, ids, args.seed + 1)
    samples: list[tuple[float, float]] = []
    sampler = asyncio.create_task(sample_rss(pid, 1.0, samples))
    try:
        result = await soak(base, args.duration, args.concurrency, ids, args.seed)
    finally:
        sampler.cancel()
    rss = [value for _, value in samples]
    result["rss_mib"] = {
        "start": rss[0],
        "middle": rss[len(rss) // 2],
        "end": rss[-1],
        "max": max(rss),
        "samples": len(rss),
    }
    return result


def markdown(report: dict[str, Any]) -> str:
    r = report["result"]
    lines = [
        "# Soak: the STAC API under a bounded mixed load",
        "",
        f"Run {report['when']} on {report['machine']}; load average before the run "
        f"{report['load_before']} (the box is shared with other work).",
        "",
        f"Command: `{report['command']}`",
        "",
        f"{report['items']} generated items in 2 collections, `cubestac serve --workers "
        f"{report['workers']}`, {report['concurrency']} concurrent clients for "
        f"{report['duration']} s (after a 5 s warm-up), all on 127.0.0.1.",
        "",
        "| requests | errors | req/s | p50 ms | p95 ms | p99 ms |",
        "| --- | --- | --- | --- | --- | --- |",
        f"| {r['requests']} | {r['errors']} | {r['req_per_s']} | {r['p50_ms']} | "
        f"{r['p95_ms']} | {r['p99_ms']} |",
        "",
        "API resident memory (process and workers, MiB): "
        f"start {r['rss_mib']['start']}, middle {r['rss_mib']['middle']}, "
        f"end {r['rss_mib']['end']}, peak {r['rss_mib']['max']} "
        f"({r['rss_mib']['samples']} samples, 1 s apart).",
        "",
        "| query | requests | p50 ms |",
        "| --- | --- | --- |",
        *(f"| {name} | {q['n']} | {q['p50_ms']} |" for name, q in r["per_query"].items()),
    ]
    if r["error_examples"]:
        lines += ["", "Errors (first 10):", "", *(f"- `{e}`" for e in r["error_examples"])]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=60)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "soak.md")
    args = parser.parse_args()

    from catalogue.embedded import EmbeddedCluster
    from catalogue.schema import upgrade
    from catalogue.settings import EmbeddedDatabaseSettings

    work = Path(tempfile.mkdtemp(prefix="cubestac-soak-"))
    work.chmod(0o755)
    cluster = EmbeddedCluster(EmbeddedDatabaseSettings(data_dir=work / "cluster", port=free_port()))
    api: subprocess.Popen[bytes] | None = None
    try:
        url = cluster.start()
        upgrade(url)
        items = generate(args.items, args.seed)
        started = time.perf_counter()
        asyncio.run(load(url, items))
        log(f"loaded {len(items)} items in {time.perf_counter() - started:.1f} s")
        port = free_port()
        env = {**os.environ, "DATABASE_URL": url.render_as_string(hide_password=False)}
        env.pop("CUBESTAC_API_KEY", None)
        cubestac = str(Path(sys.executable).parent / "cubestac")
        command = [cubestac, "serve", "--host", "127.0.0.1", "--port", str(port),
                   "--workers", str(args.workers)]  # fmt: skip
        api = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=open(work / "api.log", "wb"),
            start_new_session=True,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        wait_until_up(base, api, work / "api.log", "the API")
        load_before = os.getloadavg()
        log(f"soak: {args.duration} s at concurrency {args.concurrency} against {base}")
        result = asyncio.run(measure(base, api.pid, args, [item["id"] for item in items]))
        report = {
            "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": f"{os.cpu_count()} CPUs, {round(psutil.virtual_memory().total / 2**30)} GiB",
            "load_before": " ".join(f"{value:.1f}" for value in load_before),
            "command": "python bench/soak.py " + " ".join(sys.argv[1:]),
            "items": args.items,
            "workers": args.workers,
            "concurrency": args.concurrency,
            "duration": args.duration,
            "result": result,
        }
        print(json.dumps(report, indent=2))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(markdown(report))
        log(f"wrote {args.out}")
        return 0 if result["errors"] == 0 else 1
    finally:
        if api is not None and api.poll() is None:
            os.killpg(api.pid, signal.SIGTERM)
            try:
                api.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(api.pid, signal.SIGKILL)
        cluster.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
