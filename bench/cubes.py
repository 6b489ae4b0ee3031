"""Forest-recovery cube benchmark: `cubestac cubes` against a direct GDAL warp, same run.

    /work/venv/bin/python bench/cubes.py [--scale 1.0] [--work /work/benchwork/cubes]

What it does (issue 5, "Benchmark"; notes and figures in bench/CUBES.md):

1. Generates the six synthetic inputs at their native CRSs and resolutions with the shared
   harness (`gen_inputs.py`, seed 42) unless `<work>/data-<scale>` already holds them.
2. Starts a throwaway PostGIS (the project's embedded cluster; or `DATABASE_URL`), migrates
   it and registers each input as a catalogue item of its own collection.
3. Writes a CONFIG with one cube per input on the common grid (EPSG:3035, 30 m, tiles of
   2048; the forest-age ensemble reduced by user code), as the harness defines them.
4. Runs, one side after the other, each cube in its own process tree: the floor
   (`build_gdal.py`: `rasterio.warp.reproject` per slice into Zarr) and ours
   (`cubestac cubes CONFIG --cube <id>`: catalogue, dask cluster, Zarr, publish), measuring
   wall time, bytes written and peak RSS of the whole tree (the harness's `measure.py`).
5. Compares every cube with the floor at sampled pixels (the harness's `check.py`) and
   prints one table; JSON lines go to `<work>/out-<scale>/results.jsonl`.

The machine is shared: it prints the load average first and refuses to start above
`--max-load` unless told otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
DEFAULT_HARNESS = REPO.parent / "shared" / "bench" / "cubes"
COLLECTION = "forest-recovery"
RESAMPLING = {"mode": "mode", "nearest": "nearest", "bilinear": "bilinear"}
MEDIA_TYPES = {
    "gtiff": "image/tiff; application=geotiff",
    "gtiff-cog": "image/tiff; application=geotiff; profile=cloud-optimized",
    "netcdf": "application/x-netcdf",
    "zarr": "application/vnd.zarr",
}
HOOKS = '''"""User code of the forest-recovery CONFIG: reduce the age ensemble before the warp."""

import xarray as xr


def member_mean(ds: xr.Dataset) -> xr.Dataset:
    return ds.mean("member", skipna=True, keep_attrs=True, dtype="float32")
'''


def load_harness(folder: Path, name: str) -> ModuleType:
    """A module of the shared harness, by path (it is used unchanged, never written to)."""
    sys.path.insert(0, str(folder))
    spec = importlib.util.spec_from_file_location(f"harness_{name}", folder / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def ensure_inputs(harness: Path, data: Path, scale: float) -> dict[str, Any]:
    manifest = data / "manifest.json"
    if manifest.exists() and json.loads(manifest.read_text()).get("scale") == scale:
        return json.loads(manifest.read_text())
    data.mkdir(parents=True, exist_ok=True)
    print(f"generating inputs at scale {scale} into {data} ...", flush=True)
    subprocess.run(
        [sys.executable, str(harness / "gen_inputs.py"), "--out", str(data),
         "--scale", str(scale), "--seed", "42"],
        check=True,
    )  # fmt: skip
    return json.loads(manifest.read_text())


def item_for(cube: str, info: dict[str, Any], data: Path) -> dict[str, Any]:
    """A catalogue item for one generated file: footprint in WGS84, time span if any."""
    from affine import Affine
    from odc.geo.geobox import GeoBox

    grid = info["grid"]
    box = GeoBox((grid["height"], grid["width"]), Affine(*grid["transform"]), grid["crs"])
    geometry = box.extent.to_crs("EPSG:4326", resolution=abs(grid["res"]) * 200).json
    xs, ys = zip(*geometry["coordinates"][0], strict=True)
    years = info.get("time")
    when = {"datetime": "2020-01-01T00:00:00Z"}
    if years:
        when = {"datetime": None, "start_datetime": f"{years[0]}-01-01T00:00:00Z",
                "end_datetime": f"{years[-1]}-12-31T23:59:59Z"}  # fmt: skip
    return {
        "type": "Feature", "stac_version": "1.1.0", "stac_extensions": [],
        "id": cube, "collection": f"{COLLECTION}-{cube}", "geometry": geometry,
        "bbox": [min(xs), min(ys), max(xs), max(ys)], "properties": when, "links": [],
        "assets": {cube if len(info["vars"]) == 1 else "data": {
            "href": str(data / info["file"]), "type": MEDIA_TYPES[info["fmt"]],
            "roles": ["data"],
        }},
    }  # fmt: skip


def cube_config(common: ModuleType, manifest: dict[str, Any]) -> dict[str, Any]:
    target = manifest["target"]
    bbox = [target["west"], target["south"], target["east"], target["north"]]
    cubes = []
    for cube, spec in common.CUBES.items():
        source: dict[str, Any] = {
            "collection": f"{COLLECTION}-{cube}",
            "resampling": RESAMPLING[spec["resampling"]],
        }
        if spec.get("reduce") == "member_mean":
            source["processing"] = "bench_hooks:member_mean"
        cubes.append({
            "id": cube.replace("_", "-"), "collection": COLLECTION,
            "grid": {"crs": target["crs"], "bbox": list(bbox), "resolution": target["res"],
                     "tile_size": common.TILE},
            "inputs": [source], "grace_period": 0,
        })  # fmt: skip
    return {"cubes": cubes}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_catalogue(work: Path) -> tuple[str, Any]:
    """`DATABASE_URL` if set, else a private embedded PostGIS; migrated either way."""
    from catalogue.embedded import EmbeddedCluster
    from catalogue.schema import upgrade
    from catalogue.settings import EmbeddedDatabaseSettings

    cluster = None
    if os.environ.get("DATABASE_URL"):
        from sqlalchemy import make_url

        url = make_url(os.environ["DATABASE_URL"])
    else:
        folder = Path(
            tempfile.mkdtemp(prefix="cubestac-bench-pg-")
        )  # the server user must reach it
        settings = EmbeddedDatabaseSettings(data_dir=folder, port=free_port())
        cluster = EmbeddedCluster(settings)
        url = cluster.start()
    upgrade(url.set(drivername="postgresql+asyncpg"))
    return url.render_as_string(hide_password=False), cluster


async def seed(url: str, items: list[dict[str, Any]]) -> None:
    from catalogue.database import Database, create_engine
    from catalogue.repositories.collections import upsert_collection
    from catalogue.repositories.items import upsert_items
    from catalogue.serializers import item_to_row
    from catalogue.settings import Settings

    database = Database(create_engine(Settings(database_url=url)))
    try:
        async with database.write() as conn:
            for item in items:
                await upsert_collection(conn, {
                    "type": "Collection", "stac_version": "1.1.0", "id": item["collection"],
                    "description": f"benchmark input {item['id']}", "license": "other",
                    "extent": {"spatial": {"bbox": [item["bbox"]]},
                               "temporal": {"interval": [[None, None]]}},
                    "links": [],
                })  # fmt: skip
            await upsert_items(conn, [item_to_row(item) for item in items])
    finally:
        await database.dispose()


async def published(url: str, cube_id: str) -> tuple[str, dict[str, Any]]:
    """The cube's href and its last job (counts: tasks, bytes ...; start and end)."""
    from catalogue.database import Database, create_engine
    from catalogue.repositories.items import get_item
    from catalogue.repositories.jobs import recent_jobs
    from catalogue.settings import Settings

    database = Database(create_engine(Settings(database_url=url)))
    try:
        async with database.read() as conn:
            item = await get_item(conn, COLLECTION, cube_id)
            jobs = [j for j in await recent_jobs(conn, 200) if j["target"] == cube_id]
    finally:
        await database.dispose()
    return item["assets"]["zarr"]["href"], jobs[0]


def measure_side(
    measure: ModuleType, cmd: list[str], env: dict[str, str], log: Path
) -> dict[str, Any]:
    """One process tree: wall time and peak RSS (the harness's sampler, every 0.1 s)."""
    with log.open("w") as handle:
        rc, wall, peak, killed = measure.run_one(cmd, env, 3000, 20000, handle)
    if rc != 0 or killed:
        raise SystemExit(f"{cmd[0]} failed (rc {rc}, {killed or 'not killed'}); see {log}")
    return {"wall_s": round(wall, 2), "peak_rss_mb": round(peak / 2**20)}


def output_facts(common: ModuleType, store: Path) -> dict[str, Any]:
    import zarr

    group = zarr.open_group(str(store), mode="r")
    nbytes = common.dir_bytes(store.resolve())
    pixels = sum(
        int(np.prod(group[v].shape)) for v in group.array_keys()
        if v not in ("x", "y", "time", "spatial_ref")
    )  # fmt: skip
    dtypes = {v: str(group[v].dtype) for v in group.array_keys()
              if v not in ("x", "y", "time", "spatial_ref")}  # fmt: skip
    return {"bytes": nbytes, "mpx": round(pixels / 1e6, 1), "dtypes": dtypes}


def agreement(check: ModuleType, out: Path, cube: str) -> str:
    parts = []
    for row in check.compare(out / "gdal", out / "cubestac", cube, 1000, 0):
        if "error" in row:
            parts.append(f"{row['var']}: {row['error']}")
        elif "agree_pct" in row:
            parts.append(f"{row['var']} {row['agree_pct']} % equal")
        else:
            parts.append(f"{row['var']} max|d| {row['max_abs_diff']} (p99 {row['p99_abs_diff']})")
    return "; ".join(parts)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--work", type=Path, default=Path("/work/benchwork/cubes"))
    parser.add_argument("--harness", type=Path, default=DEFAULT_HARNESS)
    parser.add_argument("--cube", nargs="*", help="harness cube names (default: all six)")
    parser.add_argument(
        "--mode", choices=["per-cube", "one-run"], default="per-cube",
        help="per-cube: a process per cube on each side (the harness's way); one-run: each "
        "side builds all cubes in one process (how cron runs `cubestac cubes CONFIG`)",
    )  # fmt: skip
    parser.add_argument("--workers", default="1")
    parser.add_argument("--threads", default="2")
    parser.add_argument("--processes", action="store_true", help="worker processes")
    parser.add_argument("--memory-limit", default="4GB", help="total for the cluster")
    parser.add_argument("--skip-gdal", action="store_true", help="reuse the floor's outputs")
    parser.add_argument("--tag", default="")
    parser.add_argument("--max-load", type=float, default=0.7)
    parser.add_argument("--force", action="store_true", help="run even on a busy machine")
    return parser.parse_args()


def check_load(limit: float, force: bool) -> float:
    load = os.getloadavg()[0]
    print(f"load average (1 min): {load:.2f} on {os.cpu_count()} cores", flush=True)
    if load > limit and not force:
        raise SystemExit(f"machine busy (load {load:.2f} > {limit}); retry later or --force")
    return load


@dataclass
class Run:
    """What one benchmark run needs to know."""

    args: argparse.Namespace
    common: ModuleType
    measure: ModuleType
    cubes: list[str]
    data: Path
    out: Path
    url: str = ""
    config: Path = Path()
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)


def main() -> None:
    args = parse_args()
    load = check_load(args.max_load, args.force)
    harness = args.harness.resolve()
    common = load_harness(harness, "common")
    run = Run(
        args, common, load_harness(harness, "measure"), args.cube or common.CUBE_ORDER,
        args.work / f"data-{args.scale:g}", args.work / f"out-{args.scale:g}",
    )  # fmt: skip
    run.out.mkdir(parents=True, exist_ok=True)
    manifest = ensure_inputs(harness, run.data, args.scale)
    run.rows = {cube: {"cube": cube, "mode": args.mode} for cube in run.cubes}
    run.url, cluster = start_catalogue(args.work)
    try:
        items = [item_for(c, manifest["inputs"][c], run.data) for c in run.cubes]
        asyncio.run(seed(run.url, items))
        run.config = write_config(args.work / "config", cube_config(common, manifest))
        if not args.skip_gdal:
            run_floor(run)  # the floor first, alone; then ours
        run_ours(run)
    finally:
        if cluster is not None:
            cluster.stop()
            shutil.rmtree(cluster.data_dir, ignore_errors=True)
    report(run, load_harness(harness, "check"), load)


def write_config(folder: Path, config: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bench_hooks.py").write_text(HOOKS)
    path = folder / "cubes.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def run_floor(run: Run) -> None:
    gdal = [sys.executable, str(run.args.harness / "build_gdal.py"), "--data", str(run.data),
            "--out", str(run.out / "gdal")]  # fmt: skip
    env = dict(os.environ)
    if run.args.mode == "per-cube":
        for cube in run.cubes:
            log = run.out / f"gdal-{cube}.log"
            run.rows[cube]["gdal"] = measure_side(run.measure, [*gdal, "--cube", cube], env, log)
            print(f"gdal     {cube:12s} {run.rows[cube]['gdal']}", flush=True)
        return
    whole = measure_side(run.measure, [*gdal, "--cube", *run.cubes], env, run.out / "gdal.log")
    timings = [json.loads(line) for line in (run.out / "gdal" / "_timings.jsonl").open()]
    for cube in run.cubes:
        last = [t for t in timings if t["cube"] == cube][-1]
        run.rows[cube]["gdal"] = {**whole, "wall_s": last["build_s"], "process": whole}
    print(f"gdal     all          {whole}", flush=True)


def run_ours(run: Run) -> None:
    args = run.args
    env = {
        **os.environ, "DATABASE_URL": run.url, "CUBESTAC_CUBE_ROOT": str(run.out / "root"),
        "CUBESTAC_DASK_WORKERS": args.workers, "CUBESTAC_DASK_THREADS": args.threads,
        "CUBESTAC_DASK_MEMORY_LIMIT": args.memory_limit,
        "CUBESTAC_DASK_PROCESSES": "true" if args.processes else "false",
    }  # fmt: skip
    ours = [str(Path(sys.executable).parent / "cubestac"), "cubes", str(run.config)]
    (run.out / "cubestac").mkdir(exist_ok=True)
    if args.mode == "one-run":
        whole = measure_side(run.measure, ours, env, run.out / "ours.log")
        print(f"cubestac all          {whole}", flush=True)
    for cube in run.cubes:
        cube_id = cube.replace("_", "-")
        if args.mode == "per-cube":
            log = run.out / f"ours-{cube}.log"
            row = measure_side(run.measure, [*ours, "--cube", cube_id], env, log)
        href, job = asyncio.run(published(run.url, cube_id))
        if args.mode == "one-run":
            elapsed = (job["finished_at"] - job["started_at"]).total_seconds()
            row = {**whole, "wall_s": round(elapsed, 2), "process": whole}
        row["tasks"] = job["counts"].get("tasks")
        run.rows[cube]["ours"] = row
        link = run.out / "cubestac" / f"{cube}.zarr"
        link.unlink(missing_ok=True)
        link.symlink_to(href)
        print(f"cubestac {cube:12s} {row}", flush=True)


def report(run: Run, check: ModuleType, load: float) -> None:
    args, out = run.args, run.out
    lines = [
        f"scale {args.scale:g}, mode {args.mode}, {args.workers} worker(s) x {args.threads} "
        f"thread(s), {'processes' if args.processes else 'in-process'}, memory limit "
        f"{args.memory_limit}, load at start {load:.2f}",
        "",
        "| cube | GDAL floor s | ours s | ours/floor | MB written | ours MB/s | floor MB/s "
        "| peak RSS MB ours / floor | tasks | dtypes | vs floor (1000 px) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    totals = {"gdal": 0.0, "ours": 0.0, "bytes": 0}
    for cube in run.cubes:
        row = run.rows[cube]
        facts = output_facts(run.common, out / "cubestac" / f"{cube}.zarr")
        floor = row.get("gdal", {"wall_s": float("nan"), "peak_rss_mb": 0})
        ours = row["ours"]
        totals["gdal"] += floor["wall_s"]
        totals["ours"] += ours["wall_s"]
        totals["bytes"] += facts["bytes"]
        mb = facts["bytes"] / 1e6
        lines.append(
            f"| {cube} | {floor['wall_s']:.1f} | {ours['wall_s']:.1f} | "
            f"{ours['wall_s'] / floor['wall_s']:.2f} | {mb:.1f} | {mb / ours['wall_s']:.1f} | "
            f"{mb / floor['wall_s']:.1f} | {ours['peak_rss_mb']} / {floor['peak_rss_mb']} | "
            f"{ours.get('tasks')} | {', '.join(sorted(set(facts['dtypes'].values())))} | "
            f"{agreement(check, out, cube)} |"
        )
        record = {**row, **facts, "scale": args.scale, "tag": args.tag,
                  "time": time.strftime("%Y-%m-%dT%H:%M:%S")}  # fmt: skip
        with (out / "results.jsonl").open("a") as handle:
            handle.write(json.dumps(record, default=str) + "\n")
    lines.append(_total_line(run, totals))
    print("\n".join(lines))
    suffix = f"-{args.tag}" if args.tag else ""
    (out / f"table-{args.mode}{suffix}.md").write_text("\n".join(lines) + "\n")


def _total_line(run: Run, totals: dict[str, float]) -> str:
    mb = totals["bytes"] / 1e6
    gdal, ours = totals["gdal"], totals["ours"]
    if run.args.mode == "one-run":  # whole processes: start-up and catalogue included
        first = run.rows[run.cubes[0]]
        gdal = first.get("gdal", {}).get("process", {}).get("wall_s", float("nan"))
        ours = first["ours"]["process"]["wall_s"]
    return (
        f"| **total** | **{gdal:.1f}** | **{ours:.1f}** | **{ours / gdal:.2f}** | {mb:.0f} | "
        f"{mb / ours:.1f} | {mb / gdal:.1f} | | | | |"
    )


if __name__ == "__main__":
    main()
