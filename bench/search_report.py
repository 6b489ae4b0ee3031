"""The core-search benchmark's report: side-by-side table, issue 3's targets, the
same-answers checks, memory and CPU context; markdown.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
from pathlib import Path
from typing import Any

from search_common import (
    TARGET_MEDIAN_RATIO,
    TARGET_MIN_RATIO,
    TARGET_P95_MS,
    TARGET_P95_PREFIXES,
    TARGET_RSS_MB,
)


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
        "| pgstac p95 ms | ours/pgstac | errors (ours/pgstac) | client CPU % (ours/pgstac) "
        "| answers |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
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
        client = (
            f"{(mine or {}).get('client_cpu_pct', '—')}/{(theirs or {}).get('client_cpu_pct', '—')}"
        )
        lines.append(
            f"| {name} | {_cell(mine)} | {_cell(theirs)} | {ratio} | {errors} | {client} "
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


def _disk_lines(report: dict[str, Any]) -> list[str]:
    """Disk (database, items table, its indexes) and the cluster's memory, per side."""
    n_items = report["meta"]["n_items"]
    lines = [
        "| side | database GB | items table GB | items indexes GB | partitions | GB per "
        "million items (database / table / indexes) | cluster RSS MB / PSS MB (processes) |",
        "|---|---:|---:|---:|---:|---|---|",
    ]
    for side in ("ours", "pgstac"):
        found = report.get(side, {}).get("sizes") or {}
        if "database_bytes" not in found:
            continue
        scale = 1e6 / n_items / 1e9
        memory = report.get(side, {}).get("cluster_memory") or {}
        lines.append(
            f"| {side} | {found['database_bytes'] / 1e9:.2f} | "
            f"{found['items_table_bytes'] / 1e9:.2f} | {found['items_index_bytes'] / 1e9:.2f} "
            f"| {found['items_partitions']} | {found['database_bytes'] * scale:.2f} / "
            f"{found['items_table_bytes'] * scale:.2f} / {found['items_index_bytes'] * scale:.2f}"
            f" | {memory.get('rss_mb')} / {memory.get('pss_mb')} ({memory.get('processes')}) |"
        )
    lines += ["", "Indexes (MB):", ""]
    for side in ("ours", "pgstac"):
        indexes = (report.get(side, {}).get("sizes") or {}).get("indexes") or {}
        biggest = sorted(indexes.items(), key=lambda kv: -kv[1])[:12]
        lines.append(
            f"- {side}: " + ", ".join(f"{name} {size / 1e6:.0f}" for name, size in biggest)
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
        "## Disk and memory (after the measurement)",
        "",
        *_disk_lines(report),
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
