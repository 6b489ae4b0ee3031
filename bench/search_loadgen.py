"""Running the harness's loadgen.py against one API, and reading the answers of every
variant of every query (for the same-answers check).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from search_common import BenchFailure, log


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
