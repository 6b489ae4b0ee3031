"""Map tiles of one cube: cubestac against titiler-xarray and xpublish-tiles, same Zarr,
same machine, same worker count, one server at a time (issue 15, "Targets").

    CUBESTAC_BENCH_WORK=/scratch/tiles .venv/bin/python bench/tiles.py \\
        --titiler-python /scratch/venv/bin/python --xpublish-python /scratch/venv-xpt/bin/python

Phases (notes, set-up and figures in bench/README.md and bench/results/tiles_<date>.md):

1. **Cube**: the forest-recovery inputs of the shared harness (`gen_inputs.py`, seed 42) at
   `--scale` (1.0 = 5156 x 6418 px, 30 m, EPSG:3035), built by `cubestac cubes CONFIG` into
   `<work>/site-<scale>` with a private catalogue (bench/tiles_data.py); reused on later runs.
2. **Tiles**: WebMercatorQuad tiles that touch the cube. *Mixed*: up to `--per-zoom` tiles
   (seeded draw) of every zoom from the first zoomed-out one to one past the native zoom.
   *Zoomed-out*: every tile of the zooms at which the whole cube fits in 1-4 tiles.
3. **Throughput** (each side alone): one unmeasured pass over the set (it also checks that
   every answer is a PNG), then the same tiles in the same order, cycled, at `--concurrency`
   for `--duration` s (at least one pass). tiles/s, p50, p95; CPU of the server's process
   tree, of this client, and of everything else on the box (foreign load) over the run.
4. **Latency** (`--latency`): for each zoom, a fresh server process, then the OS page cache
   dropped (root), then `--latency-per-zoom` tiles never asked before, one at a time on
   one connection (cold); then the same tiles again `--warm-repeats` times (warm).
5. **Report**: `<work>/results/<stamp>/tiles.md` + `.json` (and `--results-md` copies it).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tiles_data
import tiles_load
import tiles_report
import tiles_sides
from search_common import REPO, BenchFailure, box_description, code_version
from tiles_data import log
from tiles_load import Footprint, Tile
from tiles_sides import Side

DEFAULT_HARNESS = REPO.parent / "shared" / "bench" / "cubes"
ALL_SIDES = ("cubestac", "cubestac-nocache", "titiler-xarray", "xpublish-tiles")


@dataclass
class Run:
    """What one benchmark run knows and has measured."""

    args: argparse.Namespace
    site: tiles_data.Site
    level0: str
    footprint: Footprint
    sets: dict[str, list[Tile]] = field(default_factory=dict)
    sides: list[Side] = field(default_factory=list)
    throughput: list[dict[str, Any]] = field(default_factory=list)
    latency: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def parse_args() -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, default=env("CUBESTAC_BENCH_WORK"),
                        help="scratch folder (inputs, cubes, catalogue, results); "
                        "default $CUBESTAC_BENCH_WORK")  # fmt: skip
    parser.add_argument("--harness", type=Path, default=DEFAULT_HARNESS)
    parser.add_argument("--scale", type=float, default=1.0, help="1.0: 5156 x 6418 px")
    parser.add_argument("--variable", choices=sorted(tiles_sides.STYLES), default="agb")
    parser.add_argument("--sides", default=",".join(ALL_SIDES))
    parser.add_argument("--titiler-python", default=env("TILEBENCH_TITILER_PYTHON"))
    parser.add_argument("--xpublish-python", default=env("TILEBENCH_XPUBLISH_PYTHON"))
    parser.add_argument("--xpublish-tree", action="store_true",
                        help="xpublish-tiles reads the multiscales root (DataTree)")  # fmt: skip
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--per-zoom", type=int, default=12)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--latency", action="store_true", help="cold and warm p50 per zoom")
    parser.add_argument("--latency-per-zoom", type=int, default=6)
    parser.add_argument("--latency-sides", default="cubestac,cubestac-nocache,titiler-xarray")
    parser.add_argument("--warm-repeats", type=int, default=3)
    parser.add_argument("--no-drop-caches", action="store_true")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the cubes")
    parser.add_argument("--cube-extra", type=json.loads, default={},
                        help="JSON merged into each cube of the CONFIG")  # fmt: skip
    parser.add_argument("--results-md", type=Path, help="also write the report here")
    args = parser.parse_args()
    if args.work is None:
        parser.error("give --work DIR or set CUBESTAC_BENCH_WORK (a scratch folder)")
    return args


def main() -> None:
    args = parse_args()
    site = tiles_data.build_site(
        args.harness.resolve(), args.work, args.scale, args.cube_extra, args.rebuild
    )
    cube = tiles_sides.CUBE_OF[args.variable]
    level0 = tiles_data.level0_url(site.stores[cube])
    run = Run(args, site, level0, Footprint.of_store(level0, args.variable))
    choose_tiles(run)
    database_url = tiles_data.database_url(site)
    try:
        run.sides = make_sides(run, database_url)
        if not args.skip_throughput:
            for side in run.sides:
                measure_throughput(run, side)
        if args.latency:
            chosen = {name.strip() for name in args.latency_sides.split(",")}
            for side in (s for s in run.sides if s.name in chosen):
                measure_latency(run, side)
    finally:
        for side in run.sides:
            side.stop()
        tiles_data.stop_catalogue(site)
    write_report(run)


def choose_tiles(run: Run) -> None:
    out = tiles_load.zoomed_out_zooms(run.footprint)
    native = tiles_load.native_zoom(run.footprint, resolution_of(run.footprint, run.level0))
    run.sets["mixed"] = tiles_load.mixed_set(
        run.footprint, range(out[0], native + 2), run.args.per_zoom, run.args.seed
    )
    run.sets["zoomed-out"] = [t for z in out for t in run.footprint.tiles(z)]
    run.notes.append(
        f"zoomed-out zooms {out}; native zoom {native}; mixed zooms {out[0]}..{native + 1}"
    )
    log(run.notes[-1] + f"; {len(run.sets['mixed'])} mixed tiles")


def resolution_of(footprint: Footprint, level0: str) -> float:
    import zarr

    group = zarr.open_group(level0, mode="r")
    return float((footprint.east - footprint.west) / group["x"].shape[0])


def make_sides(run: Run, database_url: str) -> list[Side]:
    args = run.args
    style = tiles_sides.STYLES[args.variable]
    logs = args.work / "logs"
    wanted = [name.strip() for name in args.sides.split(",") if name.strip()]
    sides: list[Side] = []
    for name in wanted:
        side = _side(run, name, style, database_url, logs)
        if side is not None:
            sides.append(side)
    return sides


def _side(
    run: Run, name: str, style: tiles_sides.Style, database_url: str, logs: Path
) -> Side | None:
    args = run.args
    if name in ("cubestac", "cubestac-nocache"):
        return tiles_sides.ours(database_url, style, args.workers, logs, name == "cubestac")
    if name == "titiler-xarray":
        if not args.titiler_python:
            run.notes.append("titiler-xarray skipped: no --titiler-python")
            return None
        return tiles_sides.titiler(args.titiler_python, run.level0, style, args.workers, logs)
    if name == "xpublish-tiles":
        if not args.xpublish_python:
            run.notes.append("xpublish-tiles skipped: no --xpublish-python")
            return None
        store = run.site.stores[tiles_sides.CUBE_OF[args.variable]]
        path = store if args.xpublish_tree else run.level0
        return tiles_sides.xpublish(
            args.xpublish_python, path, args.xpublish_tree, style, args.workers, logs
        )
    raise BenchFailure(f"unknown side {name!r} (known: {', '.join(ALL_SIDES)})")


def urls_of(side: Side, tiles: list[Tile]) -> list[str]:
    build = tiles_load.url_builder(side.template, side.params)
    return [build(tile) for tile in tiles]


def measure_throughput(run: Run, side: Side) -> None:
    args = run.args
    log(f"{side.name}: starting")
    side.start()
    try:
        for set_name, tiles in run.sets.items():
            urls = urls_of(side, tiles)
            warmup = tiles_load.load(urls, args.concurrency, 0.0, 1)
            row = measured(side, lambda u=urls: tiles_load.load(u, args.concurrency, args.duration))
            row.update(side=side.name, set=set_name, unique_tiles=len(urls),
                       warmup=warmup.summary())  # fmt: skip
            run.throughput.append(row)
            log(f"{side.name} {set_name}: {row['tiles_per_s']} tiles/s, p50 {row['p50_ms']} "
                f"ms, p95 {row['p95_ms']} ms, {row['statuses']}")  # fmt: skip
    finally:
        side.stop()


def measured(side: Side, action: Callable[[], tiles_load.LoadResult]) -> dict[str, Any]:
    """Run `action` and charge the CPU of the box to the server, this client and the rest."""
    server0, busy0 = side.cpu_seconds(), box_busy_seconds()
    result = action()
    server_s, busy_s = side.cpu_seconds() - server0, box_busy_seconds() - busy0
    row = result.summary()
    wall = max(result.wall_s, 1e-9)
    foreign = max(busy_s - server_s - result.client_cpu_s, 0.0)
    row.update(server_cores=round(server_s / wall, 2), foreign_cores=round(foreign / wall, 2),
               server_cpu_ms_per_tile=round(1000 * server_s / max(result.ok, 1), 1))  # fmt: skip
    return row


def box_busy_seconds() -> float:
    """CPU seconds all processes of the box spent busy so far (/proc/stat)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(v) for v in fields]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def measure_latency(run: Run, side: Side) -> None:
    """Per zoom and round: a fresh process, one primer tile of another variable of the cube,
    the page cache dropped, then the cold tiles one at a time, then the same tiles again
    (warm), all on one connection. Zooms with fewer tiles than `--latency-per-zoom` get
    more rounds (at most 3), each on a fresh process."""
    args = run.args
    rng = random.Random(args.seed + 1)
    for zoom in latency_zooms(run):
        candidates = run.footprint.tiles(zoom)
        tiles = rng.sample(candidates, min(args.latency_per_zoom, len(candidates)))
        rounds = min(3, math.ceil(args.latency_per_zoom / len(tiles)))
        for round_index in range(rounds):
            row = latency_round(run, side, tiles)
            row.update(side=side.name, zoom=zoom, round=round_index + 1)
            run.latency.append(row)
            log(f"{side.name} z{zoom} round {round_index + 1}: cold p50 "
                f"{row['cold']['p50_ms']} ms, warm p50 {row['warm']['p50_ms']} ms")  # fmt: skip
    side.stop()


def latency_round(run: Run, side: Side, tiles: list[Tile]) -> dict[str, Any]:
    args = run.args
    side.stop()
    side.start()
    urls = urls_of(side, tiles)
    primer = None
    if side.primer_params is not None:
        primer = tiles_load.url_builder(side.template, side.primer_params)(tiles[0])

    def between() -> bool:
        return False if args.no_drop_caches else tiles_sides.drop_page_cache()

    primed, dropped, cold, warm = tiles_load.probe(primer, urls, urls * args.warm_repeats, between)
    return {"tiles": len(tiles), "page_cache_dropped": dropped,
            "primer": primed.summary() if primed else None,
            "cold": cold.summary(), "warm": warm.summary(),
            "cold_ms": [round(v, 1) for v in cold.latencies_ms],
            "warm_ms": [round(v, 1) for v in warm.latencies_ms]}  # fmt: skip


def latency_zooms(run: Run) -> list[int]:
    return sorted({t[0] for name in ("mixed", "zoomed-out") for t in run.sets[name]})


def write_report(run: Run) -> None:
    args = run.args
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    folder = args.work / "results" / stamp
    folder.mkdir(parents=True, exist_ok=True)
    facts = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "code": code_version(), "box": box_description(), "site": run.site.facts,
        "level0": run.level0, "sets": {k: len(v) for k, v in run.sets.items()},
        "sides": tiles_sides.describe(run.sides), "notes": run.notes,
        "throughput": run.throughput, "latency": run.latency,
        "args": {k: str(v) for k, v in vars(args).items()}, "loadavg": os.getloadavg(),
    }  # fmt: skip
    (folder / "tiles.json").write_text(json.dumps(facts, indent=1, default=str))
    for name, tiles in run.sets.items():
        tiles_load.save_tiles(folder / f"tiles-{name}.txt", tiles)
    markdown = tiles_report.render(facts)
    (folder / "tiles.md").write_text(markdown)
    if args.results_md:
        args.results_md.write_text(markdown)
    print(markdown)
    log(f"report: {folder / 'tiles.md'}")


if __name__ == "__main__":
    try:
        main()
    except BenchFailure as failure:
        raise SystemExit(f"tiles benchmark failed: {failure}") from failure
