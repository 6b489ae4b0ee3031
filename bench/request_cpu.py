#!/usr/bin/env python3
"""In-process CPU per search request: the API's (and httpx's) Python time, not PostgreSQL's.

Requests/s on a shared 2-core box move with whatever else runs; the CPU time our process
spends per request moves much less, and it is what a change to the search path changes.
This starts the cluster `core_search.py` loaded (kept in WORK/ours/cluster), builds the app
in this process (`create_app`, httpx's ASGI transport: no HTTP, no uvicorn) and sends the
harness's loadgen requests (the same variants, in turn) one at a time, timing
`time.process_time()` (this process only: the database's CPU is its own processes').

    PYTHONPATH=$PWD .venv/bin/python bench/request_cpu.py \
        --work-dir /work/benchwork-ours --data-dir /work/benchwork-ours/data100k

Prints per query the median and the least over `--repeat` rounds of CPU ms per request
(on a busy box the least is the steadier figure), the median wall ms, and the Python
function calls per request (one more round under cProfile): a count that does not depend
on the box at all, so two versions of the code compare exactly on it.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
QUERIES = (
    "a_simple_get,a_simple_post,b_bbox_month_get,d_filter_get,d_filter_post,e_sortby_get,"
    "e_sortby_post,h_fields_get,i_ids20_post"
)


async def _round(client: Any, variants: list[Any], requests: int) -> tuple[float, float]:
    """CPU and wall seconds of `requests` requests, cycling through the variants."""
    cpu, wall = time.process_time(), time.perf_counter()
    for index in range(requests):
        req = variants[index % len(variants)]
        if req.method == "GET":
            response = await client.get(req.path, params=req.params)
        else:
            response = await client.post(req.path, json=req.body)
        response.raise_for_status()
    return time.process_time() - cpu, time.perf_counter() - wall


async def _calls(client: Any, variants: list[Any], requests: int) -> int:
    """Python function calls per request (cProfile's count, the client's included)."""
    profile = cProfile.Profile()
    profile.enable()
    await _round(client, variants, requests)
    profile.disable()
    return round(pstats.Stats(profile).total_calls / requests)  # type: ignore[attr-defined]  # set by Stats, not declared


async def measure(url: str, queries: list[Any], requests: int, repeat: int) -> dict[str, Any]:
    import httpx

    from api import create_app
    from catalogue.settings import Settings

    app = create_app(Settings(database_url=url))
    results: dict[str, Any] = {}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            for query in queries:
                await _round(client, query.variants, max(requests // 5, 5))  # warm-up
                rounds = [await _round(client, query.variants, requests) for _ in range(repeat)]
                cpu = [c / requests * 1e3 for c, _ in rounds]
                results[query.name] = {
                    "cpu_ms": round(statistics.median(cpu), 3),
                    "cpu_ms_least": round(min(cpu), 3),
                    "wall_ms": round(statistics.median(w for _, w in rounds) / requests * 1e3, 3),
                    "calls": await _calls(client, query.variants, requests),
                }
                print(f"{query.name:18} {results[query.name]}", flush=True)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work-dir", type=Path, default=Path("/work/benchwork-ours"))
    parser.add_argument("--data-dir", type=Path, required=True, help="its manifest.json")
    parser.add_argument("--harness", type=Path, default=REPO.parent / "shared/bench/pgstac")
    parser.add_argument("--queries", default=QUERIES)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None, help="also write the figures as JSON")
    parser.add_argument(
        "--database-url",
        default=None,
        help="a running catalogue instead of WORK's cluster (two versions measured at once)",
    )
    args = parser.parse_args()
    sys.path.insert(0, str(args.harness))
    import loadgen  # the harness's request builders
    from search_common import free_port  # a sibling module (bench/ is on sys.path)

    from catalogue.embedded import EmbeddedCluster
    from catalogue.schema import upgrade
    from catalogue.settings import EmbeddedDatabaseSettings

    manifest = json.loads((args.data_dir / "manifest.json").read_text())
    wanted = args.queries.split(",")
    queries = [query for query in loadgen.build_queries(manifest) if query.name in wanted]
    if args.database_url is not None:
        results = asyncio.run(measure(args.database_url, queries, args.requests, args.repeat))
    else:
        cluster = EmbeddedCluster(
            EmbeddedDatabaseSettings(data_dir=args.work_dir / "ours" / "cluster", port=free_port())
        )
        url = cluster.start()
        try:
            upgrade(url)
            dsn = url.render_as_string(hide_password=False)
            results = asyncio.run(measure(dsn, queries, args.requests, args.repeat))
        finally:
            cluster.stop()
    if args.out is not None:
        args.out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
