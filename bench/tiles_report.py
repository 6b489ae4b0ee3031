"""The markdown report of bench/tiles.py: the side-by-side throughput tables with the
ratios to titiler-xarray, the cold/warm latency per zoom, and the issue's targets."""

from __future__ import annotations

from typing import Any

REFERENCE = "titiler-xarray"
TARGET_RATIO = {"mixed": 2.0, "zoomed-out": 10.0}
TARGET_WARM_MS, TARGET_COLD_MS = 20.0, 150.0
OURS = ("cubestac", "cubestac-nocache")


def render(facts: dict[str, Any]) -> str:
    lines = _header(facts)
    for set_name in ("mixed", "zoomed-out"):
        rows = [r for r in facts["throughput"] if r["set"] == set_name]
        if rows:
            lines += _throughput_table(set_name, rows, facts["sets"].get(set_name))
    if facts["latency"]:
        lines += _latency_table(facts["latency"])
    lines += _targets(facts)
    return "\n".join(lines) + "\n"


def _header(facts: dict[str, Any]) -> list[str]:
    site, box, args = facts["site"], facts["box"], facts["args"]
    lines = [
        f"# Map tiles: cubestac vs titiler-xarray vs xpublish-tiles ({facts['code']['head']})",
        "",
        f"- command: `{facts['command']}`",
        f"- box: {box['cpus']} cores ({box['cpu_model']}), shared with other work; load "
        f"average at the end {', '.join(f'{v:.2f}' for v in facts['loadavg'])}",
        f"- cube: forest-recovery `{args['variable']}` at scale {site['scale']}, built by "
        f"`cubestac cubes` ({site['code']['head']}, build s {site['build_s']}, CONFIG extra "
        f"{site.get('cube_extra') or '{}'}); every side reads `{facts['level0']}`",
        f"- servers: one at a time, uvicorn {args['workers']} worker(s) each; client: one "
        f"asyncio aiohttp process, concurrency {args['concurrency']}, {args['duration']} s per "
        f"measured run after one unmeasured pass over the same tiles",
        f"- tile sets: {facts['sets']}; {'; '.join(facts['notes'])}",
        "",
        "| side | version | tile request |",
        "|---|---|---|",
    ]
    for side in facts["sides"]:
        lines.append(f"| {side['side']} | {side['version']} | `{side['tile']}?{side['params']}` |")
    return [*lines, ""]


def _ratio(row: dict[str, Any], reference: dict[str, Any] | None) -> str:
    if not reference or not reference.get("tiles_per_s") or not row.get("tiles_per_s"):
        return "-"
    return f"{row['tiles_per_s'] / reference['tiles_per_s']:.2f}x"


def _throughput_table(set_name: str, rows: list[dict[str, Any]], unique: Any) -> list[str]:
    reference = next((r for r in rows if r["side"] == REFERENCE), None)
    lines = [
        f"## Throughput, {set_name} tiles ({unique} distinct tiles, cycled)",
        "",
        f"| side | tiles/s | vs {REFERENCE} | p50 ms | p95 ms | PNG / requests | server cores "
        "| server CPU ms/tile | client cores | foreign cores |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['side']} | {row['tiles_per_s']} | {_ratio(row, reference)} | "
            f"{row['p50_ms']} | {row['p95_ms']} | {row['ok_png']} / {row['requests']} | "
            f"{row['server_cores']} | {row['server_cpu_ms_per_tile']} | {row['client_cores']} "
            f"| {row['foreign_cores']} |"
        )
    bad = [r for r in rows if r["ok_png"] != r["requests"]]
    for row in bad:
        lines.append(f"\n!!! {row['side']}: not every answer was a PNG: {row['statuses']} "
                     f"{row['first_errors']}")  # fmt: skip
    return [*lines, ""]


def _latency_table(latency: list[dict[str, Any]]) -> list[str]:
    lines = [
        "## Latency per zoom, one request at a time on one connection",
        "",
        "cold: a fresh server process, one tile of another variable of the cube (the store "
        "opened, kernels compiled, no chunk of the measured variable read), the OS page cache "
        "dropped, then tiles never asked before; warm: the same tiles again. Pooled over the "
        "rounds (a fresh process each) of a zoom.",
        "",
        "| side | zoom | rounds x tiles | cold p50 ms | cold max ms | warm p50 ms "
        "| warm p95 ms | page cache dropped |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (side, zoom), pooled in pooled_latency(latency).items():
        lines.append(
            f"| {side} | {zoom} | {pooled['rounds']} x {pooled['tiles']} | "
            f"{pooled['cold_p50']} | {pooled['cold_max']} | {pooled['warm_p50']} | "
            f"{pooled['warm_p95']} | {pooled['dropped']} |"
        )
    return [*lines, ""]


def pooled_latency(latency: list[dict[str, Any]]) -> dict[tuple[str, int], dict[str, Any]]:
    """Per side and zoom: the cold and warm latencies of every round together."""
    from tiles_load import percentile

    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for row in latency:
        groups.setdefault((row["side"], row["zoom"]), []).append(row)
    pooled = {}
    for key, rows in groups.items():
        cold = sorted(v for r in rows for v in r["cold_ms"])
        warm = sorted(v for r in rows for v in r["warm_ms"])
        pooled[key] = {
            "rounds": len(rows), "tiles": rows[0]["tiles"],
            "cold_p50": round(percentile(cold, 50), 1), "cold_max": cold[-1] if cold else None,
            "warm_p50": round(percentile(warm, 50), 1),
            "warm_p95": round(percentile(warm, 95), 1),
            "dropped": all(r["page_cache_dropped"] for r in rows),
        }  # fmt: skip
    return pooled


def _targets(facts: dict[str, Any]) -> list[str]:
    lines = ["## Targets (issue 15)", ""]
    for set_name, target in TARGET_RATIO.items():
        rows = [r for r in facts["throughput"] if r["set"] == set_name]
        reference = next((r for r in rows if r["side"] == REFERENCE), None)
        for row in (r for r in rows if r["side"] in OURS):
            ratio = _ratio(row, reference)
            verdict = _verdict(ratio, target)
            lines.append(f"- {set_name}: {row['side']} {ratio} of {REFERENCE} "
                         f"(target >= {target:g}x): {verdict}")  # fmt: skip
    pooled = pooled_latency(facts["latency"])
    for side in OURS:
        rows = [v for (name, _), v in pooled.items() if name == side]
        if not rows:
            continue
        worst_warm = max(r["warm_p50"] for r in rows)
        worst_cold = max(r["cold_p50"] for r in rows)
        lines.append(
            f"- {side}: worst zoom warm p50 {worst_warm} ms (target <= {TARGET_WARM_MS:g}): "
            f"{'met' if worst_warm <= TARGET_WARM_MS else 'NOT met'}; worst zoom cold p50 "
            f"{worst_cold} ms (target <= {TARGET_COLD_MS:g}): "
            f"{'met' if worst_cold <= TARGET_COLD_MS else 'NOT met'}"
        )
    return lines


def _verdict(ratio: str, target: float) -> str:
    if ratio == "-":
        return "not measured"
    return "met" if float(ratio.rstrip("x")) >= target else "NOT met"
