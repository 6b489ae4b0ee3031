#!/usr/bin/env python3
"""What the per-day count triggers (migration 0011) cost a bulk write, measured inside
PostgreSQL: `EXPLAIN (ANALYZE)` of the statements the harvest and `bulk_items` run (one
`INSERT ... SELECT` from a staging table of BATCH items, then the same rows rewritten by
`INSERT ... ON CONFLICT DO UPDATE`), whose plan reports each trigger's time apart from the
statement's. Both are wall times of the same backend, so their ratio hardly moves with
foreign load, unlike items/s.

Steps (everything started is stopped in `finally`): a private embedded PostGIS in a
temporary folder, migrated; PRELOAD generated items (`bench/soak.py`'s generator and
loader); then ROUNDS batches of BATCH new items spread over a year (so a batch touches
many days), each inserted then updated under EXPLAIN ANALYZE. Prints markdown.

`python bench/count_triggers.py --preload 20000 --rounds 10`
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import orjson

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

import soak  # noqa: E402 - the generator and loader of the soak benchmark, beside this file

STAGE = """
CREATE TEMP TABLE stage ON COMMIT DROP AS
SELECT collection, id || :suffix AS id, geometry,
       datetime + make_interval(hours => (row_number() OVER ())::int * 5) AS datetime,
       start_datetime + make_interval(hours => (row_number() OVER ())::int * 5) AS start_datetime,
       end_datetime + make_interval(hours => (row_number() OVER ())::int * 5) AS end_datetime,
       properties, content
FROM items ORDER BY id LIMIT :batch
"""
COLUMNS = "collection, id, geometry, datetime, start_datetime, end_datetime, properties, content"
INSERT = f"INSERT INTO items ({COLUMNS}) SELECT {COLUMNS} FROM stage"
UPSERT = (
    f"INSERT INTO items ({COLUMNS}) SELECT collection, id, geometry, "
    "datetime + interval '3 days', start_datetime + interval '3 days', "
    "end_datetime + interval '3 days', properties, content FROM stage "
    "ON CONFLICT (collection, id) DO UPDATE SET datetime = excluded.datetime, "
    "start_datetime = excluded.start_datetime, end_datetime = excluded.end_datetime"
)


def _times(plan: Any) -> tuple[float, float]:
    """The statement's execution time and its triggers' (ms)."""
    if isinstance(plan, str):
        plan = orjson.loads(plan)
    top = plan[0]
    # only ours: the foreign key's RI triggers (one call per row) are listed too
    triggers = sum(t["Time"] for t in top.get("Triggers", []) if "count" in t["Trigger Name"])
    return top["Execution Time"], triggers


async def measure(url: Any, rounds: int, batch: int) -> dict[str, list[tuple[float, float]]]:
    from sqlalchemy import text

    from catalogue.database import create_engine
    from catalogue.settings import DatabasePoolSettings, Settings

    settings = Settings(pool=DatabasePoolSettings(statement_timeout_ms=600_000))
    engine = create_engine(settings, url)
    results: dict[str, list[tuple[float, float]]] = {
        "insert": [],
        "upsert (moves every item)": [],
        "insert, triggers off": [],
        "upsert, triggers off": [],
    }
    statements = (INSERT, UPSERT, INSERT, UPSERT)
    try:
        for round_ in range(rounds + 1):  # one warm-up round
            for off in (False, True):
                async with engine.begin() as conn:
                    if off:  # no user trigger fires (the replication role: superuser only)
                        await conn.execute(text("SET LOCAL session_replication_role = replica"))
                    suffix = f"-r{round_}{'off' if off else 'on'}"
                    await conn.execute(text(STAGE), {"suffix": suffix, "batch": batch})
                    for kind, statement in list(zip(results, statements, strict=True)):
                        if off != kind.endswith("triggers off"):
                            continue
                        explain = f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}"
                        plan = (await conn.execute(text(explain))).scalar_one()
                        if round_:
                            results[kind].append(_times(plan))
    finally:
        await engine.dispose()
    return results


def report(results: dict[str, list[tuple[float, float]]], args: argparse.Namespace) -> str:
    lines = [
        f"{args.rounds} batches of {args.batch:,} items into a catalogue of {args.preload:,}+, "
        "EXPLAIN ANALYZE inside PostgreSQL; medians, ms:",
        "",
        "| statement | whole statement | of which count triggers | share |",
        "| --- | ---: | ---: | ---: |",
    ]
    for kind, pairs in results.items():
        whole = statistics.median(p[0] for p in pairs)
        triggers = statistics.median(p[1] for p in pairs)
        lines.append(f"| {kind} | {whole:.1f} | {triggers:.1f} | {triggers / whole:.1%} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preload", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    from catalogue.embedded import EmbeddedCluster
    from catalogue.schema import upgrade
    from catalogue.settings import EmbeddedDatabaseSettings

    work = Path(tempfile.mkdtemp(prefix="cubestac-triggers-"))
    work.chmod(0o755)
    cluster = EmbeddedCluster(
        EmbeddedDatabaseSettings(data_dir=work / "cluster", port=soak.free_port())
    )
    try:
        url = cluster.start()
        upgrade(url)
        asyncio.run(soak.load(url, soak.generate(args.preload, args.seed)))
        print(report(asyncio.run(measure(url, args.rounds, args.batch)), args))
        return 0
    finally:
        cluster.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
