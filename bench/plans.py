#!/usr/bin/env python3
"""The query plans behind the core-search benchmark: EXPLAIN (ANALYZE, BUFFERS) of every
statement our API runs for each loadgen query, captured with PostgreSQL's `auto_explain` on
a loaded catalogue (the evidence of docs/adr-002-partitioning.md).

Steps: `ALTER DATABASE ... SET` auto_explain for new sessions (log every statement with
ANALYZE, BUFFERS); ask the running API (started after that step, or restarted: its pooled
sessions must be new) variant 0 of each query twice, with loadgen's own request builder;
keep the plans logged during the second (warm) request; `ALTER DATABASE ... RESET` them.

    python bench/plans.py --database-url postgresql://cubestac:PW@127.0.0.1:PORT/cubestac \
        --server-log CLUSTER/run/postgres.log --base-url http://127.0.0.1:8090 \
        --manifest $DATA/manifest.json --harness $HARNESS --out plans.md [--arm | --disarm]

`--arm` only sets auto_explain (then start the API), `--disarm` only resets it; without
either, both around the requests (for an API started after arming).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import sys
import time
from pathlib import Path

from sqlalchemy import create_engine, make_url, text

SETTINGS = {
    "session_preload_libraries": "auto_explain",
    "auto_explain.log_min_duration": "0",
    "auto_explain.log_analyze": "on",
    "auto_explain.log_buffers": "on",
    "auto_explain.log_timing": "on",
    "auto_explain.log_nested_statements": "on",
}
QUERIES = (
    "a_simple_get,b_bbox_month_get,c_intersects_post,d_filter_post,e_sortby_get,"
    "f_paging5_get,g_item_get,h_fields_post,i_ids20_post"
)


def _alter(url: str, arm: bool) -> None:
    parsed = make_url(url).set(drivername="postgresql+psycopg")
    engine = create_engine(parsed, isolation_level="AUTOCOMMIT")
    database = parsed.database
    with engine.connect() as conn:
        for name, value in SETTINGS.items():
            action = f"SET {name} = '{value}'" if arm else f"RESET {name}"
            conn.execute(text(f'ALTER DATABASE "{database}" {action}'))
    engine.dispose()


def _loadgen(harness: Path):  # noqa: ANN202 - the harness's module, loaded from its file
    spec = importlib.util.spec_from_file_location("_plans_loadgen", harness / "loadgen.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


async def _capture(args: argparse.Namespace) -> list[str]:
    loadgen = _loadgen(args.harness)
    manifest = json.loads(args.manifest.read_text())
    wanted = args.queries.split(",")
    queries = {q.name: q for q in loadgen.build_queries(manifest) if q.name in wanted}
    runner = loadgen.Runner(args.base_url, 1, 120.0, "identity")
    lines: list[str] = []
    try:
        for name in wanted:
            query = queries[name]
            request = query.variants[0]
            await runner.execute(query, request, parse=True)  # cold: plans not kept
            time.sleep(0.5)
            start = args.server_log.stat().st_size
            began = time.perf_counter()
            ok, _info = await runner.execute(query, request, parse=True)
            elapsed = (time.perf_counter() - began) * 1000
            time.sleep(1.0)  # the log is written by the backend after the statement
            with open(args.server_log, "rb") as handle:
                handle.seek(start)
                logged = handle.read().decode(errors="replace")
            lines += [f"## {name} (warm request {elapsed:.1f} ms, ok={ok})", "", "```text"]
            lines += [_strip(line) for line in logged.splitlines() if _keep(line)]
            lines += ["```", ""]
    finally:
        await runner.close()
    return lines


def _keep(line: str) -> bool:
    return "connection" not in line and "disconnection" not in line


def _strip(line: str) -> str:
    """Log prefix (timestamp, pid) off; plan lines kept as logged."""
    return line.split("LOG:  ", 1)[1] if "LOG:  " in line else line


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--server-log", type=Path)
    parser.add_argument("--base-url", default="http://127.0.0.1:8090")
    parser.add_argument("--manifest", type=Path)
    parser.add_argument("--harness", type=Path, default=Path("../shared/bench/pgstac"))
    parser.add_argument("--queries", default=QUERIES)
    parser.add_argument("--out", type=Path, default=Path("plans.md"))
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--arm", action="store_true")
    mode.add_argument("--disarm", action="store_true")
    args = parser.parse_args()
    if args.arm or args.disarm:
        _alter(args.database_url, arm=args.arm)
        return 0
    if args.server_log is None or args.manifest is None:
        parser.error("--server-log and --manifest are needed to capture")
    try:
        lines = asyncio.run(_capture(args))
    finally:
        _alter(args.database_url, arm=False)
    args.out.write_text("\n".join(lines) + "\n")
    print(f"plans of {len(args.queries.split(','))} queries in {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
