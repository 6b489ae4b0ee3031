#!/usr/bin/env python3
"""What `/aggregate` costs: medians of the issue-16 queries at N generated items.

Steps (everything started is stopped in `finally`):

1. a private embedded PostGIS in a temporary folder, migrated; N generated items in two
   collections (`bench/soak.py`'s generator and loader: positions over Europe, hourly
   through 2023), VACUUM ANALYZE;
2. the API app on that database, in-process (httpx's ASGI transport: API + database time,
   no HTTP);
3. per query, REPEAT rounds after 3 warm-up rounds, one request at a time, fresh values
   (month, region) each round; median and p95 in ms, printed as markdown on stdout.

The issue's targets (for 10M items, to be measured there): `datetime_frequency` +
`collection_frequency` over one collection under 1 s; a month in a region under 100 ms.

`python bench/aggregate.py --items 100000 --repeat 20`

Against a catalogue that is already loaded (e.g. the core-search benchmark's cluster of
`gen_items.py` items), skip step 1: `--database-url URL --collection sentinel-2-l2a
--year 2023`.
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
from pathlib import Path
from typing import Any

import httpx

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

import soak  # noqa: E402 - the generator and loader of the soak benchmark, beside this file

Request = tuple[str, str, dict[str, Any]]  # method, path, httpx keyword arguments
TARGET = "datetime_frequency,collection_frequency"
# what the queries ask for; --collection / --year replace them for another data set
DATA = {"collection": soak.COLLECTIONS[0], "year": 2023}


def _one_collection(rng: random.Random) -> Request:
    params = {"aggregations": TARGET, "datetime_frequency_interval": rng.choice(["month", "day"])}
    return "GET", f"/collections/{DATA['collection']}/aggregate", {"params": params}


def _month_in_region(rng: random.Random) -> Request:
    month, year = rng.randint(1, 12), DATA["year"]
    west, south = rng.uniform(-10, 20), rng.uniform(35, 60)
    params = {
        "aggregations": TARGET,
        "datetime_frequency_interval": "day",
        "bbox": f"{west:.3f},{south:.3f},{west + 5:.3f},{south + 5:.3f}",
        "datetime": f"{year}-{month:02d}-01T00:00:00Z/{year}-{month:02d}-28T23:59:59Z",
    }
    return "GET", "/aggregate", {"params": params}


def _everything(rng: random.Random) -> Request:
    names = [
        "total_count",
        "datetime_min",
        "datetime_max",
        "datetime_frequency",
        "collection_frequency",
        "platform_frequency",
        "cloud_cover_frequency",
        "centroid_geohash_grid_frequency",
        "centroid_geotile_grid_frequency",
    ]
    body = {
        "aggregations": names,
        "centroid_geohash_grid_frequency_precision": rng.randint(2, 5),
        "centroid_geotile_grid_frequency_precision": rng.randint(3, 8),
    }
    return "POST", "/aggregate", {"json": body}


def _filtered(rng: random.Random) -> Request:
    body = {
        "aggregations": ["total_count", "platform_frequency", "cloud_cover_frequency"],
        "collections": [DATA["collection"]],
        "filter": {"op": "<", "args": [{"property": "eo:cloud_cover"}, rng.randint(5, 30)]},
    }
    return "POST", "/aggregate", {"json": body}


QUERIES = {
    "one collection: datetime_frequency + collection_frequency": _one_collection,
    "month in a 5x5 deg region: datetime_frequency (day) + collection_frequency": (
        _month_in_region
    ),
    "all items: 9 aggregations (geohash 2-5, geotile 3-8)": _everything,
    "one collection, cql2 cloud cover < x: 3 aggregations": _filtered,
}


async def measure(url: Any, repeat: int, seed: int) -> dict[str, dict[str, float]]:
    from api import create_app
    from catalogue.settings import Settings

    app = create_app(Settings(database_url=url.render_as_string(hide_password=False)))
    results: dict[str, dict[str, float]] = {}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            rng = random.Random(seed)
            for query, build in QUERIES.items():
                times: list[float] = []
                failed: list[float] = []  # an answer other than 200 (e.g. 504: over the
                for round_ in range(repeat + 3):  # statement timeout); 3 warm-up rounds
                    method, path, kwargs = build(rng)
                    started = time.perf_counter()
                    response = await client.request(method, path, **kwargs)
                    elapsed = (time.perf_counter() - started) * 1000
                    if response.status_code != 200:
                        failed.append(response.status_code)
                        if len(failed) >= 3:  # each costs the whole timeout: enough
                            break
                    elif round_ >= 3:
                        times.append(elapsed)
                results[query] = {
                    "p50": statistics.median(times) if times else float("nan"),
                    "p95": statistics.quantiles(times, n=20)[-1]
                    if len(times) > 1
                    else float("nan"),
                    "n": len(times),
                    "failed": len(failed),
                    "status": float(failed[0]) if failed else 200.0,
                }
    return results


def report(results: dict[str, dict[str, float]], items: int | str, load: str) -> str:
    lines = [
        f"`/aggregate` at {items} items, in-process (API + database, no HTTP), one request "
        f"at a time; ms. Load average before / after: {load}.",
        "",
        "| query | p50 | p95 | rounds | failed (status) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for query, figures in results.items():
        failed = f"{figures['failed']:.0f} ({figures['status']:.0f})" if figures["failed"] else "0"
        lines.append(
            f"| {query} | {figures['p50']:.1f} | {figures['p95']:.1f} | {figures['n']:.0f} | "
            f"{failed} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--database-url", help="measure this loaded catalogue (no load)")
    parser.add_argument("--collection", default=DATA["collection"], help="the one collection")
    parser.add_argument("--year", type=int, default=2023, help="year of the month queries")
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        help="leave out queries whose name starts with this (e.g. 'all items')",
    )
    args = parser.parse_args()
    DATA.update(collection=args.collection, year=args.year)
    for prefix in args.skip:
        for name in [name for name in QUERIES if name.startswith(prefix)]:
            del QUERIES[name]
    if args.database_url:
        from sqlalchemy import make_url

        before = " ".join(f"{value:.1f}" for value in os.getloadavg())
        results = asyncio.run(measure(make_url(args.database_url), args.repeat, args.seed))
        after = " ".join(f"{value:.1f}" for value in os.getloadavg())
        print(report(results, "the loaded catalogue's", f"{before} / {after}"))
        return 0

    from catalogue.embedded import EmbeddedCluster
    from catalogue.schema import upgrade
    from catalogue.settings import EmbeddedDatabaseSettings

    work = Path(tempfile.mkdtemp(prefix="cubestac-aggregate-"))
    work.chmod(0o755)
    port = soak.free_port()
    cluster = EmbeddedCluster(EmbeddedDatabaseSettings(data_dir=work / "cluster", port=port))
    try:
        url = cluster.start()
        upgrade(url)
        started = time.perf_counter()
        asyncio.run(soak.load(url, soak.generate(args.items, args.seed)))
        soak.log(f"loaded {args.items} items in {time.perf_counter() - started:.1f} s")
        before = " ".join(f"{value:.1f}" for value in os.getloadavg())
        results = asyncio.run(measure(url, args.repeat, args.seed))
        after = " ".join(f"{value:.1f}" for value in os.getloadavg())
        print(report(results, args.items, f"{before} / {after}"))
    finally:
        cluster.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
