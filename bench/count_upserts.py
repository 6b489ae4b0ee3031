#!/usr/bin/env python3
"""Ways of applying one bulk write's per-day count deltas to `item_day_counts`: the same
delta (the (collection, day) counts of 2,000 generated items, about 1,300 rows) applied to
four copies of the table, ROUNDS times, in turn, under EXPLAIN ANALYZE; median and mean of
the execution times (ms). a: INSERT ... ON CONFLICT DO UPDATE (what the triggers do);
b: UPDATE ... FROM then INSERT of the missing keys; c, d: the same at fillfactor 50 (the
updated row stays on its page: HOT). Behind migration 0012.

`python bench/count_upserts.py 30`
"""

from __future__ import annotations

import asyncio
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

import count_triggers as ct  # noqa: E402 - beside this file
import soak  # noqa: E402
from sqlalchemy import text  # noqa: E402

from catalogue.database import create_engine  # noqa: E402
from catalogue.embedded import EmbeddedCluster  # noqa: E402
from catalogue.schema import upgrade  # noqa: E402
from catalogue.settings import DatabasePoolSettings, EmbeddedDatabaseSettings, Settings  # noqa: E402

DAY = "(datetime AT TIME ZONE 'UTC')::date"
SETUP = [
    "CREATE TABLE t_a (collection varchar NOT NULL, day date NOT NULL, n bigint NOT NULL, "
    "odd bigint NOT NULL DEFAULT 0, PRIMARY KEY (collection, day))",
    "CREATE TABLE t_b (LIKE t_a INCLUDING ALL)",
    "CREATE TABLE t_c (LIKE t_a INCLUDING ALL) WITH (fillfactor = 50)",
    "CREATE TABLE t_d (LIKE t_a INCLUDING ALL) WITH (fillfactor = 50)",
]
DELTA = (
    "CREATE TEMP TABLE d ON COMMIT DROP AS SELECT collection, "
    f"{DAY} AS day, count(*) AS n, 0::bigint AS odd FROM stage GROUP BY 1, 2"
)
ADD = "DO UPDATE SET n = c.n + excluded.n, odd = c.odd + excluded.odd"


def on_conflict(t: str) -> str:
    return (
        f"INSERT INTO {t} AS c (collection, day, n, odd) SELECT * FROM d ORDER BY 1, 2 "
        f"ON CONFLICT (collection, day) {ADD}"
    )


def update_then_insert(t: str) -> str:
    return (
        f"WITH u AS (UPDATE {t} c SET n = c.n + d.n, odd = c.odd + d.odd FROM d "
        "WHERE c.collection = d.collection AND c.day = d.day RETURNING c.collection, c.day) "
        f"INSERT INTO {t} AS c (collection, day, n, odd) SELECT * FROM d WHERE NOT EXISTS "
        "(SELECT FROM u WHERE u.collection = d.collection AND u.day = d.day) ORDER BY 1, 2 "
        f"ON CONFLICT (collection, day) {ADD}"
    )


VARIANTS = {
    "a: on conflict": on_conflict("t_a"),
    "b: update then insert": update_then_insert("t_b"),
    "c: on conflict, ff50": on_conflict("t_c"),
    "d: update then insert, ff50": update_then_insert("t_d"),
}


async def run(url: Any, rounds: int) -> None:
    e = create_engine(Settings(pool=DatabasePoolSettings(statement_timeout_ms=600000)), url)
    async with e.begin() as conn:
        for s in SETUP:
            await conn.execute(text(s))
    res: dict[str, list[float]] = {k: [] for k in VARIANTS}
    for r in range(rounds):
        async with e.begin() as conn:
            await conn.execute(text(ct.STAGE), {"suffix": f"-x{r}", "batch": 2000})
            await conn.execute(text(DELTA))
            await conn.execute(text("ANALYZE d"))
            names = list(VARIANTS) if r % 2 else list(reversed(VARIANTS))
            for k in names:
                plan = (
                    await conn.execute(text("EXPLAIN (ANALYZE, FORMAT JSON) " + VARIANTS[k]))
                ).scalar_one()
                plan = json.loads(plan) if isinstance(plan, str) else plan
                if r >= 2:
                    res[k].append(plan[0]["Execution Time"])
            nd = (await conn.execute(text("SELECT count(*) FROM d"))).scalar_one()
    print("| variant | median ms | mean ms | delta rows |\n| --- | ---: | ---: | ---: |")
    for k, v in res.items():
        median, mean = statistics.median(v), statistics.mean(v)
        print(f"| {k} | {median:.1f} | {mean:.1f} | {nd} |")
    await e.dispose()


def main() -> int:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    work = Path(tempfile.mkdtemp(prefix="cubestac-var-"))
    work.chmod(0o755)
    c = EmbeddedCluster(EmbeddedDatabaseSettings(data_dir=work / "cluster", port=soak.free_port()))
    try:
        url = c.start()
        upgrade(url)
        asyncio.run(soak.load(url, soak.generate(3000, 42)))
        asyncio.run(run(url, rounds))
    finally:
        c.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
