#!/usr/bin/env python3
"""Core-search benchmark: cubestac vs stac-fastapi-pgstac on the same box, one after the other.

Steps (every one bounded in time, everything on 127.0.0.1, everything started is stopped in
`finally`, also on Ctrl-C / SIGTERM):

1. data: the harness's `gen_items.py` output (N items, seed S), generated when missing;
   manifest counts and sha256 checked.
2. ours: a dedicated embedded PostGIS cluster in WORK/ours/cluster on a free port, Alembic
   upgrade, collections + items loaded through `item_to_row` + `upsert_items` (BATCH items per
   transaction, timed), VACUUM ANALYZE; then `cubestac serve --workers W` on a free port and the
   harness's `loadgen.py` on the core queries; API stopped, cluster stopped (data kept).
3. peer (only with --peer-venv): the steps of the harness README for stac-fastapi-pgstac
   (pgstac_stack.sh pg-init/pg-start, load_pgstac.py, api-start with WORKERS=W and
   USE_API_HYDRATE=true, same loadgen call, api-stop, pg-stop) in WORK/peer.
4. report: side-by-side table (req/s, p50, p95, ratio), issue 3's targets with a verdict each,
   the same-answers check of compare.py (preflight feature counts + sorted-id hashes, plus the
   order hash) and the same check on every variant of every query, the peak resident memory
   of each API process, CPU use of other processes on the box during each measurement; JSON +
   markdown in WORK/results/<stamp>/.

Scale and scope: --n-items N (data generated when missing, free disk checked), --queries
core|all|<names>.

The bench is not part of the test suite and needs root only for what PostgreSQL needs
(clusters run as unprivileged OS users through runuser). See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hashlib
import json
import os
import platform
import pwd
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CORE_QUERIES = (
    "a_simple_get,a_simple_post,b_bbox_month_get,b_bbox_month_post,c_intersects_get,"
    "c_intersects_post,g_item_get,i_ids20_get,i_ids20_post"
)
ALL_QUERIES = (  # every query of the harness's loadgen.py
    "a_simple_get,a_simple_post,b_bbox_month_get,b_bbox_month_post,c_intersects_get,"
    "c_intersects_post,d_filter_get,d_filter_post,e_sortby_get,e_sortby_post,f_paging5_get,"
    "f_paging5_post,g_item_get,h_fields_get,h_fields_post,i_ids20_get,i_ids20_post,x_landing_get"
)
QUERY_SETS = {"core": CORE_QUERIES, "all": ALL_QUERIES}
# Targets of issue 3 (at 1,000,000 items): every query >= 1.5x pgstac's req/s, the median query
# >= 5x, p95 < 100 ms for the bbox/intersects + datetime and filter queries, API < 300 MB RSS.
TARGET_MIN_RATIO, TARGET_MEDIAN_RATIO = 1.5, 5.0
TARGET_P95_MS, TARGET_P95_PREFIXES = 100.0, ("b_", "c_", "d_")
TARGET_RSS_MB = 300.0
BYTES_PER_ITEM = 12_000  # free disk needed per item: ndjson 2.8 kB + ours 3.5 + pgstac 2 + WAL
PEER_OS_USER = "pgbench"
ANCHOR_RESULT = "results/pgstac_w2_apihydrate.json"  # the harness's anchor run (answers only)


def log(message: str) -> None:
    print(f"[core_search {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class BenchFailure(Exception):
    """A step failed; the message says which and where its log is."""


# -- small helpers ----------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    """Nobody listens on 127.0.0.1:port (SO_REUSEADDR, as servers bind: TIME_WAIT is fine)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def run_logged(
    command: list[str],
    log_path: Path,
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 300,
) -> float:
    """Run a command to completion (bounded), output appended to `log_path`; return seconds."""
    started = time.perf_counter()
    with open(log_path, "a", encoding="utf-8") as handle:
        handle.write(f"\n$ {' '.join(command)}\n")
        handle.flush()
        result = subprocess.run(
            command, stdout=handle, stderr=subprocess.STDOUT, env=env, cwd=cwd, timeout=timeout
        )
    if result.returncode != 0:
        raise BenchFailure(
            f"{' '.join(command[:3])} ... failed ({result.returncode}), see {log_path}:\n"
            f"{tail(log_path)}"
        )
    return round(time.perf_counter() - started, 3)


def wait_http(url: str, seconds: float, process: subprocess.Popen[bytes] | None = None) -> None:
    """Poll `url` until it answers 200 (bounded); fail early when `process` died."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise BenchFailure(f"server exited with {process.returncode} before answering {url}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback only
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise BenchFailure(f"{url} did not answer within {seconds:.0f} s")


def code_version() -> dict[str, Any]:
    """The code measured: HEAD and how many files of the working tree differ from it."""

    def git(*command: str) -> str:
        result = subprocess.run(
            ["git", "-C", str(REPO), *command], capture_output=True, text=True, timeout=30
        )
        return result.stdout.strip() if result.returncode == 0 else "?"

    from catalogue.schema import head_revision

    status = git("status", "--porcelain")
    return {
        "head": git("rev-parse", "--short", "HEAD"),
        "modified_or_new_files": len(status.splitlines()) if status != "?" else None,
        "schema_head": head_revision(),
    }


def box_description() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


# -- CPU accounting: how busy is the box, and how much of it is not us ----------------------
def _proc_stat_total() -> tuple[int, int]:
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields[:8]), idle


def _processes() -> dict[int, tuple[int, int, str, int]]:
    """pid -> (ppid, utime + stime ticks, command, resident pages) of every readable process."""
    table: dict[int, tuple[int, int, str, int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_text()
            name = raw[raw.index("(") + 1 : raw.rindex(")")]
            fields = raw.rsplit(")", 1)[1].split()
            table[int(entry)] = (
                int(fields[1]), int(fields[11]) + int(fields[12]), name, int(fields[21])
            )  # fmt: skip
        except (OSError, ValueError, IndexError):
            continue
    return table


def _descendants(table: dict[int, tuple[int, int, str, int]], roots: set[int]) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, row in table.items():
        children.setdefault(row[0], []).append(pid)
    found, stack = set(), [pid for pid in roots if pid in table]
    while stack and len(found) < 100_000:
        pid = stack.pop()
        if pid not in found:
            found.add(pid)
            stack.extend(children.get(pid, []))
    return found


def busy_cores(seconds: float = 3.0) -> float:
    """Average busy cores of the whole box over `seconds`."""
    total0, idle0 = _proc_stat_total()
    time.sleep(seconds)
    total1, idle1 = _proc_stat_total()
    ticks = max(total1 - total0, 1)
    return round((1 - (idle1 - idle0) / ticks) * (os.cpu_count() or 1), 2)


def _cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()[:160]


class CpuMonitor:
    """Samples /proc every second in a thread: box busy cores, ours vs foreign CPU, API memory.

    "Ours" is this script's process tree plus the given roots (API master, postmaster) and
    their descendants; everything else on the box is foreign load that skews the figures.
    The resident set size of every process of the API's tree (`api_roots`: the uvicorn master
    and its workers) is sampled too; the summary gives each one's peak.
    """

    def __init__(self, roots: set[int], api_roots: set[int], interval: float = 1.0) -> None:
        self.roots = {os.getpid(), *roots, *api_roots}
        self.api_roots = set(api_roots)
        self.page_mb = os.sysconf("SC_PAGE_SIZE") / 2**20
        self.api_rss: dict[int, dict[str, Any]] = {}
        self.interval = interval
        self.hz = os.sysconf("SC_CLK_TCK")
        self.ours_ticks = 0
        self.foreign_ticks = 0
        self.foreign_by_name: dict[str, int] = {}
        self.box_busy: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._started = 0.0

    def __enter__(self) -> CpuMonitor:
        self._started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        previous = _processes()
        self._sample_api_rss(previous)
        total0, idle0 = _proc_stat_total()
        while not self._stop.wait(self.interval):
            current = _processes()
            total1, idle1 = _proc_stat_total()
            ours = _descendants(current, self.roots)
            self._sample_api_rss(current)
            for pid, (_, ticks, name, _) in current.items():
                delta = ticks - (previous[pid][1] if pid in previous else 0)
                if delta <= 0:
                    continue
                if pid in ours:
                    self.ours_ticks += delta
                else:
                    self.foreign_ticks += delta
                    self.foreign_by_name[name] = self.foreign_by_name.get(name, 0) + delta
            ticks_all = max(total1 - total0, 1)
            self.box_busy.append((1 - (idle1 - idle0) / ticks_all) * (os.cpu_count() or 1))
            previous, total0, idle0 = current, total1, idle1

    def _sample_api_rss(self, table: dict[int, tuple[int, int, str, int]]) -> None:
        for pid in _descendants(table, self.api_roots):
            rss_mb = table[pid][3] * self.page_mb
            entry = self.api_rss.get(pid)
            if entry is None:
                cmd = _cmdline(pid)
                role = "master" if pid in self.api_roots else "child"
                role = "worker" if "spawn_main" in cmd else role
                role = "resource tracker" if "resource_tracker" in cmd else role
                entry = self.api_rss[pid] = {"pid": pid, "role": role, "cmd": cmd,
                                             "peak_mb": 0.0, "samples": 0}  # fmt: skip
            entry["peak_mb"] = round(max(entry["peak_mb"], rss_mb), 1)
            entry["samples"] += 1

    def summary(self) -> dict[str, Any]:
        elapsed = max(time.monotonic() - self._started, 1e-6)
        top = sorted(self.foreign_by_name.items(), key=lambda kv: -kv[1])[:5]
        return {
            "seconds": round(elapsed, 1),
            "box_busy_cores_mean": round(statistics.fmean(self.box_busy), 2)
            if self.box_busy
            else None,
            "bench_cores_mean": round(self.ours_ticks / self.hz / elapsed, 2),
            "foreign_cores_mean": round(self.foreign_ticks / self.hz / elapsed, 2),
            "foreign_top": {name: round(ticks / self.hz, 1) for name, ticks in top},
            "api_rss": sorted(self.api_rss.values(), key=lambda e: e["pid"]),
        }


def wait_for_quiet(max_busy: float, max_wait: float) -> dict[str, Any]:
    """Before a timed run: wait (bounded) until the box is nearly idle; report what we saw."""
    deadline = time.monotonic() + max_wait
    samples: list[float] = []
    while True:
        busy = busy_cores(3.0)
        samples.append(busy)
        if busy <= max_busy:
            break
        if time.monotonic() >= deadline:
            log(f"WARNING: box still busy ({busy} cores) after {max_wait:.0f} s; measuring anyway")
            break
        log(f"box busy ({busy} cores > {max_busy}, load {os.getloadavg()[0]:.2f}); waiting 30 s")
        time.sleep(min(30.0, max(deadline - time.monotonic(), 1.0)))
    return {
        "busy_cores_samples": samples,
        "quiet": samples[-1] <= max_busy,
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }


# -- data -------------------------------------------------------------------------------------
def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def size_name(n_items: int) -> str:
    """100000 -> '100k', 1000000 -> '1m' (folder and report names)."""
    if n_items % 1_000_000 == 0:
        return f"{n_items // 1_000_000}m"
    return f"{n_items // 1000}k" if n_items % 1000 == 0 else str(n_items)


def load_timeout(n_items: int) -> float:
    """Upper bound of one side's load: 30 min, or 300 items/s for larger data sets."""
    return max(1800.0, n_items / 300)


def check_disk(args: argparse.Namespace) -> dict[str, Any]:
    """Free space where data and clusters go, against a rough need; fail early when short."""
    need = args.n_items * BYTES_PER_ITEM
    if (args.data_dir / "manifest.json").is_file():
        need -= args.n_items * 2_800  # the ndjson is there already
    found: dict[str, Any] = {}
    for folder in {args.work_dir, args.data_dir.parent}:
        usage = shutil.disk_usage(folder)
        found[str(folder)] = {
            "free_gb": round(usage.free / 1e9, 1),
            "total_gb": round(usage.total / 1e9, 1),
        }
        if usage.free < need:
            raise BenchFailure(
                f"{folder}: {usage.free / 1e9:.1f} GB free, about {need / 1e9:.1f} GB needed"
            )
    log(f"disk: {found}; about {need / 1e9:.1f} GB needed")
    return {"free": found, "need_gb": round(need / 1e9, 1)}


def ensure_data(args: argparse.Namespace, logs: Path) -> dict[str, Any]:
    manifest_path = args.data_dir / "manifest.json"
    if not manifest_path.is_file():
        log(f"generating {args.n_items} items (seed {args.seed}) into {args.data_dir}")
        args.data_dir.mkdir(parents=True, exist_ok=True)
        command = [
            args.loadgen_python, str(args.harness / "gen_items.py"), "--out-dir",
            str(args.data_dir), "--n-items", str(args.n_items), "--seed", str(args.seed),
        ]  # fmt: skip
        seconds = run_logged(
            command, logs / "gen_items.log", cwd=args.harness, timeout=max(900, args.n_items / 1000)
        )
        log(f"generated in {seconds} s")
    manifest = json.loads(manifest_path.read_text())
    if (manifest.get("n_items"), manifest.get("seed")) != (args.n_items, args.seed):
        raise BenchFailure(
            f"{manifest_path}: n_items/seed {manifest.get('n_items')}/{manifest.get('seed')} "
            f"!= requested {args.n_items}/{args.seed}"
        )
    for name, entry in manifest["files"].items():
        if sha256_file(args.data_dir / entry["path"]) != entry["sha256"]:
            raise BenchFailure(f"{name}: sha256 differs from {manifest_path}")
    log(f"data ok: {args.data_dir} ({manifest['counts']})")
    return manifest


def data_fingerprint(manifest: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(manifest["files"], sort_keys=True).encode()).hexdigest()[:16]


# -- loadgen ----------------------------------------------------------------------------------
def run_loadgen(args: argparse.Namespace, base_url: str, label: str, out: Path) -> dict[str, Any]:
    """The harness's loadgen.py against `base_url` (bounded); returns its JSON result."""
    n_queries = len(args.queries.split(","))
    budget = args.repeat * n_queries * (args.warmup + args.duration + 35) + 120
    command = [
        args.loadgen_python, str(args.harness / "loadgen.py"), "--base-url", base_url,
        "--manifest", str(args.data_dir / "manifest.json"), "--queries", args.queries,
        "--duration", str(args.duration), "--warmup", str(args.warmup),
        "--concurrency", str(args.concurrency), "--repeat", str(args.repeat),
        "--label", label, "--out", str(out), "--keep-going",
    ]  # fmt: skip
    log_path = out.with_suffix(".log")
    log(f"loadgen {label}: {n_queries} queries x {args.repeat} (budget {budget:.0f} s)")
    with open(log_path, "w", encoding="utf-8") as handle:
        process = subprocess.Popen(
            command, cwd=args.harness, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        killer = threading.Timer(budget, process.kill)
        killer.start()
        try:
            assert process.stdout is not None
            for line in process.stdout:
                handle.write(line)
                if line.startswith(("[preflight]", "[rep")):
                    print("   " + line.rstrip(), file=sys.stderr, flush=True)
            process.wait(timeout=30)
        finally:
            killer.cancel()
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
    if not out.is_file():
        raise BenchFailure(f"loadgen wrote no result ({process.returncode}), see {log_path}")
    if process.returncode != 0:
        log(f"WARNING: loadgen exit {process.returncode} (a preflight failed), see {log_path}")
    return json.loads(out.read_text())


def _ids_answer(pages: list[dict[str, Any]]) -> list[Any]:
    """[features, sorted-ids sha1, ordered-ids sha1] of one response (all pages of a walk)."""
    doc = pages[0]
    if doc.get("type") == "Feature":
        return [1, doc.get("id"), doc.get("id")]
    if doc.get("type") != "FeatureCollection":
        return ["not a search"]  # the landing page: nothing to compare
    ids = [str(f.get("id")) for page in pages for f in page.get("features", [])]

    def digest(values: list[str]) -> str:
        return hashlib.sha1("\n".join(values).encode()).hexdigest()[:12]

    return [len(ids), digest(sorted(ids)), digest(ids)]


def variant_answers(args: argparse.Namespace, base_url: str) -> dict[str, list[list[Any]]]:
    """Every variant of every measured query once, one request at a time (not timed).

    loadgen's preflight answers variant 0 only; this asks each of its variants (8 months for b,
    768 item ids for g, 38 id chunks for i, the 5-page walk of every f variant, ...) with
    loadgen's own request builder and runner, so both sides get exactly the same requests.
    """
    import importlib.util

    spec = importlib.util.spec_from_file_location("_bench_loadgen", args.harness / "loadgen.py")
    assert spec is not None and spec.loader is not None
    loadgen = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = loadgen  # its dataclasses look their module up
    spec.loader.exec_module(loadgen)
    manifest = json.loads((args.data_dir / "manifest.json").read_text())
    wanted = set(args.queries.split(","))
    queries = [q for q in loadgen.build_queries(manifest) if q.name in wanted]

    async def ask_all() -> dict[str, list[list[Any]]]:
        runner = loadgen.Runner(base_url, 1, 30.0, "identity")
        found: dict[str, list[list[Any]]] = {}
        try:
            for query in queries:
                answers = found[query.name] = []
                for request in query.variants:
                    try:
                        ok, info = await runner.execute(query, request, parse=True)
                    except Exception as error:  # noqa: BLE001 - recorded as that variant's answer
                        answers.append(["error", f"{type(error).__name__}: {error}"[:200]])
                        continue
                    answers.append(_ids_answer(info) if ok else ["error", str(info)[:200]])
        finally:
            await runner.close()
        return found

    started = time.perf_counter()
    found = asyncio.run(asyncio.wait_for(ask_all(), 900))
    log(f"answers of {sum(map(len, found.values()))} variants in "
        f"{time.perf_counter() - started:.0f} s")  # fmt: skip
    return found


# -- our side ---------------------------------------------------------------------------------
async def _load_catalogue(url: Any, data_dir: Path, manifest: dict[str, Any], batch: int) -> dict:
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
            per = await _load_items_file(database, data_dir / f"items_{collection}.ndjson", batch)
            if per["items"] != count:
                raise BenchFailure(f"{collection}: read {per['items']} items, manifest {count}")
            result["per_collection"][collection] = per
            for key in totals:
                totals[key] += per[key]
            log(f"loaded {collection}: {per['items']} items in {per['seconds']} s "
                f"({per['items_per_s']} items/s; convert {per['convert_s']} s, "
                f"db {per['db_s']} s)")  # fmt: skip
        items_s = totals["convert_s"] + totals["db_s"]
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


async def _load_items_file(database: Any, path: Path, batch: int) -> dict[str, Any]:
    """One items_*.ndjson: parse + item_to_row per line, upsert_items per `batch` rows."""
    import orjson

    from catalogue.repositories.items import upsert_items
    from catalogue.serializers import item_to_row

    convert_s = db_s = 0.0
    items = inserted = 0

    async def flush(rows: list[dict[str, Any]]) -> None:
        nonlocal db_s, inserted
        started = time.perf_counter()
        async with database.write() as conn:
            counts = await upsert_items(conn, rows)
        db_s += time.perf_counter() - started
        inserted += counts.inserted

    rows: list[dict[str, Any]] = []
    with open(path, "rb") as handle:
        started = time.perf_counter()
        for line in handle:
            if line.strip():
                rows.append(item_to_row(orjson.loads(line)))
            if len(rows) >= batch:
                convert_s += time.perf_counter() - started
                await flush(rows)
                items, rows = items + len(rows), []
                started = time.perf_counter()
        convert_s += time.perf_counter() - started
    if rows:
        await flush(rows)
        items += len(rows)
    seconds = convert_s + db_s
    return {
        "items": items,
        "inserted": inserted,
        "seconds": round(seconds, 3),
        "convert_s": round(convert_s, 3),
        "db_s": round(db_s, 3),
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
        loading = _load_catalogue(self.url, self.args.data_dir, manifest, self.args.batch_size)
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
        return _postmaster_pid(self.cluster_dir / "pgdata")

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


def _postmaster_pid(pgdata: Path) -> int | None:
    try:
        return int((pgdata / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


# -- the peer (stac-fastapi-pgstac through the harness's scripts) ----------------------------
class PeerStack:
    """The harness README's steps for pgstac in WORK/peer (= ANCHOR_DIR), as run_peer.sh."""

    def __init__(self, args: argparse.Namespace, root: Path, logs: Path) -> None:
        self.args = args
        self.root = root
        self.logs = logs
        self.pgdata = root / "pgdata"
        self.marker = root / "loaded.json"
        self.pg_port = free_port()
        self.api_port = free_port()
        self.pg_started = False
        self.api_started = False

    def env(self, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            "ANCHOR_DIR": str(self.root),
            "PG_BIN": str(self.args.pg_bin),
            "PGPORT": str(self.pg_port),
            "API_PORT": str(self.api_port),
            "PG_OS_USER": PEER_OS_USER,
            **extra,
        }

    def stack(self, verb: str, log_name: str, **extra: str) -> float:
        script = str(self.args.harness / "pgstac_stack.sh")
        return run_logged(
            [script, verb], self.logs / log_name, env=self.env(**extra), cwd=self.args.harness,
            timeout=180,
        )  # fmt: skip

    def prepare(self, fingerprint: str) -> bool:
        """Link the peer venv as ANCHOR_DIR/venv; True when the loaded DB can be reused."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)
        venv_link = self.root / "venv"
        if venv_link.is_symlink() or venv_link.exists():
            if venv_link.resolve() != self.args.peer_venv.resolve():
                venv_link.unlink()
        if not venv_link.exists():
            venv_link.symlink_to(self.args.peer_venv.resolve())
        if os.geteuid() == 0:
            try:
                pwd.getpwnam(PEER_OS_USER)
            except KeyError:
                subprocess.run(
                    ["useradd", "-M", "-r", "-s", "/usr/sbin/nologin", PEER_OS_USER],
                    check=True, timeout=30,
                )  # fmt: skip
        reuse = (
            self.args.reuse
            and self.marker.is_file()
            and json.loads(self.marker.read_text()).get("data") == fingerprint
            and (self.pgdata / "PG_VERSION").is_file()
        )
        if reuse:
            self.pg_port = _configured_port(self.pgdata / "postgresql.conf") or self.pg_port
            if not port_is_free(self.pg_port):
                raise BenchFailure(f"peer: port {self.pg_port} of the kept cluster is taken")
            log(f"peer: reusing the loaded pgstac cluster in {self.pgdata} (port {self.pg_port})")
        return bool(reuse)

    def init_and_start(self, reuse: bool) -> dict[str, float]:
        steps: dict[str, float] = {}
        if not reuse:
            self.marker.unlink(missing_ok=True)
            if self.pgdata.exists():
                shutil.rmtree(self.pgdata)  # initdb refuses a non-empty folder
            steps["pg_init_s"] = self.stack("pg-init", "peer_pg_init.log")
        self.pg_started = True
        steps["pg_start_s"] = self.stack("pg-start", "peer_pg_start.log")
        return steps

    def load(self, out: Path, fingerprint: str) -> dict[str, Any]:
        env = self.env(PGHOST="127.0.0.1", PGUSER="postgres", PGDATABASE="stac")
        command = [
            str(self.args.peer_venv / "bin" / "python"), str(self.args.harness / "load_pgstac.py"),
            "--data-dir", str(self.args.data_dir), "--out", str(out),
        ]  # fmt: skip
        wall = run_logged(
            command, self.logs / "peer_load.log", env=env, cwd=self.args.harness,
            timeout=load_timeout(self.args.n_items),
        )  # fmt: skip
        result = json.loads(out.read_text())
        result["process_wall_s"] = wall
        self.marker.write_text(json.dumps({"data": fingerprint, "load": result}, indent=2))
        return result

    def start_api(self) -> float:
        self.api_started = True
        return self.stack(
            "api-start", "peer_api_start.log", WORKERS=str(self.args.workers),
            USE_API_HYDRATE="true",
        )  # fmt: skip

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def monitor_roots(self) -> set[int]:
        pid = _postmaster_pid(self.pgdata)
        return {pid} if pid else set()

    def api_roots(self) -> set[int]:
        try:
            return {int((self.root / "api.pid").read_text().strip())}
        except (OSError, ValueError):
            return set()

    def stop(self) -> None:
        if self.api_started:
            try:
                self.stack("api-stop", "peer_stop.log")
            except (BenchFailure, subprocess.TimeoutExpired) as error:
                log(f"WARNING: peer api-stop: {error}")
            self.api_started = False
        if self.pg_started and self._pg_running():
            try:
                self.stack("pg-stop", "peer_stop.log")
                log("peer: cluster stopped (data kept)")
            except (BenchFailure, subprocess.TimeoutExpired) as error:
                log(f"WARNING: peer pg-stop: {error}")
        self.pg_started = False

    def _pg_running(self) -> bool:
        command = [str(self.args.pg_bin / "pg_ctl"), "status", "-D", str(self.pgdata)]
        if os.geteuid() == 0:
            command = ["runuser", "-u", PEER_OS_USER, "--", *command]
        result = subprocess.run(command, capture_output=True, check=False, timeout=30)
        return result.returncode == 0


def _configured_port(conf: Path) -> int | None:
    port = None
    try:
        for line in conf.read_text().splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "port":
                port = int(value.split("#")[0].strip())
    except (OSError, ValueError):
        return None
    return port


# -- report -----------------------------------------------------------------------------------
def _answer(preflight: dict[str, Any] | None) -> tuple[Any, ...] | None:
    if not preflight:
        return None
    return (
        preflight.get("features"),
        preflight.get("ids_sorted_sha1", preflight.get("id")),
        preflight.get("ids_sha1", preflight.get("id")),
    )


def _variants_check(mine: list[list[Any]] | None, theirs: list[list[Any]] | None) -> dict:
    """Variant by variant, ours vs pgstac: how many have the same id set, the same order."""
    if mine is None or theirs is None or len(mine) != len(theirs):
        return {"compared": 0}
    pairs = list(zip(mine, theirs, strict=True))
    differ = [k for k, (a, b) in enumerate(pairs) if a[:2] != b[:2] or a[0] == "error"]
    reordered = [k for k, (a, b) in enumerate(pairs) if a != b and k not in differ]
    return {
        "compared": len(pairs),
        "same_set": len(pairs) - len(differ),
        "same_order": len(pairs) - len(differ) - len(reordered),
        "differ_variants": differ[:20],
        "reordered_variants": reordered[:20],
        "ours_errors": sum(a[0] == "error" for a in mine),
        "pgstac_errors": sum(b[0] == "error" for b in theirs),
    }


def answers_check(
    names: list[str],
    ours: dict | None,
    peer: dict | None,
    anchor: dict | None,
    variants: tuple[dict | None, dict | None] = (None, None),
) -> dict[str, dict[str, Any]]:
    """Per query: compare.py's criterion (feature count + sorted-id hash) and the order hash,
    on the preflight (variant 0) and, when both sides have them, on every variant."""
    checks: dict[str, dict[str, Any]] = {}
    for name in names:
        answers = {
            label: _answer((doc or {}).get("preflight", {}).get(name))
            for label, doc in (("ours", ours), ("pgstac", peer), ("anchor", anchor))
            if doc is not None
        }
        present = {label: a for label, a in answers.items() if a is not None}
        ok_flags = {
            label: bool((doc or {}).get("preflight", {}).get(name, {}).get("ok"))
            for label, doc in (("ours", ours), ("pgstac", peer))
            if doc is not None
        }
        same_set = len({a[:2] for a in present.values()}) <= 1
        same_order = len({a for a in present.values()}) <= 1
        verdict = "same" if same_order else ("same set, ORDER DIFFERS" if same_set else "DIFFERENT")
        every = _variants_check((variants[0] or {}).get(name), (variants[1] or {}).get(name))
        if every["compared"] and every["same_set"] < every["compared"]:
            verdict = f"DIFFERENT ({every['compared'] - every['same_set']} variants)"
        elif every["compared"] and every["same_order"] < every["compared"] and verdict == "same":
            verdict = "same set, ORDER DIFFERS"
        if not all(ok_flags.values()):
            verdict = "PREFLIGHT FAILED"
        checks[name] = {
            "verdict": verdict,
            "answers": present,
            "preflight_ok": ok_flags,
            "variants": every,
        }
    return checks


def _summary_by_name(doc: dict | None) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in (doc or {}).get("summary", [])}


def _cell(summary: dict[str, Any] | None) -> str:
    if not summary:
        return "— | — | —"
    return f"{summary['rps']} | {summary['p50_ms']} | {summary['p95_ms']}"


def side_by_side(names: list[str], ours: dict | None, peer: dict | None, checks: dict) -> str:
    ours_s, peer_s = _summary_by_name(ours), _summary_by_name(peer)
    lines = [
        "| query | ours req/s | ours p50 ms | ours p95 ms | pgstac req/s | pgstac p50 ms "
        "| pgstac p95 ms | ours/pgstac | errors (ours/pgstac) | answers |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name in names:
        mine, theirs = ours_s.get(name), peer_s.get(name)
        ratio = "—"
        if mine and theirs and mine.get("rps") and theirs.get("rps"):
            value = mine["rps"] / theirs["rps"]
            ratio = f"**{value:.2f}**" if value < TARGET_MIN_RATIO else f"{value:.2f}"
            if mine.get("errors") or theirs.get("errors"):
                ratio = f"{value:.2f} (errors!)"
        errors = f"{(mine or {}).get('errors', '—')}/{(theirs or {}).get('errors', '—')}"
        lines.append(
            f"| {name} | {_cell(mine)} | {_cell(theirs)} | {ratio} | {errors} "
            f"| {checks[name]['verdict']} |"
        )
    return "\n".join(lines) + "\n"


def compare_py(args: argparse.Namespace, files: list[Path]) -> str:
    if not files:
        return ""
    result = subprocess.run(
        [args.loadgen_python, str(args.harness / "compare.py"), *map(str, files)],
        capture_output=True, text=True, cwd=args.harness, timeout=60, check=False,
    )  # fmt: skip
    return result.stdout if result.returncode == 0 else f"compare.py failed: {result.stderr}"


def _load_lines(report: dict[str, Any]) -> list[str]:
    lines = ["| | items | items s | items/s | other |", "|---|---:|---:|---:|---|"]
    ours = report.get("ours", {}).get("load")
    if ours:
        lines.append(
            f"| ours (item_to_row + upsert_items, {ours['batch_items_per_transaction']}/tx) "
            f"| {ours['items']} | {ours['items_s']} | {ours['items_per_s']} | convert "
            f"{ours['convert_s']} s + db {ours['db_s']} s; VACUUM ANALYZE "
            f"{ours['vacuum_analyze_s']} s; size {ours['db_size']} |"
        )
    peer = report.get("pgstac", {}).get("load")
    if peer:
        timings = peer.get("timings_s", {})
        lines.append(
            f"| pgstac (load_pgstac.py) | {peer.get('items_total')} | {timings.get('items')} "
            f"| {peer.get('items_per_s')} | migrate {timings.get('migrate')} s; queryables "
            f"{timings.get('queryables_and_indexes')} s; VACUUM ANALYZE "
            f"{timings.get('vacuum_analyze')} s; size {peer.get('db_size')} |"
        )
    return lines


def _answers_lines(checks: dict[str, dict[str, Any]]) -> list[str]:
    lines = [
        "| query | verdict | every variant: same set / same order / compared | preflight "
        "(features, sorted-ids sha1, ordered-ids sha1) per side |",
        "|---|---|---|---|",
    ]
    for name, check in checks.items():
        detail = "; ".join(f"{label}: {answer}" for label, answer in check["answers"].items())
        every = check.get("variants", {})
        variants = (
            f"{every['same_set']} / {every['same_order']} / {every['compared']}"
            if every.get("compared")
            else "—"
        )
        lines.append(f"| {name} | {check['verdict']} | {variants} | {detail} |")
    return lines


def _rss_lines(report: dict[str, Any]) -> list[str]:
    lines = [
        "| side | pid | role | peak RSS MB | samples | command |",
        "|---|---:|---|---:|---:|---|",
    ]
    for side in ("ours", "pgstac"):
        for entry in report.get(side, {}).get("cpu_during_run", {}).get("api_rss", []):
            lines.append(
                f"| {side} | {entry['pid']} | {entry['role']} | {entry['peak_mb']} "
                f"| {entry['samples']} | `{entry['cmd'][:100]}` |"
            )
    return lines


def targets(names: list[str], report: dict[str, Any]) -> list[str]:
    """Issue 3's targets, each with its verdict (ours vs pgstac of this run)."""
    ours_s = _summary_by_name(report.get("ours", {}).get("loadgen"))
    peer_s = _summary_by_name(report.get("pgstac", {}).get("loadgen"))
    ratios = {  # a side with errors counts as 0 req/s
        n: (0.0 if ours_s[n].get("errors") else ours_s[n]["rps"]) / peer_s[n]["rps"]
        for n in names
        if ours_s.get(n, {}).get("rps")
        and peer_s.get(n, {}).get("rps")
        and not peer_s[n].get("errors")
    }

    def verdict(ok: bool) -> str:
        return "met" if ok else "**NOT met**"

    lines = []
    if ratios:
        low = [f"{n} {r:.2f}x" for n, r in ratios.items() if r < TARGET_MIN_RATIO]
        worst = min(ratios, key=ratios.__getitem__)
        lines.append(
            f"- every query >= {TARGET_MIN_RATIO}x pgstac's req/s: {verdict(not low)} (lowest "
            f"{worst} {ratios[worst]:.2f}x){'; below: ' + ', '.join(low) if low else ''}"
        )
        median = statistics.median(ratios.values())
        searches = [r for n, r in ratios.items() if not n.startswith("x_")]
        lines.append(
            f"- median query >= {TARGET_MEDIAN_RATIO}x: {verdict(median >= TARGET_MEDIAN_RATIO)} "
            f"(median {median:.2f}x over {len(ratios)} queries; "
            f"{statistics.median(searches):.2f}x without x_landing)"
            if searches
            else f"- median query: {median:.2f}x"
        )
    p95 = {
        n: ours_s[n]["p95_ms"] for n in names if n.startswith(TARGET_P95_PREFIXES) and n in ours_s
    }
    if p95:
        over = [f"{n} {v} ms" for n, v in p95.items() if v is None or v >= TARGET_P95_MS]
        lines.append(
            f"- ours p95 < {TARGET_P95_MS:.0f} ms on b_/c_/d_ (bbox/intersects + datetime, "
            f"filter): {verdict(not over)} (max {max(v or 0 for v in p95.values())} ms)"
            f"{'; over: ' + ', '.join(over) if over else ''}"
        )
    rss = report.get("ours", {}).get("cpu_during_run", {}).get("api_rss", [])
    if rss:
        peak = max(e["peak_mb"] for e in rss)
        lines.append(
            f"- ours every API process < {TARGET_RSS_MB:.0f} MB resident: "
            f"{verdict(peak < TARGET_RSS_MB)} (peak {peak} MB over {len(rss)} processes)"
        )
    return lines


def _context_lines(report: dict[str, Any]) -> list[str]:
    lines = []
    for side in ("ours", "pgstac"):
        part = report.get(side, {})
        if not part:
            continue
        quiet, cpu = part.get("before_run", {}), part.get("cpu_during_run", {})
        before_load = part.get("before_load", {}).get("busy_cores_samples", "load reused")
        lines.append(
            f"- {side}: before the load busy cores {before_load}; before the run busy cores "
            f"{quiet.get('busy_cores_samples')}, load "
            f"{quiet.get('loadavg')}; during the run box busy {cpu.get('box_busy_cores_mean')} "
            f"cores, bench {cpu.get('bench_cores_mean')}, foreign "
            f"{cpu.get('foreign_cores_mean')} (top foreign: {cpu.get('foreign_top')})"
        )
    return lines


def markdown(report: dict[str, Any], table: str, compare_table: str) -> str:
    meta = report["meta"]
    lines = [
        f"# Search: cubestac vs stac-fastapi-pgstac, {meta['n_items']:,} items "
        f"({meta['started_utc']})",
        "",
        f"Box: {meta['box']['cpus']} CPU {meta['box']['cpu_model']}, Python "
        f"{meta['box']['python']}. Data: {meta['n_items']} items, seed {meta['seed']} "
        f"(`{meta['data_dir']}`). loadgen: concurrency {meta['concurrency']}, warm-up "
        f"{meta['warmup']} s, {meta['duration']} s x {meta['repeat']} (median over repeats). "
        f"Both APIs: uvicorn `--workers {meta['workers']}` on 127.0.0.1, run one after the other. "
        f"Code: {meta['code']['head']} + {meta['code']['modified_or_new_files']} modified/new "
        f"files, schema {meta['code']['schema_head']}.",
        "",
        "## Requests/s and latency",
        "",
        table,
        f"Ratios below the {TARGET_MIN_RATIO}x target in bold. Answers: `same` = equal feature "
        "counts, id sets and id order in the preflight request of every side (incl. the "
        "harness's anchor run when present) and in every variant (ours vs pgstac).",
        "",
        "## Targets (issue 3)",
        "",
        *targets(meta["queries"].split(","), report),
        "",
        "## Same answers",
        "",
        "Preflight = loadgen's variant 0 of each query (what compare.py checks); every variant ="
        " each of the query's rotating variants asked once after the measurement (ours vs "
        "pgstac).",
        "",
        *_answers_lines(report["answers"]),
        "",
        "## API memory (resident set size, sampled every second during the measurement)",
        "",
        *_rss_lines(report),
        "",
        "## Load",
        "",
        *_load_lines(report),
        "",
        "## CPU on the box during the measurements",
        "",
        *_context_lines(report),
        "",
        "## compare.py",
        "",
        compare_table,
    ]
    if report.get("problems"):
        lines += ["## Problems", "", *[f"- {p}" for p in report["problems"]], ""]
    return "\n".join(lines) + "\n"


# -- phases -----------------------------------------------------------------------------------
def phase_ours(args, manifest, fingerprint, results: Path, logs: Path) -> dict[str, Any]:  # noqa: ANN001
    part: dict[str, Any] = {}
    stack = OursStack(args, args.work_dir / "ours", logs)
    try:
        reuse = stack.prepare(fingerprint)
        part["db_start_s"] = stack.start_db()
        if reuse:
            part["load"] = json.loads(stack.marker.read_text())["load"]
            part["load_reused"] = True
        else:
            part["before_load"] = wait_for_quiet(args.max_busy, args.quiet_wait)
            part["load"] = stack.load(manifest, fingerprint)
        part["api_start_s"] = stack.start_api()
        part["before_run"] = wait_for_quiet(args.max_busy, args.quiet_wait)
        api_roots = {stack.api.pid} if stack.api else set()
        with CpuMonitor({pid for pid in [stack.postmaster_pid()] if pid}, api_roots) as monitor:
            doc = run_loadgen(args, stack.base_url, "cubestac-w2", results / "ours_core.json")
        part["cpu_during_run"] = monitor.summary()
        part["variant_answers"] = _try_variant_answers(args, stack.base_url)
        part["result_file"] = str(results / "ours_core.json")
        part["db_port"] = stack.db_port
        part["cluster_dir"] = str(stack.cluster_dir)
        return {**part, "loadgen": doc}
    finally:
        stack.stop_api()
        stack.stop_db()


def phase_peer(args, fingerprint, results: Path, logs: Path) -> dict[str, Any]:  # noqa: ANN001
    part: dict[str, Any] = {}
    stack = PeerStack(args, args.work_dir / "peer", logs)
    try:
        reuse = stack.prepare(fingerprint)
        part.update(stack.init_and_start(reuse))
        if reuse:
            part["load"] = json.loads(stack.marker.read_text())["load"]
            part["load_reused"] = True
        else:
            part["before_load"] = wait_for_quiet(args.max_busy, args.quiet_wait)
            part["load"] = stack.load(results / "load_pgstac.json", fingerprint)
        part["api_start_s"] = stack.start_api()
        part["before_run"] = wait_for_quiet(args.max_busy, args.quiet_wait)
        with CpuMonitor(stack.monitor_roots(), stack.api_roots()) as monitor:
            doc = run_loadgen(
                args, stack.base_url, "pgstac-w2-apihydrate", results / "pgstac_core.json"
            )
        part["cpu_during_run"] = monitor.summary()
        part["variant_answers"] = _try_variant_answers(args, stack.base_url)
        part["result_file"] = str(results / "pgstac_core.json")
        return {**part, "loadgen": doc}
    finally:
        stack.stop()


def _try_variant_answers(args: argparse.Namespace, base_url: str) -> dict | None:
    try:
        return variant_answers(args, base_url)
    except Exception as error:  # noqa: BLE001 - the measurement stands (TimeoutError too)
        log(f"WARNING: the every-variant answers pass failed: {error!r}")
        return None


def finish(args: argparse.Namespace, report: dict[str, Any], results: Path) -> str:
    names = args.queries.split(",")
    ours = report.get("ours", {}).get("loadgen")
    peer = report.get("pgstac", {}).get("loadgen")
    anchor_path = args.harness / ANCHOR_RESULT
    anchor = json.loads(anchor_path.read_text()) if anchor_path.is_file() else None
    wanted = {"seed": args.seed, "n_items": args.n_items}
    if anchor and {k: anchor["meta"]["manifest"].get(k) for k in wanted} != wanted:
        anchor = None  # the anchor ran on other data: its answers do not apply
    variants = tuple(report.get(side, {}).get("variant_answers") for side in ("ours", "pgstac"))
    report["answers"] = answers_check(names, ours, peer, anchor, variants)
    report["answers_reference"] = str(anchor_path) if anchor else None
    table = side_by_side(names, ours, peer, report["answers"])
    files = [Path(report[side]["result_file"]) for side in ("ours", "pgstac")
             if report.get(side, {}).get("result_file")]  # fmt: skip
    text = markdown(report, table, compare_py(args, files))
    slim = {k: v for k, v in report.items() if k not in ("ours", "pgstac")}
    for side in ("ours", "pgstac"):
        if side in report:
            slim[side] = {k: v for k, v in report[side].items() if k != "loadgen"}
            slim[side]["summary"] = report[side].get("loadgen", {}).get("summary")
            slim[side]["preflight"] = report[side].get("loadgen", {}).get("preflight")
            slim[side].pop("variant_answers", None)
            (results / f"{side}_variant_answers.json").write_text(
                json.dumps(report[side].get("variant_answers"), indent=1)
            )
    (results / "core_search.json").write_text(json.dumps(slim, indent=2, default=str))
    (results / "core_search.md").write_text(text)
    if args.copy_md:
        target = REPO / "bench" / "results" / f"search_{size_name(args.n_items)}.md"
        target.parent.mkdir(exist_ok=True)
        target.write_text(text)
    mismatched = [n for n, c in report["answers"].items() if c["verdict"] != "same"]
    if mismatched:
        log("!!! ANSWERS DIFFER for: " + ", ".join(
            f"{n} ({report['answers'][n]['verdict']})" for n in mismatched))  # fmt: skip
    return table


# -- command line -----------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add(
        "--harness",
        type=Path,
        default=REPO.parent / "shared" / "bench" / "pgstac",
        help="the pgstac harness folder (gen_items.py, loadgen.py, compare.py, ...)",
    )
    add(
        "--work-dir",
        type=Path,
        default=Path("/work/benchwork-ours"),
        help="clusters, logs and results go here (parents must be traversable, not /root)",
    )
    add(
        "--data-dir",
        type=Path,
        default=None,
        help="gen_items.py output (default WORK/data<N>); generated when missing",
    )
    add("--n-items", type=int, default=100_000)
    add("--seed", type=int, default=42)
    add(
        "--peer-venv",
        type=Path,
        default=None,
        help="venv with stac-fastapi-pgstac + pypgstac + uvicorn; without it the peer is skipped",
    )
    add("--only", choices=("both", "ours", "peer"), default="both")
    add(
        "--reuse",
        action="store_true",
        help="reuse loaded clusters in WORK (same data) instead of a fresh load",
    )
    add("--duration", type=float, default=10.0)
    add("--warmup", type=float, default=2.0)
    add("--repeat", type=int, default=1)
    add("--concurrency", type=int, default=8)
    add("--workers", type=int, default=2)
    add(
        "--queries",
        default="core",
        help="comma-separated loadgen query names, or 'core' (a, b, c, g, i) or 'all' (a_ .. x_)",
    )
    add("--batch-size", type=int, default=5000, help="items per transaction when loading ours")
    add("--pg-bin", type=Path, default=None, help="PostgreSQL bin folder (default: auto)")
    add("--cubestac", default=None, help="the cubestac executable (default: next to python)")
    add(
        "--loadgen-python",
        default=None,
        help="python running loadgen.py for both sides (default: peer venv's, else this one)",
    )
    add(
        "--max-busy",
        type=float,
        default=0.3,
        help="busy cores of the box tolerated before a timed run (else wait)",
    )
    add("--quiet-wait", type=float, default=300.0, help="max seconds to wait for a quiet box")
    add("--copy-md", action="store_true", help="also write bench/results/search_<N>.md")
    return parser.parse_args(argv)


def check_args(args: argparse.Namespace) -> list[str]:
    """Fill defaults, validate bounds; return notes (e.g. 'peer skipped')."""
    from catalogue.embedded import find_pg_bin_dir

    notes: list[str] = []
    if not (0 < args.duration <= 600 and 0 <= args.warmup <= 60 and 1 <= args.repeat <= 20
            and 1 <= args.concurrency <= 256 and 1 <= args.workers <= 16
            and 100 <= args.batch_size <= 100_000 and 0 <= args.quiet_wait <= 3600):  # fmt: skip
        raise BenchFailure("an option is out of its bounds (see --help)")
    args.harness = args.harness.resolve()
    if not (args.harness / "loadgen.py").is_file():
        raise BenchFailure(f"no harness at {args.harness} (--harness)")
    args.work_dir = args.work_dir.resolve()
    if args.work_dir.is_relative_to("/root"):
        raise BenchFailure("--work-dir must not be under /root (PostgreSQL's users must reach it)")
    args.data_dir = (args.data_dir or args.work_dir / f"data{size_name(args.n_items)}").resolve()
    args.queries = QUERY_SETS.get(args.queries, args.queries)
    args.pg_bin = find_pg_bin_dir(args.pg_bin)
    args.cubestac = args.cubestac or str(Path(sys.executable).parent / "cubestac")
    peer_ok = args.peer_venv is not None and (args.peer_venv / "bin" / "uvicorn").is_file()
    if args.only != "ours" and not peer_ok:
        why = (
            "no --peer-venv given" if args.peer_venv is None else f"no uvicorn in {args.peer_venv}"
        )
        notes.append(f"pgstac peer SKIPPED: {why}")
        args.only = "ours" if args.only == "both" else "none"
    if args.loadgen_python is None:
        args.loadgen_python = str(args.peer_venv / "bin" / "python") if peer_ok else sys.executable
    return notes


def _raise_interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(REPO))
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGINT, _raise_interrupt)  # also when started with SIGINT ignored (&)
    try:
        notes = check_args(args)
    except BenchFailure as error:
        log(f"error: {error}")
        return 2
    for note in notes:
        log(note)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    results = args.work_dir / "results" / stamp
    logs = results / "logs"
    for folder in (args.work_dir, results, logs):
        folder.mkdir(parents=True, exist_ok=True)
    args.work_dir.chmod(0o755)
    report: dict[str, Any] = {
        "meta": {
            "started_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "box": box_description(), "harness": str(args.harness), "data_dir": str(args.data_dir),
            "n_items": args.n_items, "seed": args.seed, "duration": args.duration,
            "warmup": args.warmup, "repeat": args.repeat, "concurrency": args.concurrency,
            "workers": args.workers, "queries": args.queries, "notes": notes,
            "loadgen_python": args.loadgen_python, "code": code_version(),
        },
        "problems": [],
    }  # fmt: skip
    code = 0
    try:
        report["meta"]["disk"] = check_disk(args)
        manifest = ensure_data(args, logs)
        fingerprint = data_fingerprint(manifest)
        if args.only in ("both", "ours"):
            report["ours"] = phase_ours(args, manifest, fingerprint, results, logs)
        if args.only in ("both", "peer"):
            report["pgstac"] = phase_peer(args, fingerprint, results, logs)
    except (BenchFailure, subprocess.SubprocessError, OSError) as error:
        log(f"FAILED: {error}")
        report["problems"].append(str(error))
        code = 1
    except KeyboardInterrupt:
        log("interrupted: everything started was stopped")
        report["problems"].append("interrupted")
        code = 130
    if report.get("ours") or report.get("pgstac"):
        table = finish(args, report, results)
        print(table)
        log(f"results: {results}/core_search.md (+ .json, loadgen files, logs/)")
    return code


if __name__ == "__main__":
    sys.exit(main())
