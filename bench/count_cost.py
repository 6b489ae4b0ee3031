#!/usr/bin/env python3
"""What `numberMatched` costs a search page: latency with the exact count (the default
budget, CUBESTAC_API__COUNT_TIMEOUT_MS=100) against the same requests without it (0).

Steps (everything started is stopped in `finally`):

1. a private embedded PostGIS in a temporary folder, migrated; N generated items in two
   collections (`bench/soak.py`'s generator and loader), VACUUM ANALYZE;
2. two API apps on that database, in-process (httpx's ASGI transport: API + database time,
   no HTTP), one counting and one never counting;
3. per query, REPEAT rounds; each round draws fresh values (bbox, month, cloud cover) and
   sends the same request to both apps in turn, one request at a time; the memory of
   searches whose count ran over the budget is emptied before each request, so every
   counted request pays its count (the worst case: a repeated or paged search pays once);
4. p50 / p95 per query and mode, and how often `numberMatched` was given; printed as
   markdown on stdout.

`python bench/count_cost.py --items 5000 --repeat 40`

Against a catalogue that is already loaded (e.g. the core-search benchmark's cluster of
`gen_items.py` items), skip step 1: `--database-url URL --collection sentinel-2-l2a
--year 2023` (the collection of the sorted query, the year of the bbox + month query).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

import soak  # noqa: E402 - the generator and loader of the soak benchmark, beside this file

Request = tuple[str, str, dict[str, Any]]  # method, path, httpx keyword arguments
# what the queries ask for; --collection / --year replace them for another data set
TARGET = {"collections": soak.COLLECTIONS, "year": 2023}


def _bbox_month(rng: random.Random) -> Request:
    west, south = rng.uniform(-10, 25), rng.uniform(35, 65)
    month, year = rng.randint(1, 12), TARGET["year"]
    params = {
        "bbox": f"{west:.2f},{south:.2f},{west + 8:.2f},{south + 8:.2f}",
        "datetime": f"{year}-{month:02d}-01T00:00:00Z/{year}-{month:02d}-28T00:00:00Z",
    }
    return "GET", "/search", {"params": params}


def _filter(rng: random.Random) -> Request:
    body = {
        "filter-lang": "cql2-json",
        "filter": {
            "op": "and",
            "args": [
                {"op": "<", "args": [{"property": "eo:cloud_cover"}, rng.randint(20, 80)]},
                {"op": "=", "args": [{"property": "platform"}, "sentinel-2a"]},
            ],
        },
    }
    return "POST", "/search", {"json": body}


def _sorted(rng: random.Random) -> Request:
    params = {"collections": rng.choice(TARGET["collections"]), "sortby": "-eo:cloud_cover"}
    return "GET", "/search", {"params": params}


def _everything(rng: random.Random) -> Request:
    return "GET", "/search", {"params": {"limit": rng.choice([10, 11, 12])}}


QUERIES: dict[str, Callable[[random.Random], Request]] = {
    "all items (first page)": _everything,
    "bbox 8x8 deg + month": _bbox_month,
    "filter (POST cql2-json)": _filter,
    "one collection, sortby -eo:cloud_cover": _sorted,
}


async def _timed(client: httpx.AsyncClient, request: Request) -> tuple[float, bool]:
    method, path, kwargs = request
    started = time.perf_counter()
    response = await client.request(method, path, **kwargs)
    elapsed = (time.perf_counter() - started) * 1000
    response.raise_for_status()
    return elapsed, "numberMatched" in response.json()


async def measure(
    url: Any, repeat: int, seed: int, only: list[str] | None = None
) -> dict[str, dict[str, Any]]:
    from api import create_app
    from api.state import state_of
    from catalogue.settings import ApiSettings, Settings

    settings = Settings(database_url=url.render_as_string(hide_password=False))
    budgets = {"count 100 ms": 100, "no count (0)": 0}
    apps = {
        name: create_app(settings.model_copy(update={"api": ApiSettings(count_timeout_ms=ms)}))
        for name, ms in budgets.items()
    }
    results: dict[str, dict[str, Any]] = {}
    clients: dict[str, httpx.AsyncClient] = {}
    async with AsyncExitStack() as stack:
        for name, app in apps.items():
            await stack.enter_async_context(app.router.lifespan_context(app))
            transport = httpx.ASGITransport(app=app)
            clients[name] = await stack.enter_async_context(
                httpx.AsyncClient(transport=transport, base_url="http://bench")
            )
        rng = random.Random(seed)
        for query, build in QUERIES.items():
            if only and not any(word in query for word in only):
                continue
            times: dict[str, list[float]] = {name: [] for name in apps}
            counted: dict[str, int] = dict.fromkeys(apps, 0)
            for round_ in range(repeat + 3):  # 3 warm-up rounds
                request = build(rng)
                for name, client in clients.items():
                    state_of(apps[name]).search.slow.clear()
                    elapsed, has_count = await _timed(client, request)
                    if round_ >= 3:
                        times[name].append(elapsed)
                        counted[name] += has_count
            results[query] = {
                name: {
                    "p50": statistics.median(values),
                    "p95": statistics.quantiles(values, n=20)[-1],
                    "counted": counted[name],
                    "n": len(values),
                }
                for name, values in times.items()
            }
    return results


def report(results: dict[str, dict[str, Any]], items: int | str) -> str:
    lines = [
        f"First-page latency at {items} items, in-process (API + database, no HTTP), one "
        "request at a time; ms.",
        "",
        "| query | p50 no count | p50 count | p95 no count | p95 count | numberMatched given |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for query, modes in results.items():
        off, on = modes["no count (0)"], modes["count 100 ms"]
        lines.append(
            f"| {query} | {off['p50']:.2f} | {on['p50']:.2f} | {off['p95']:.2f} | "
            f"{on['p95']:.2f} | {on['counted']}/{on['n']} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--database-url", help="measure this loaded catalogue (no load)")
    parser.add_argument("--collection", action="append", help="collection(s) of the queries")
    parser.add_argument("--year", type=int, default=2023, help="year of the bbox + month query")
    parser.add_argument(
        "--only",
        action="append",
        help="measure only the queries whose name holds this word (e.g. bbox), repeatable",
    )
    args = parser.parse_args()
    TARGET["year"] = args.year
    if args.collection:
        TARGET["collections"] = tuple(args.collection)
    if args.database_url:
        from sqlalchemy import make_url

        url = make_url(args.database_url)
        before = " ".join(f"{value:.1f}" for value in os.getloadavg())
        results = asyncio.run(measure(url, args.repeat, args.seed, args.only))
        after = " ".join(f"{value:.1f}" for value in os.getloadavg())
        print(report(results, "the loaded catalogue's"))
        print(f"Load average before / after: {before} / {after}.")
        return 0

    from catalogue.embedded import EmbeddedCluster
    from catalogue.schema import upgrade
    from catalogue.settings import EmbeddedDatabaseSettings

    work = Path(tempfile.mkdtemp(prefix="cubestac-count-"))
    work.chmod(0o755)
    port = soak.free_port()
    cluster = EmbeddedCluster(EmbeddedDatabaseSettings(data_dir=work / "cluster", port=port))
    try:
        url = cluster.start()
        upgrade(url)
        started = time.perf_counter()
        asyncio.run(soak.load(url, soak.generate(args.items, args.seed)))
        soak.log(f"loaded {args.items} items in {time.perf_counter() - started:.1f} s")
        print(report(asyncio.run(measure(url, args.repeat, args.seed)), args.items))
    finally:
        cluster.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
