#!/usr/bin/env python3
"""What finding cubes costs: `/search` with cube-property filters at N items, with and
without migration 0010's indexes, and what those indexes cost a bulk write.

Steps (everything started is stopped in `finally`):

1. a private embedded PostGIS, migrated; N generated items (`bench/soak.py`'s generator
   and loader) of which every 100th is a cube item (variables out of 50 names, units out
   of 7, a time step P1Y/P1M/P1D, a resolution 10-1000 m), VACUUM ANALYZE;
2. the API app in-process (httpx's ASGI transport: API + database time, no HTTP); per
   filter, REPEAT rounds after 3 warm-up rounds of `GET /search?filter=...&limit=100`;
   median and p95 in ms;
3. bulk writes of WRITE fresh non-cube items (the repository's upsert, 2,000 per
   statement), alternately at head and at revision 0009 (`alembic downgrade`: no cube
   facts, no indexes), ROUNDS times each; then the filters at 0009's state but with the
   function back (the row-by-row reading: the indexes dropped).

`python bench/cube_filters.py --items 100000 --repeat 15`
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

FILTERS = [
    "A_CONTAINS(cube:variable_names, ('var07'))",
    "A_CONTAINS(cube:variable_names, ('var07', 'var08'))",
    "A_OVERLAPS(cube:variable_units, ('unit3', 'unit4'))",
    "A_CONTAINS(cube:dimension_names, ('member'))",
    "cube:time_step = 'P1D'",
    "cube:resolution < 50",
    "A_CONTAINS(cube:variable_names, ('var07')) AND cube:resolution <= 100",
]
STEPS = ("P1Y", "P1M", "P1D")


def cubify(item: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """The item as a cube item (cubes/to_item.py's shape for the datacube fields)."""
    resolution = float(rng.choice([10, 20, 30, 60, 100, 250, 500, 1000]))
    names = rng.sample(range(50), rng.randint(1, 4))
    dimensions: dict[str, Any] = {
        "x": {"type": "spatial", "axis": "x", "step": resolution, "reference_system": 3035,
              "extent": [0.0, 1e5]},
        "y": {"type": "spatial", "axis": "y", "step": -resolution, "reference_system": 3035,
              "extent": [0.0, 1e5]},
        "time": {"type": "temporal", "step": rng.choice(STEPS),
                 "extent": ["2020-01-01T00:00:00Z", "2023-01-01T00:00:00Z"]},
    }  # fmt: skip
    if rng.random() < 0.2:
        dimensions["member"] = {"type": "other", "values": [1, 2, 3]}
    variables = {
        f"var{name:02d}": {"dimensions": list(dimensions), "type": "data",
                           "unit": f"unit{name % 7}", "data_type": "float32"}
        for name in names
    }  # fmt: skip
    item["properties"] |= {"cube:dimensions": dimensions, "cube:variables": variables}
    return item


def catalogue(count: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    items = soak.generate(count, seed)
    return [cubify(item, rng) if index % 100 == 0 else item for index, item in enumerate(items)]


async def measure(url: Any, repeat: int) -> dict[str, dict[str, float]]:
    from api import create_app
    from catalogue.settings import Settings

    app = create_app(Settings(database_url=url.render_as_string(hide_password=False)))
    results: dict[str, dict[str, float]] = {}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            for text in FILTERS:
                times = []
                for round_ in range(repeat + 3):
                    started = time.perf_counter()
                    response = await client.get("/search", params={"filter": text, "limit": 100})
                    elapsed = (time.perf_counter() - started) * 1000
                    response.raise_for_status()
                    if round_ >= 3:
                        times.append(elapsed)
                results[text] = {
                    "p50": statistics.median(times),
                    "p95": statistics.quantiles(times, n=20)[-1],
                    "returned": response.json()["numberReturned"],
                }
    return results


async def sql(url: Any, statement: str) -> Any:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            result = await conn.execute(text(statement))
            return result.scalar() if result.returns_rows else None
    finally:
        await engine.dispose()


async def timed_write(url: Any, items: list[dict[str, Any]]) -> float:
    """Seconds to upsert `items` into the first soak collection, 2,000 per statement."""
    from catalogue.database import Database, create_engine
    from catalogue.repositories.items import upsert_items
    from catalogue.serializers import item_to_row
    from catalogue.settings import DatabasePoolSettings, Settings

    settings = Settings(pool=DatabasePoolSettings(statement_timeout_ms=600_000))
    database = Database(create_engine(settings, url))
    try:
        rows = [item_to_row(item) for item in items]
        started = time.perf_counter()
        for offset in range(0, len(rows), 2000):
            async with database.write() as conn:
                await upsert_items(conn, rows[offset : offset + 2000])
        return time.perf_counter() - started
    finally:
        await database.dispose()


def writes(url: Any, count: int, rounds: int) -> dict[str, list[float]]:
    """Alternating timed writes at head and at 0009, ending at head."""
    from alembic import command

    from catalogue.schema import alembic_config, upgrade

    seconds: dict[str, list[float]] = {"head": [], "0009": []}
    for round_ in range(rounds):
        for state in ("head", "0009"):
            if state == "0009":
                command.downgrade(alembic_config(url), "0009")
            else:
                upgrade(url)
            batch = fresh(count, round_ * 2 + len(seconds[state]), f"w{round_}{state}")
            seconds[state].append(asyncio.run(timed_write(url, batch)))
    upgrade(url)
    return seconds


def fresh(count: int, seed: int, prefix: str) -> list[dict[str, Any]]:
    items = soak.generate(count, seed)
    for item in items:
        item["id"] = f"{prefix}-{item['id']}"
    return items


def table(title: str, results: dict[str, dict[str, float]]) -> list[str]:
    lines = [
        f"**{title}**",
        "",
        "| filter | p50 ms | p95 ms | returned |",
        "| --- | --- | --- | --- |",
    ]
    for text, figures in results.items():
        p50, p95, returned = (figures[key] for key in ("p50", "p95", "returned"))
        lines.append(f"| `{text}` | {p50:.1f} | {p95:.1f} | {returned:.0f} |")
    return [*lines, ""]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--write", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    from catalogue.embedded import EmbeddedCluster
    from catalogue.schema import upgrade
    from catalogue.settings import EmbeddedDatabaseSettings

    work = Path(tempfile.mkdtemp(prefix="cubestac-cube-filters-"))
    work.chmod(0o755)
    cluster = EmbeddedCluster(
        EmbeddedDatabaseSettings(data_dir=work / "cluster", port=soak.free_port())
    )
    try:
        url = cluster.start()
        upgrade(url)
        asyncio.run(soak.load(url, catalogue(args.items, args.seed)))
        before = " ".join(f"{value:.1f}" for value in os.getloadavg())
        indexed = asyncio.run(measure(url, args.repeat))
        sizes = asyncio.run(
            sql(
                url,
                "SELECT pg_size_pretty(pg_relation_size('ix_items_cube_facts')) || ' + ' || "
                "pg_size_pretty(pg_relation_size('ix_items_cube_resolution'))",
            )
        )
        written = writes(url, args.write, args.rounds)
        for index in ("ix_items_cube_facts", "ix_items_cube_resolution"):
            asyncio.run(sql(url, f"DROP INDEX {index}"))
        asyncio.run(sql(url, "ANALYZE items"))
        plain = asyncio.run(measure(url, max(3, args.repeat // 3)))
        after = " ".join(f"{value:.1f}" for value in os.getloadavg())
        lines = [
            f"Cube filters at {args.items} items (1 % cube items), in-process, one request at "
            f"a time, `limit=100`. Load average before / after: {before} / {after}. "
            f"Index sizes (GIN facts + B-tree resolution): {sizes}.",
            "",
            *table("with migration 0010's indexes", indexed),
            *table("without them (row by row)", plain),
            f"Bulk writes of {args.write} non-cube items (upsert, 2,000 per statement), "
            "alternating, seconds per round: at head (cube facts indexed) "
            f"{', '.join(f'{v:.2f}' for v in written['head'])}; at 0009 (none) "
            f"{', '.join(f'{v:.2f}' for v in written['0009'])}.",
        ]
        print("\n".join(lines))
    finally:
        cluster.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
