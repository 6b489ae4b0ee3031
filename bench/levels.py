"""What levels and the time-series layout add to a cube's build time (issue 15 target: levels
at most +25 %).

    /work/main/.venv/bin/python bench/levels.py [--scale 1.0] [--cube cci_biomass ...]

The forest-recovery inputs of the shared harness (`gen_inputs.py`, seed 42; bench/CUBES.md),
one cube per input on the common grid (EPSG:3035, 30 m, tiles of 2048), built by our
builder's own functions -- lazy open, regrid (`cubes.build`), CF dataset, level-0 write
(`cubes.write.write_version`), levels and time-series layout (`cubes.pyramid`) -- on the
same dask cluster as `cubestac cubes` (one in-process worker, 2 threads). The catalogue is
left out (it costs the same in every variant). Each cube is built three times, one after the
other, each from the input files to a complete store:

- `level 0`: the full resolution and its consolidated metadata only, as before levels;
- `levels`: the same plus every level (what `cubestac cubes` writes by default);
- `levels + ts`: the same plus the time-series layout (`timeseries: true`).

The variants run interleaved (`--repeat` rounds of all three, after one untimed warm-up
build) and the fastest build of each is reported, which filters out the other work on a
shared machine.

It prints wall times, the ratios to `level 0`, the time of the pyramid pass alone (inside
`levels`) and its ratio to the rest of that same build (the overhead measured within one
build, which a busy machine disturbs less than a ratio of two builds), the bytes written
and, for cubes with time, a pixel's time series read from each layout; it writes a
markdown table to `<work>/levels-<scale>.md`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.cubes import (  # noqa: E402 - the repo on the path first
    DEFAULT_HARNESS,
    HOOKS,
    cube_config,
    ensure_inputs,
    item_for,
    load_harness,
)

VARIANTS = ("level 0", "levels", "levels + ts")
DEFAULT_CUBES = ["forest_type", "biomass", "cci_biomass", "disturbance"]


@dataclass
class Timing:
    wall_s: float
    pyramid_s: float
    levels: int
    bytes: int
    series_ms: tuple[float, float] | None = None  # a pixel's time series: map / ts layout


def point_series_ms(url: str, variable: str, points: int = 5) -> tuple[float, float]:
    """Median time to open a layout and read one pixel's whole time series, map layout
    (`0/`) against the time-series layout, at the same pixels (files in the page cache)."""
    import statistics

    import numpy as np
    import xarray as xr

    medians = []
    for group in ("0", "timeseries"):
        rng = np.random.default_rng(1)  # the same pixels in both layouts
        times = []
        for _ in range(points):
            started = time.perf_counter()
            cube = xr.open_zarr(f"{url}/{group}", consolidated=True, chunks={})
            row, col = (int(rng.integers(0, n)) for n in (cube.sizes["y"], cube.sizes["x"]))
            series = cube[variable].isel(y=row, x=col).values
            assert series.size == cube.sizes["time"]
            times.append((time.perf_counter() - started) * 1000)
        medians.append(statistics.median(times))
    return medians[0], medians[1]


def build_once(
    spec: Any, item: dict[str, Any], root: Path, client: Any, variant: str, hooks: Path
) -> Timing:
    """One complete build of `spec` from its input file into a fresh store under `root`."""
    import zarr

    from cubes import compute
    from cubes.build import build_cube
    from cubes.cf import cf_dataset
    from cubes.grid import target_geobox
    from cubes.pyramid import build_pyramid, full_resolution_attrs
    from cubes.resolve import ResolvedInput
    from cubes.runner import pyramid_plan
    from cubes.write import store_bytes, write_version

    if variant == "levels + ts":
        spec = spec.model_copy(update={"timeseries": True})
    url = str(root / f"{spec.id}-{variant.replace(' ', '').replace('+', '-')}.zarr")
    shutil.rmtree(url, ignore_errors=True)

    def run(work: Any) -> None:
        compute.run(client, work)

    started = time.perf_counter()
    geobox = target_geobox(spec.grid, spec.id)
    built = build_cube(spec, [ResolvedInput(0, spec.inputs[0], [item])], geobox, hooks)
    dataset = cf_dataset(built, spec, geobox)
    plan = pyramid_plan(dataset, built, spec, geobox)
    dataset.attrs.update(full_resolution_attrs(plan, (dataset.sizes["y"], dataset.sizes["x"])))
    write_version(dataset, dict(plan.encoding), url, spec.zarr_format, run)
    pyramid_started = time.perf_counter()
    levels = 1
    if variant == "level 0":
        for path in ("0", None):  # what the builder consolidated before levels
            zarr.consolidate_metadata(url, path=path, zarr_format=spec.zarr_format)
    else:
        levels = len(build_pyramid(url, spec.zarr_format, plan, run).levels)
    done = time.perf_counter()
    timing = Timing(done - started, done - pyramid_started, levels, store_bytes(url))
    timed = [str(n) for n, v in dataset.data_vars.items() if "time" in v.dims]
    if variant == "levels + ts" and timed:
        timing.series_ms = point_series_ms(url, timed[0])
    shutil.rmtree(url, ignore_errors=True)
    return timing


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--work", type=Path, default=Path("/work/benchwork/levels"))
    parser.add_argument("--harness", type=Path, default=DEFAULT_HARNESS)
    parser.add_argument("--cube", nargs="*", default=DEFAULT_CUBES, help="harness cube names")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--repeat", type=int, default=2,
        help="builds per variant, interleaved (A B C A B C); the fastest of each is reported",
    )  # fmt: skip
    parser.add_argument("--memory-limit", default="4GB")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    from cubes.compute import ComputePool, ComputeSettings
    from cubes.spec import CubeSpec

    harness = args.harness.resolve()
    common = load_harness(harness, "common")
    data = args.work / f"data-{args.scale:g}"
    manifest = ensure_inputs(harness, data, args.scale)
    hooks = args.work / "config"
    hooks.mkdir(parents=True, exist_ok=True)
    (hooks / "bench_hooks.py").write_text(HOOKS)
    sys.path.insert(0, str(hooks))
    specs = {spec["id"]: spec for spec in cube_config(common, manifest)["cubes"]}
    root = args.work / f"out-{args.scale:g}"
    root.mkdir(parents=True, exist_ok=True)
    print(f"load average (1 min) at start: {os.getloadavg()[0]:.2f}", flush=True)
    settings = ComputeSettings(
        workers=1, threads=args.threads, memory_limit=args.memory_limit, processes=False
    )
    rows = []
    with ComputePool(settings) as pool:
        for cube in args.cube:
            spec = CubeSpec.model_validate(specs[cube.replace("_", "-")])
            item = item_for(cube, manifest["inputs"][cube], data)
            client = pool.client(spec.compute)
            if not rows:  # warm up (imports, GDAL, the cluster's first tasks), untimed
                build_once(spec, item, root, client, VARIANTS[0], hooks)
            runs: dict[str, list[Timing]] = {variant: [] for variant in VARIANTS}
            for _ in range(args.repeat):
                for variant in VARIANTS:
                    runs[variant].append(build_once(spec, item, root, client, variant, hooks))
                    print(f"{cube:12s} {variant:12s} {runs[variant][-1]}", flush=True)
            best = {v: min(runs[v], key=lambda t: t.wall_s) for v in VARIANTS}
            rows.append((cube, spec, best))
    table = report(rows, args, os.getloadavg()[0])
    (args.work / f"levels-{args.scale:g}.md").write_text(table)
    print(table)


def report(rows: list[tuple[str, Any, dict[str, Timing]]], args: Any, load: float) -> str:
    lines = [
        f"scale {args.scale:g}, 1 worker x {args.threads} threads (in-process), fastest of "
        f"{args.repeat} interleaved builds per variant, load average at the end {load:.2f}",
        "",
        "| cube | grid (px) | levels | level 0 s | levels s | levels + ts s | levels / level 0 "
        "| levels + ts / level 0 | pyramid pass s | pass / rest of its build "
        "| MB level 0 / levels / + ts | pixel series ms, map / ts layout |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for cube, spec, t in rows:
        base, levels, series = (t[v] for v in VARIANTS)
        height, width = spec.grid.shape
        lines.append(
            f"| {cube} | {width} x {height} | {levels.levels} | {base.wall_s:.1f} "
            f"| {levels.wall_s:.1f} | {series.wall_s:.1f} | {levels.wall_s / base.wall_s:.2f} "
            f"| {series.wall_s / base.wall_s:.2f} | {levels.pyramid_s:.1f} "
            f"| {levels.pyramid_s / (levels.wall_s - levels.pyramid_s):.2f} "
            f"| {base.bytes / 1e6:.0f} / {levels.bytes / 1e6:.0f} / {series.bytes / 1e6:.0f} "
            f"| {_series(series)} |"
        )
    total = {v: sum(t[v].wall_s for _, _, t in rows) for v in VARIANTS}
    lines.append(
        f"| **total** | | | {total['level 0']:.1f} | {total['levels']:.1f} "
        f"| {total['levels + ts']:.1f} | **{total['levels'] / total['level 0']:.2f}** "
        f"| {total['levels + ts'] / total['level 0']:.2f} | | | | |"
    )
    return "\n".join(lines) + "\n"


def _series(timing: Timing) -> str:
    if timing.series_ms is None:
        return "no time axis"
    on_map, on_series = timing.series_ms
    return f"{on_map:.0f} / {on_series:.0f}"


if __name__ == "__main__":
    main()
