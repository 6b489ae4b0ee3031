"""Our side of the core-search benchmark: an embedded PostGIS loaded through `upsert_items`,
then `cubestac serve`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from search_common import BenchFailure, free_port, log, tail, wait_http
from search_data import load_timeout


async def _load_catalogue(
    url: Any, data_dir: Path, manifest: dict[str, Any], batch: int, writers: int
) -> dict:
    """Collections + items through item_to_row + upsert_items, then VACUUM ANALYZE; timed."""
    import orjson
    from sqlalchemy import text

    from catalogue.database import Database, create_engine
    from catalogue.repositories import collections as collection_repo
    from catalogue.settings import DatabasePoolSettings, Settings

    settings = Settings(pool=DatabasePoolSettings(statement_timeout_ms=3_600_000))
    database = Database(create_engine(settings, url))
    result: dict[str, Any] = {"batch_items_per_transaction": batch, "per_collection": {}}
    try:
        started = time.perf_counter()
        async with database.write() as conn:
            for line in (data_dir / "collections.ndjson").read_text().splitlines():
                if line.strip():
                    await collection_repo.upsert_collection(conn, orjson.loads(line))
        result["collections_s"] = round(time.perf_counter() - started, 3)
        totals = {"convert_s": 0.0, "db_s": 0.0, "items": 0, "inserted": 0}
        for collection, count in manifest["counts"].items():
            path = data_dir / f"items_{collection}.ndjson"
            per = await _load_items_file(database, path, batch, writers)
            if per["items"] != count:
                raise BenchFailure(f"{collection}: read {per['items']} items, manifest {count}")
            result["per_collection"][collection] = per
            for key in totals:
                totals[key] += per[key]
            log(f"loaded {collection}: {per['items']} items in {per['seconds']} s "
                f"({per['items_per_s']} items/s; convert {per['convert_s']} s, "
                f"db {per['db_s']} s)")  # fmt: skip
        items_s = sum(per["seconds"] for per in result["per_collection"].values())
        result.update(
            items=totals["items"],
            inserted=totals["inserted"],
            items_s=round(items_s, 3),
            convert_s=round(totals["convert_s"], 3),
            db_s=round(totals["db_s"], 3),
            items_per_s=round(totals["items"] / items_s, 1) if items_s else None,
        )
        started = time.perf_counter()
        async with database.engine.connect() as raw:
            conn = await raw.execution_options(isolation_level="AUTOCOMMIT")
            await conn.exec_driver_sql("VACUUM ANALYZE items")
            await conn.exec_driver_sql("ANALYZE collections")
        result["vacuum_analyze_s"] = round(time.perf_counter() - started, 3)
        async with database.read() as conn:
            rows = await conn.execute(
                text("SELECT collection, count(*) FROM items GROUP BY 1 ORDER BY 1")
            )
            result["db_counts"] = {row[0]: row[1] for row in rows}
            result["db_size"] = await conn.scalar(
                text("SELECT pg_size_pretty(pg_database_size(current_database()))")
            )
    finally:
        await database.dispose()
    return result


async def _load_items_file(
    database: Any, path: Path, batch: int, writers: int = 2
) -> dict[str, Any]:
    """One items_*.ndjson: parse + item_to_row per line, upsert_items per `batch` rows.

    `writers` transactions run at once (as the harvest pipeline does): while the database
    writes one batch, Python converts the next one, so neither side waits for the other.
    `db_s` is the rest of the wall time: waiting for the writers.
    """
    import orjson

    from catalogue.repositories.items import upsert_items
    from catalogue.serializers import item_to_row

    convert_s = 0.0
    items = inserted = 0
    queue: asyncio.Queue[list[dict[str, Any]] | None] = asyncio.Queue(maxsize=writers)

    async def writer() -> None:
        nonlocal inserted
        while (rows := await queue.get()) is not None:
            async with database.write() as conn:
                counts = await upsert_items(conn, rows)
            inserted += counts.inserted

    wall = time.perf_counter()
    tasks = [asyncio.create_task(writer()) for _ in range(writers)]
    try:
        rows: list[dict[str, Any]] = []
        with open(path, "rb") as handle:
            started = time.perf_counter()
            for line in handle:
                if line.strip():
                    rows.append(item_to_row(orjson.loads(line)))
                if len(rows) >= batch:
                    convert_s += time.perf_counter() - started
                    await queue.put(rows)
                    items, rows = items + len(rows), []
                    started = time.perf_counter()
            convert_s += time.perf_counter() - started
        if rows:
            await queue.put(rows)
            items += len(rows)
        for _ in tasks:
            await queue.put(None)
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
    seconds = time.perf_counter() - wall
    return {
        "items": items,
        "inserted": inserted,
        "seconds": round(seconds, 3),
        "convert_s": round(convert_s, 3),
        "db_s": round(seconds - convert_s, 3),
        "writers": writers,
        "items_per_s": round(items / seconds, 1) if seconds else None,
    }


class OursStack:
    """Our embedded cluster + `cubestac serve` subprocess."""

    def __init__(self, args: argparse.Namespace, root: Path, logs: Path) -> None:
        from catalogue.embedded import EmbeddedCluster
        from catalogue.settings import EmbeddedDatabaseSettings

        self.args = args
        self.root = root
        self.cluster_dir = root / "cluster"
        self.marker = root / "loaded.json"
        self.logs = logs
        self.db_port = free_port()
        root.mkdir(parents=True, exist_ok=True)
        root.chmod(0o755)
        self.cluster = EmbeddedCluster(
            EmbeddedDatabaseSettings(data_dir=self.cluster_dir, port=self.db_port)
        )
        self.url: Any = None
        self.api: subprocess.Popen[bytes] | None = None
        self.api_port = 0

    def prepare(self, fingerprint: str) -> bool:
        """True when a loaded cluster of the same data can be reused (--reuse)."""
        if self.args.reuse and self.marker.is_file():
            if json.loads(self.marker.read_text()).get("data") == fingerprint:
                log(f"ours: reusing the loaded cluster in {self.cluster_dir}")
                return True
        if self.cluster_dir.exists():
            log(f"ours: removing the previous cluster {self.cluster_dir} (fresh load)")
            self.cluster.stop()
            shutil.rmtree(self.cluster_dir)
        self.marker.unlink(missing_ok=True)
        return False

    def start_db(self) -> float:
        from catalogue.schema import upgrade

        started = time.perf_counter()
        self.url = self.cluster.start()
        upgrade(self.url)
        log(f"ours: PostGIS on 127.0.0.1:{self.db_port} ({self.cluster_dir}), schema at head")
        return round(time.perf_counter() - started, 3)

    def load(self, manifest: dict[str, Any], fingerprint: str) -> dict[str, Any]:
        loading = _load_catalogue(
            self.url, self.args.data_dir, manifest, self.args.batch_size, self.args.writers
        )
        result = asyncio.run(asyncio.wait_for(loading, load_timeout(self.args.n_items)))
        if result["db_counts"] != manifest["counts"]:
            raise BenchFailure(f"ours: db counts {result['db_counts']} != {manifest['counts']}")
        self.marker.write_text(json.dumps({"data": fingerprint, "load": result}, indent=2))
        return result

    def start_api(self) -> float:
        self.api_port = free_port()
        env = {
            **os.environ,
            "DATABASE_URL": self.url.render_as_string(hide_password=False),
            # the peer runs with `--no-access-log` (pgstac_stack.sh): compare like with like
            "CUBESTAC_MONITORING__ACCESS_LOG": "false",
        }
        env.pop("CUBESTAC_API_KEY", None)
        command = [
            self.args.cubestac, "serve", "--host", "127.0.0.1", "--port", str(self.api_port),
            "--workers", str(self.args.workers),
        ]  # fmt: skip
        started = time.perf_counter()
        with open(self.logs / "ours_api.log", "w", encoding="utf-8") as handle:
            self.api = subprocess.Popen(
                command, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
            )
        try:
            wait_http(f"{self.base_url}/", 60, self.api)
        except BenchFailure as error:
            raise BenchFailure(f"{error}\n{tail(self.logs / 'ours_api.log')}") from error
        return round(time.perf_counter() - started, 3)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def postmaster_pid(self) -> int | None:
        return postmaster_pid(self.cluster_dir / "pgdata")

    def sizes(self) -> dict[str, Any]:
        """Database, items table and index sizes, read while the cluster runs."""
        from search_sizes import sizes

        return sizes(
            self.args.pg_bin / "psql", self.db_port, self.url.username, self.url.database,
            "public", self.url.password,
        )  # fmt: skip

    def stop_api(self) -> None:
        if self.api is None:
            return
        _stop_process_group(self.api)
        self.api = None

    def stop_db(self) -> None:
        try:
            if self.cluster.stop():
                log("ours: cluster stopped (data kept)")
        except Exception as error:  # noqa: BLE001 - cleanup must go on
            log(f"WARNING: stopping our cluster failed: {error}")


def _stop_process_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process we started, wait (bounded), then its own process group."""
    pgid = process.pid  # started with start_new_session: pgid == pid
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        os.killpg(pgid, sig)
        time.sleep(2)


def postmaster_pid(pgdata: Path) -> int | None:
    try:
        return int((pgdata / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
