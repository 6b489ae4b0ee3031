#!/usr/bin/env python3
"""`POST /collections/{id}/bulk_items` of 1,000 items: how long the answer takes (issue 16's
target: within 1 s), over HTTP, into a catalogue that already holds items.

Steps (everything on 127.0.0.1, everything started is stopped in `finally`):

1. a private embedded PostGIS in a temporary folder, migrated (with 0011's per-day count
   triggers when the code has them); PRELOAD generated items in two collections
   (`bench/soak.py`'s generator and loader), VACUUM ANALYZE;
2. `cubestac serve` (one worker) with a write key;
3. REPEAT rounds, one request at a time, of three requests of BATCH items each: new items
   (`method: insert`), the same items changed (`method: upsert`, every item rewritten),
   and the same again unchanged (`upsert`: nothing rewritten);
4. p50 / p95 / max per kind, and the 1-minute load average, as markdown on stdout.

`python bench/bulk_items.py --preload 50000 --repeat 20`
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

import soak  # noqa: E402 - the generator and loader of the soak benchmark, beside this file

KEY = "bench-bulk-items-key"


def batch(round_: int, size: int, changed: bool) -> dict[str, dict[str, Any]]:
    """`size` new items of round `round_` in the first soak collection, spread over a year
    (so a batch touches many days); `changed` gives them another cloud cover."""
    from documents import item

    start = datetime(2024, 1, 1, tzinfo=UTC)
    collection = soak.COLLECTIONS[0]
    items = {}
    for index in range(size):
        item_id = f"bulk-{round_:03d}-{index:05d}"
        items[item_id] = item(
            item_id,
            collection,
            corner=(-10 + index % 39, 35 + index % 34),
            size=0.5,
            when=start + timedelta(hours=index * 8760 // size),
            properties={"eo:cloud_cover": 50.0 if changed else 10.0, "platform": "sentinel-2a"},
        )
    return items


def measure(base: str, repeat: int, size: int) -> dict[str, list[float]]:
    kinds = ("insert (new)", "upsert (changed)", "upsert (same)")
    times: dict[str, list[float]] = {kind: [] for kind in kinds}
    path = f"{base}/collections/{soak.COLLECTIONS[0]}/bulk_items"
    headers = {"Authorization": f"Bearer {KEY}"}
    with httpx.Client(headers=headers, timeout=120) as http:
        for round_ in range(repeat + 2):  # 2 warm-up rounds
            new, changed = batch(round_, size, False), batch(round_, size, True)
            bodies = {
                "insert (new)": {"items": new, "method": "insert"},
                "upsert (changed)": {"items": changed, "method": "upsert"},
                "upsert (same)": {"items": changed, "method": "upsert"},
            }
            for kind, body in bodies.items():
                started = time.perf_counter()
                response = http.post(path, json=body)
                elapsed = (time.perf_counter() - started) * 1000
                response.raise_for_status()
                if round_ >= 2:
                    times[kind].append(elapsed)
    return times


def report(times: dict[str, list[float]], args: argparse.Namespace, load: float) -> str:
    lines = [
        f"`POST bulk_items` of {args.batch:,} items into a catalogue of {args.preload:,}, over "
        f"HTTP, one worker, one request at a time, {args.repeat} rounds; ms "
        f"(1-minute load average at the end: {load:.1f}).",
        "",
        "| request | p50 | p95 | max |",
        "| --- | ---: | ---: | ---: |",
    ]
    for kind, values in times.items():
        p95 = statistics.quantiles(values, n=20, method="inclusive")[-1]
        lines.append(
            f"| {kind} | {statistics.median(values):.0f} | {p95:.0f} | {max(values):.0f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preload", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    from catalogue.embedded import EmbeddedCluster
    from catalogue.schema import upgrade
    from catalogue.settings import EmbeddedDatabaseSettings

    work = Path(tempfile.mkdtemp(prefix="cubestac-bulk-"))
    work.chmod(0o755)
    cluster = EmbeddedCluster(
        EmbeddedDatabaseSettings(data_dir=work / "cluster", port=soak.free_port())
    )
    api: subprocess.Popen[bytes] | None = None
    try:
        url = cluster.start()
        upgrade(url)
        started = time.perf_counter()
        asyncio.run(soak.load(url, soak.generate(args.preload, args.seed)))
        soak.log(f"loaded {args.preload} items in {time.perf_counter() - started:.1f} s")
        port = soak.free_port()
        env = {
            **os.environ,
            "DATABASE_URL": url.render_as_string(hide_password=False),
            "CUBESTAC_API_KEY": KEY,
        }
        cubestac = str(Path(sys.executable).parent / "cubestac")
        command = [cubestac, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
        with open(work / "api.log", "wb") as api_log:
            api = subprocess.Popen(
                command, env=env, stdout=subprocess.DEVNULL, stderr=api_log, start_new_session=True
            )
        base = f"http://127.0.0.1:{port}"
        soak.wait_until_up(base, api, work / "api.log", "the API")
        times = measure(base, args.repeat, args.batch)
        print(report(times, args, os.getloadavg()[0]))
        return 0
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
