"""Bulk harvest benchmark: N generated items into a catalogue that already holds N, then an
unchanged rerun; pypgstac's loader on the same items, on the same PostgreSQL cluster, in the
same run, one side after the other.

Ours goes through the code path every harvest takes: `ingest.pipeline.harvest_source`
(advisory lock, job record, per-batch fingerprint look-up, item checks, `item_to_row`, COPY
staging + INSERT ... ON CONFLICT, fingerprints saved in the same transaction). Only the
source is bench-specific: `NdjsonHarvester` reads the generated ndjson files, implementing
the same `Harvester` protocol as the three real kinds, the way the STAC API harvester treats
the items of a page (each kept as bytes, its head decoded for the key and the fingerprint,
`updated` else a hash of the bytes; parsed in full only when new or changed,
`ingest.raw_items`) — so the pipeline cannot tell it from an API.

The "already holds N" part is the same data set with `pre-` prefixed ids (a copy on disk for
pypgstac). One PostgreSQL 15 + PostGIS cluster (pgstac_stack.sh's tuned settings) holds both
databases: `cubestac` (our Alembic schema) and `stac` (pypgstac migrate).

    python -P bench/ingest.py --data-dir /work/benchwork/data100k --work-dir /work/benchwork-ingest

(`-P`: this file is named like the `ingest` package it measures; without it, Python would put
`bench/` first on the path and import this file as `ingest`.)

Prints a markdown table; writes `<work-dir>/ingest_results.json`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import orjson
from sqlalchemy import URL, create_engine, text

from catalogue.database import Database
from catalogue.database import create_engine as create_async_engine
from catalogue.schema import upgrade
from catalogue.settings import Settings
from ingest.config import StacStaticSource
from ingest.pipeline import harvest_source
from ingest.progress import LogProgress
from ingest.raw_items import item_head, raw_fingerprint
from ingest.runner import tune_gc_for_bulk
from ingest.sources.base import Fetched, HarvesterBase, Problem, Record

HARNESS = Path(os.environ.get("PGSTAC_HARNESS", "/work/shared/bench/pgstac"))
PG_BIN = os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin")


class NdjsonHarvester(HarvesterBase):
    """Items from the generator's ndjson files, as an API page would carry them."""

    version: ClassVar[int] = 1

    def __init__(self, data_dir: Path, prefix: str = "") -> None:
        self.data_dir = data_dir
        self.prefix = prefix
        collections = (data_dir / "collections.ndjson").read_text().splitlines()
        self.collections = {c["id"]: c for c in map(orjson.loads, filter(None, collections))}

    async def discover(self, cursor: Mapping[str, Any]) -> AsyncIterator[Record | Problem]:
        """Each line's bytes, as `StacApiHarvester` keeps each item of a page: only the
        head is decoded, the item is parsed when it is new or changed (`to_item`)."""
        for path in sorted(self.data_dir.glob("items_*.ndjson")):
            with path.open("rb") as lines:
                for line in lines:
                    head = item_head(line)
                    if head is None:
                        yield Problem(str(path), "not an item object")
                        continue
                    yield Record(
                        key=(head.collection, self.prefix + head.id),
                        fingerprint=raw_fingerprint(line, head),
                        payload=line,
                    )

    async def fetch(self, record: Record, known: str | None) -> Fetched | None:
        raise AssertionError("records carry their items")

    def to_item(self, record: Record, payload: Any) -> dict[str, Any]:
        item = orjson.loads(payload)
        item["id"] = self.prefix + item["id"]
        return item

    async def collection(self, collection_id: str) -> dict[str, Any]:
        return self.collections[collection_id]

    def next_cursor(self) -> dict[str, Any]:
        return {}


def _cluster_cpu(work: Path) -> float:
    """CPU seconds used so far by the cluster: the postmaster, its live children, and its
    exited children (backends of finished connections, counted in its cutime/cstime)."""
    postmaster = (work / "pgdata" / "postmaster.pid").read_text().split()[0]
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        pid, parent = stat.parent.name, fields[1]
        if pid == postmaster:  # utime, stime, cutime, cstime
            total += sum(int(value) for value in fields[11:15]) / tick
        elif parent == postmaster:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _client_cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _measured(work: Path, who: int, step: Callable[[], dict]) -> dict:
    """Run one step; add the CPU seconds it cost, per 1,000 items: client (our Python or
    the pypgstac process) and server. Unlike items/s, these hardly move with foreign load."""
    server, client = _cluster_cpu(work), _client_cpu(who)
    result = step()
    server, client = _cluster_cpu(work) - server, _client_cpu(who) - client
    per = 1000 / result["items"]
    result["cpu_client_s_per_1k"] = round(client * per, 3)
    result["cpu_server_s_per_1k"] = round(server * per, 3)
    result["load_avg_1m"] = os.getloadavg()[0]
    return result


def _trigger_seconds(url: URL) -> float:
    """Seconds spent so far in the per-day count triggers' functions (0 before migration
    0011), as `pg_stat_user_functions` has them once the writers' sessions have ended."""
    time.sleep(1.0)  # an ending backend flushes its function statistics as it exits
    engine = create_engine(url)
    with engine.connect() as conn:
        total = conn.execute(
            text(
                "SELECT coalesce(sum(total_time), 0) FROM pg_stat_user_functions "
                "WHERE funcname LIKE 'cubestac_count_%'"
            )
        ).scalar_one()
    engine.dispose()
    return float(total) / 1000


def _stack(work: Path, port: int, *arguments: str) -> None:
    environment = {**os.environ, "ANCHOR_DIR": str(work), "PGPORT": str(port), "PG_BIN": PG_BIN}
    subprocess.run(
        [str(HARNESS / "pgstac_stack.sh"), *arguments], check=True, env=environment, cwd=HARNESS
    )


def _admin(url: URL, *statements: str, database: str = "postgres") -> None:
    engine = create_engine(url.set(database=database), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        for statement in statements:
            conn.execute(text(statement))
    engine.dispose()


async def _ours_once(
    settings: Settings, data_dir: Path, source_id: str, prefix: str, batch_size: int = 2000
) -> dict:
    engine = create_async_engine(settings)
    config = StacStaticSource(
        id=source_id, kind="stac-static", url=str(data_dir), batch_size=batch_size
    )
    try:
        started = time.perf_counter()
        outcome = await harvest_source(
            Database(engine), config, LogProgress(), NdjsonHarvester(data_dir, prefix)
        )
        seconds = time.perf_counter() - started
    finally:
        await engine.dispose()
    if outcome.status != "succeeded":
        raise SystemExit(f"our harvest failed: {outcome.message}")
    total = outcome.counts.processed
    return {"items": total, "seconds": round(seconds, 2), "items_per_s": round(total / seconds)}


def _prefixed_copy(data_dir: Path, target: Path, prefix: str) -> Path:
    """The data set with `prefix` on every item id (the first "id" of each line)."""
    if (target / "manifest.json").exists():
        return target
    target.mkdir(parents=True, exist_ok=True)
    for name in ("collections.ndjson", "manifest.json"):
        shutil.copy(data_dir / name, target / name)
    for path in data_dir.glob("items_*.ndjson"):
        with path.open("rb") as source, (target / path.name).open("wb") as copy:
            for line in source:
                copy.write(line.replace(b'"id":"', b'"id":"' + prefix.encode(), 1))
    return target


def _pgstac_load(peer_python: str, data_dir: Path, out: Path, *options: str) -> dict:
    environment = {
        **os.environ, "PGHOST": "127.0.0.1", "PGUSER": "postgres", "PGDATABASE": "stac",
    }  # fmt: skip
    command = [peer_python, str(HARNESS / "load_pgstac.py"), "--data-dir", str(data_dir)]
    subprocess.run(
        [*command, "--out", str(out), "--no-queryables", *options],
        check=True,
        env=environment,
        cwd=HARNESS,
        stdout=subprocess.DEVNULL,
    )
    result = json.loads(out.read_text())
    return {
        "items": result["items_total"],
        "seconds": result["timings_s"]["items"],
        "items_per_s": round(result["items_per_s"]),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--work-dir", type=Path, default=Path("/work/benchwork-ingest"))
    parser.add_argument("--peer-python", default="/work/benchwork/venv/bin/python")
    parser.add_argument("--port", type=int, default=55441)
    parser.add_argument("--keep", action="store_true", help="Leave the cluster running.")
    parser.add_argument(
        "--batch-size", type=int, default=2000, help="Our items per transaction (source config)."
    )
    parser.add_argument(
        "--ours-only",
        action="store_true",
        help="Skip pypgstac (e.g. to compare two versions of our write path).",
    )
    parser.add_argument(
        "--into-database-url",
        help="ours only, into this already loaded catalogue (e.g. the core-search benchmark's "
        "cluster): the data set's items with --prefix on their ids, then an unchanged rerun",
    )
    parser.add_argument("--prefix", default="more-", help="id prefix with --into-database-url")
    args = parser.parse_args(argv)
    tune_gc_for_bulk()  # as `cubestac ingest` does
    if args.into_database_url:
        print(json.dumps(_into_existing(args), indent=2))
        return
    work: Path = args.work_dir
    shutil.rmtree(work / "pgdata", ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    server = URL.create("postgresql+psycopg", username="postgres", host="127.0.0.1", port=args.port)
    _stack(work, args.port, "pg-init")
    _stack(work, args.port, "pg-start")
    results: dict[str, Any] = {"data_dir": str(args.data_dir)}
    try:
        os.environ["PGPORT"] = str(args.port)
        _admin(server, "CREATE DATABASE cubestac")
        ours_url = server.set(database="cubestac")
        _admin(ours_url, "CREATE EXTENSION IF NOT EXISTS postgis")
        upgrade(ours_url.set(drivername="postgresql+asyncpg"))
        # time spent in PL/pgSQL functions: the per-day count triggers (migration 0011)
        _admin(ours_url, "ALTER DATABASE cubestac SET track_functions = 'pl'")
        settings = Settings(database_url=ours_url.render_as_string(hide_password=False))
        settings.pool.statement_timeout_ms = 600_000
        data = args.data_dir
        ours, peer = resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN

        def ours_step(source_id: str, prefix: str) -> dict:
            """A harvest, then (untimed, as load_pgstac.py does after each load) VACUUM
            ANALYZE of what it wrote; the CPU of both is counted."""
            triggers = _trigger_seconds(ours_url)
            result = asyncio.run(_ours_once(settings, data, source_id, prefix, args.batch_size))
            _admin(server, "VACUUM ANALYZE items, source_items", database="cubestac")
            seconds = _trigger_seconds(ours_url) - triggers
            result["trigger_s_per_1k"] = round(seconds * 1000 / result["items"], 4)
            return result

        def settled() -> None:
            """Every step starts from a checkpoint: no dirty buffers of the step before."""
            _admin(server, "CHECKPOINT")

        print("[bench] ours: preload", file=sys.stderr)
        results["ours_preload"] = _measured(work, ours, lambda: ours_step("preload", "pre-"))
        settled()
        print("[bench] ours: load", file=sys.stderr)
        results["ours_load"] = _measured(work, ours, lambda: ours_step("bench", ""))
        settled()
        print("[bench] ours: unchanged rerun", file=sys.stderr)
        results["ours_rerun"] = _measured(work, ours, lambda: ours_step("bench", ""))

        if not args.ours_only:
            prefixed = _prefixed_copy(data, work / f"{data.name}-pre", "pre-")
            python = args.peer_python
            ignore = ("--no-migrate", "--method", "insert_ignore")
            settled()
            print("[bench] pypgstac: preload", file=sys.stderr)
            results["pgstac_preload"] = _measured(
                work, peer, lambda: _pgstac_load(python, prefixed, work / "pgstac_pre.json")
            )
            settled()
            print("[bench] pypgstac: load", file=sys.stderr)
            results["pgstac_load"] = _measured(
                work, peer, lambda: _pgstac_load(python, data, work / "pgstac_load.json", *ignore)
            )
            settled()
            print("[bench] pypgstac: rerun (insert_ignore)", file=sys.stderr)
            results["pgstac_rerun"] = _measured(
                work, peer, lambda: _pgstac_load(python, data, work / "pgstac_rerun.json", *ignore)
            )
    finally:
        if not args.keep:
            _stack(work, args.port, "pg-stop")
    _finish(work, args, results)


def _finish(work: Path, args: argparse.Namespace, results: dict[str, Any]) -> None:
    (work / "ingest_results.json").write_text(json.dumps(results, indent=2))
    print(_ours_table(results) if args.ours_only else _table(results))


def _ours_table(results: dict[str, Any]) -> str:
    rows = [
        "| step | items | items/s | s | CPU s per 1,000 client / server | in count triggers, s"
        " per 1,000 | load avg |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for step in ("preload", "load", "rerun"):
        ours = results[f"ours_{step}"]
        rows.append(
            f"| {step} | {ours['items']:,} | {ours['items_per_s']:,} | {ours['seconds']} "
            f"| {ours['cpu_client_s_per_1k']} / {ours['cpu_server_s_per_1k']} "
            f"| {ours.get('trigger_s_per_1k', 0)} | {ours['load_avg_1m']:.1f} |"
        )
    return "\n".join(rows)


def _into_existing(args: argparse.Namespace) -> dict[str, Any]:
    """Ours only, into a catalogue that holds data already: load, VACUUM ANALYZE, rerun."""
    from sqlalchemy import make_url

    url = make_url(args.into_database_url)
    settings = Settings(database_url=url.render_as_string(hide_password=False))
    settings.pool.statement_timeout_ms = 3_600_000
    admin = url.set(drivername="postgresql+psycopg")

    def count() -> int:
        engine = create_engine(admin)
        with engine.connect() as conn:
            total = int(conn.execute(text("SELECT count(*) FROM items")).scalar_one())
        engine.dispose()
        return total

    results: dict[str, Any] = {"items_before": count(), "data_dir": str(args.data_dir)}
    for step in ("load", "rerun"):
        started = time.perf_counter()
        client = _client_cpu(resource.RUSAGE_SELF)
        once = _ours_once(settings, args.data_dir, "bench-more", args.prefix, args.batch_size)
        result = asyncio.run(once)
        result["cpu_client_s_per_1k"] = round(
            (_client_cpu(resource.RUSAGE_SELF) - client) * 1000 / result["items"], 3
        )
        result["load_avg_1m"] = os.getloadavg()[0]
        vacuum = time.perf_counter()
        _admin(admin, "VACUUM ANALYZE items, source_items", database=url.database or "cubestac")
        result["vacuum_analyze_s"] = round(time.perf_counter() - vacuum, 2)
        result["wall_s"] = round(time.perf_counter() - started, 2)
        results[step] = result
        print(f"[bench] ours {step}: {result}", file=sys.stderr)
    results["items_after"] = count()
    return results


def _table(results: dict[str, Any]) -> str:
    rows = [
        "| step | cubestac (harvest pipeline) | pypgstac loader | ratio |",
        "| --- | ---: | ---: | ---: |",
    ]
    for step, label in (("preload", "preload (empty catalogue)"), ("load", "load into a full one"),
                        ("rerun", "unchanged rerun")):  # fmt: skip
        ours, peer = results[f"ours_{step}"], results[f"pgstac_{step}"]
        rows.append(
            f"| {label}, {ours['items']:,} items | {ours['items_per_s']:,} items/s "
            f"({ours['seconds']} s) | {peer['items_per_s']:,} items/s ({peer['seconds']} s) "
            f"| {ours['items_per_s'] / peer['items_per_s']:.2f}x |"
        )
    rows += [
        "",
        "CPU seconds per 1,000 items (client = our Python or the pypgstac process; server ="
        " the PostgreSQL cluster), and the 1-minute load average at the end of the step:",
        "",
        "| step | ours client | ours server | pypgstac client | pypgstac server |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for step in ("preload", "load", "rerun"):
        ours, peer = results[f"ours_{step}"], results[f"pgstac_{step}"]
        cells = [
            f"{side['cpu_client_s_per_1k']} | {side['cpu_server_s_per_1k']}"
            for side in (ours, peer)
        ]
        load = f"(load {ours['load_avg_1m']:.1f} / {peer['load_avg_1m']:.1f})"
        rows.append(f"| {step} {load} | {cells[0]} | {cells[1]} |")
    speedup = results["ours_load"]["seconds"] / results["ours_rerun"]["seconds"]
    rows.append(f"\nunchanged rerun vs load (ours): {speedup:.1f}x faster")
    return "\n".join(rows)


if __name__ == "__main__":
    main()
