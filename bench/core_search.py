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
import datetime as dt
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from search_common import (
    ANCHOR_RESULT,
    QUERY_SETS,
    REPO,
    BenchFailure,
    box_description,
    code_version,
    log,
)
from search_cpu import CpuMonitor, wait_for_quiet
from search_data import check_disk, data_fingerprint, ensure_data, size_name
from search_loadgen import run_loadgen, variant_answers
from search_ours import OursStack
from search_peer import PeerStack
from search_report import answers_check, compare_py, markdown, side_by_side
from search_sizes import cluster_memory


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
        if args.load_only:
            return part
        part["api_start_s"] = stack.start_api()
        part["before_run"] = wait_for_quiet(args.max_busy, args.quiet_wait)
        api_roots = {stack.api.pid} if stack.api else set()
        with CpuMonitor({pid for pid in [stack.postmaster_pid()] if pid}, api_roots) as monitor:
            doc = run_loadgen(args, stack.base_url, "cubestac-w2", results / "ours_core.json")
        part["cpu_during_run"] = monitor.summary()
        part["variant_answers"] = _try_variant_answers(args, stack.base_url)
        part["cluster_memory"] = cluster_memory(stack.postmaster_pid())
        part["sizes"] = stack.sizes()
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
        if args.load_only:
            return part
        part["api_start_s"] = stack.start_api()
        part["before_run"] = wait_for_quiet(args.max_busy, args.quiet_wait)
        with CpuMonitor(stack.monitor_roots(), stack.api_roots()) as monitor:
            doc = run_loadgen(
                args, stack.base_url, "pgstac-w2-apihydrate", results / "pgstac_core.json"
            )
        part["cpu_during_run"] = monitor.summary()
        part["variant_answers"] = _try_variant_answers(args, stack.base_url)
        part["cluster_memory"] = cluster_memory(next(iter(stack.monitor_roots()), None))
        part["sizes"] = stack.sizes()
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
        target = REPO / "bench" / "results" / f"core_search_{size_name(args.n_items)}.md"
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
    add("--writers", type=int, default=2, help="concurrent writer transactions when loading ours")
    add(
        "--load-only",
        action="store_true",
        help="load (fresh) and stop: measure later with --reuse (e.g. both sides loaded at once)",
    )
    add(
        "--trust-manifest",
        action="store_true",
        help="skip the sha256 check of the ndjson files (e.g. deleted after a --load-only load)",
    )
    add(
        "--pgstac-partition-trunc",
        action="append",
        default=[],
        metavar="ID=year|month",
        help="pgstac: partition this collection by time too (partition_trunc), repeatable",
    )
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
    add("--copy-md", action="store_true", help="also write bench/results/core_search_<N>.md")
    return parser.parse_args(argv)


def check_args(args: argparse.Namespace) -> list[str]:
    """Fill defaults, validate bounds; return notes (e.g. 'peer skipped')."""
    from catalogue.embedded import find_pg_bin_dir

    notes: list[str] = []
    if not (0 < args.duration <= 600 and 0 <= args.warmup <= 60 and 1 <= args.repeat <= 20
            and 1 <= args.concurrency <= 256 and 1 <= args.workers <= 16
            and 100 <= args.batch_size <= 100_000 and 1 <= args.writers <= 4
            and 0 <= args.quiet_wait <= 3600):  # fmt: skip
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
    if args.load_only:
        (results / "load_only.json").write_text(json.dumps(report, indent=2, default=str))
        log(f"load only: {results}/load_only.json")
    elif report.get("ours") or report.get("pgstac"):
        table = finish(args, report, results)
        print(table)
        log(f"results: {results}/core_search.md (+ .json, loadgen files, logs/)")
    return code


if __name__ == "__main__":
    sys.exit(main())
