"""Opening a cube: through the API's /cubes route (uvicorn on 127.0.0.1) vs directly from
disk, same run (issue 6, "Benchmark").

    .venv/bin/python bench/open.py [--work /work/benchwork/open] [--size 4096] [--steps 10]
                                   [--tile 512] [--repeat 7]

1. Generates a Zarr cube (format 2, consolidated, blosc-zstd as `cubestac cubes` writes it)
   of one float32 variable `agb` (time, y, x) on an EPSG:3035 grid, `--size` pixels square,
   `--steps` time steps, chunks of `--tile` (1 along time), under `<work>/cubes` unless it is
   there already with the same parameters.
2. Starts a throwaway PostGIS (the API needs a catalogue; `DATABASE_URL` when set) and
   `cubestac serve` with `CUBESTAC_CUBE_ROOT=<work>/cubes` on a free port.
3. Measures, one path after the other (never both at once; disk and HTTP alternate per
   repeat so that load changes hit both): `xr.open_zarr` (consolidated metadata plus the
   x/y/time coordinates xarray loads to build its indexes), a 1-pixel time series (one chunk
   per step), and a 512 x 512 window of one step placed across tile corners (4 chunks at
   tile 512). Each repeat opens the cube afresh and reads another pixel / window. Medians.
4. Counts requests at the server: a second uvicorn with an access log, one open and one read
   of each kind; "before the first chunk" is every request before the first chunk request.

Files come from the page cache on both paths after the first repeat: the figures compare
the HTTP route's overhead with a local read, not disks. The machine is shared (other
sessions run tests): the load average is printed before and after.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
STORE = "bench/open/cube.zarr"  # <collection>/<cube id>/<version> under the cube root
WINDOW = 512
METADATA = (".zmetadata", ".zgroup", ".zattrs", ".zarray", "zarr.json")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/work/benchwork/open"))
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--zarr-format", type=int, choices=(2, 3), default=2)
    parser.add_argument("--markdown", type=Path, help="also write the report here")
    return parser.parse_args()


# -- the cube -----------------------------------------------------------------------------


def open_kwargs(zarr_format: int) -> dict[str, Any]:
    """What the cube item's `xarray:open_kwargs` say."""
    return {"consolidated": True, "zarr_format": zarr_format, "chunks": {}}


def ensure_cube(root: Path, size: int, steps: int, tile: int, zarr_format: int) -> Path:
    store = root / STORE
    facts = {"size": size, "steps": steps, "tile": tile, "zarr_format": zarr_format}
    manifest = root / "manifest.json"
    if store.exists() and manifest.exists() and json.loads(manifest.read_text()) == facts:
        return store
    shutil.rmtree(root, ignore_errors=True)
    started = time.monotonic()
    write_cube(store, size, steps, tile, zarr_format)
    manifest.write_text(json.dumps(facts))
    size_mb = sum(f.stat().st_size for f in store.rglob("*") if f.is_file()) / 1e6
    print(f"generated {store} ({size_mb:.0f} MB) in {time.monotonic() - started:.0f} s")
    return store


def write_cube(
    store: Path, size: int, steps: int, tile: int, zarr_format: int, inner: int | None = None
) -> None:
    """Smooth biomass-like fields plus quantised noise: compresses like real data, not like
    zeros. Written block by block through dask, as the cube builder does; with `inner`
    (Zarr 3), each tile is a shard of inner chunks of that side (`cubes.sharding`)."""
    import dask
    import dask.array as da
    import pandas as pd
    import xarray as xr
    from affine import Affine
    from odc.geo.geobox import GeoBox
    from odc.geo.xr import xr_crs_coord

    from cubes.cf import compressor, gdal_crs
    from cubes.sharding import with_shards
    from cubes.spec import CompressorSpec

    geobox = GeoBox(
        (size, size), Affine(30.0, 0.0, 4_000_000.0, 0.0, -30.0, 3_200_000.0), "EPSG:3035"
    )

    def block(block_info: dict[Any, Any] | None = None) -> np.ndarray:
        assert block_info is not None
        (t0, _), (y0, y1), (x0, x1) = block_info[None]["array-location"]
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        rng = np.random.default_rng(t0 * 1_000_003 + y0 * 1009 + x0)
        field = 120 + 50 * np.sin(xx / 301.0 + t0 / 3) * np.cos(yy / 211.0) + 3 * t0
        noise = np.round(rng.normal(0, 2, field.shape), 1)
        return (field + noise).astype(np.float32)[np.newaxis]

    data = da.map_blocks(
        block, dtype=np.float32, chunks=((1,) * steps, _chunks(size, tile), _chunks(size, tile))
    )
    x, y = geobox.coords["x"].values, geobox.coords["y"].values
    dataset = xr.Dataset(
        {
            "agb": (("time", "y", "x"), data,
                    {"units": "Mg/ha", "grid_mapping": "spatial_ref", "_CRS": gdal_crs(geobox)}),
        },
        coords={"time": pd.date_range("2007-01-01", periods=steps, freq="YS"), "y": y, "x": x},
    )  # fmt: skip
    dataset = dataset.assign_coords(
        spatial_ref=xr_crs_coord(geobox.crs, name="spatial_ref", transform=geobox.transform)
    )
    blosc = compressor(CompressorSpec(), zarr_format, np.dtype("float32"))
    encoding = {
        "agb": with_shards(
            {"chunks": (1, tile, tile), "compressors": (blosc,)}, ("time", "y", "x"), inner
        ),
        "x": {"chunks": (size,), "compressors": None},
        "y": {"chunks": (size,), "compressors": None},
        "time": {"chunks": (steps,), "compressors": None},
    }
    with dask.config.set(scheduler="threads", num_workers=2):
        dataset.to_zarr(
            store, mode="w", zarr_format=zarr_format, consolidated=True, encoding=encoding
        )


def _chunks(size: int, tile: int) -> tuple[int, ...]:
    return (tile,) * (size // tile) + ((size % tile,) if size % tile else ())


# -- the API ------------------------------------------------------------------------------


def load_bench_module(name: str) -> Any:
    """bench/cubes.py (its embedded catalogue start); loaded by path, since the name
    `cubes` is the package's."""
    spec = importlib.util.spec_from_file_location(
        f"bench_{name}", Path(__file__).with_name(f"{name}.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base: str
    log: Path

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=20)


def start_api(database_url: str, root: Path, port: int, log: Path, access_log: bool) -> Server:
    """`cubestac serve` as users run it; with `access_log`, plain uvicorn on the same app
    factory with its access log on, to count requests."""
    env = {**os.environ, "DATABASE_URL": database_url, "CUBESTAC_CUBE_ROOT": str(root)}
    env.pop("CUBESTAC_API_KEY", None)
    if access_log:
        command = [
            sys.executable, "-m", "uvicorn", "cubestac.serve:worker_app", "--factory",
            "--host", "127.0.0.1", "--port", str(port), "--access-log", "--log-level", "info",
        ]  # fmt: skip
    else:
        command = [str(REPO / ".venv/bin/cubestac"), "serve", "--port", str(port)]
    with log.open("wb") as output:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=output, stderr=output)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{base}/_mgmt/ping", timeout=2)
            return Server(process, base, log)
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the API did not start; see {log}") from None
            time.sleep(0.2)


# -- measuring ----------------------------------------------------------------------------


@dataclass
class Case:
    """One read: `run(dataset, repeat)` reads something and returns the number of chunks."""

    name: str
    run: Callable[[Any, int], int]


def cases(size: int, steps: int, tile: int) -> list[Case]:
    def pixel_series(ds: Any, i: int) -> int:
        y, x = (137 + 389 * i) % size, (911 + 521 * i) % size
        values = ds["agb"].isel(y=y, x=x).values
        assert values.shape == (steps,) and np.isfinite(values).all()
        return steps

    def window(ds: Any, i: int) -> int:
        # across tile corners: starts half a tile into a tile
        y0 = (tile // 2 + tile * (i % 3)) % max(size - WINDOW, 1)
        x0 = (tile // 2 + tile * (i % 5)) % max(size - WINDOW, 1)
        values = ds["agb"].isel(time=i % steps, y=slice(y0, y0 + WINDOW), x=slice(x0, x0 + WINDOW))
        assert values.values.shape == (WINDOW, WINDOW)
        return len(
            {(a // tile, b // tile) for a in (y0, y0 + WINDOW - 1) for b in (x0, x0 + WINDOW - 1)}
        )

    return [Case("1-pixel time series", pixel_series), Case(f"{WINDOW}x{WINDOW} window", window)]


def measure(args: argparse.Namespace, paths: dict[str, str]) -> dict:
    """Median seconds per (operation, path). Path order alternates per repeat."""
    import xarray as xr

    size, steps, tile, repeat = args.size, args.steps, args.tile, args.repeat
    timings: dict[tuple[str, str], list[float]] = {}
    chunks: dict[str, int] = {}
    for i in range(repeat + 1):  # repeat 0 warms the page cache and the HTTP session
        order = list(paths) if i % 2 else list(reversed(paths))
        for path in order:
            started = time.perf_counter()
            ds = xr.open_zarr(paths[path], **open_kwargs(args.zarr_format))
            opened = time.perf_counter() - started
            if i:
                timings.setdefault(("open", path), []).append(opened)
            for case in cases(size, steps, tile):
                started = time.perf_counter()
                chunks[case.name] = case.run(ds, i)
                if i:
                    timings.setdefault((case.name, path), []).append(time.perf_counter() - started)
    return {
        "median_s": {f"{op}|{path}": statistics.median(v) for (op, path), v in timings.items()},
        "chunks": chunks,
    }


def count_requests(args: argparse.Namespace, server: Server, href: str) -> dict:
    import xarray as xr

    def logged() -> list[str]:
        lines = server.log.read_text(errors="replace").splitlines()
        return [m.group(1) for line in lines if (m := re.search(r'"GET (/cubes/\S+) HTTP', line))]

    counts: dict[str, Any] = {}
    time.sleep(0.5)
    start = len(logged())
    ds = xr.open_zarr(href, **open_kwargs(args.zarr_format))
    time.sleep(0.5)  # the access log is written after the response
    opening = logged()[start:]
    before = []
    for path in opening:
        if not path.endswith(METADATA):
            break
        before.append(path.rsplit("/", 1)[1])
    counts["open"] = len(opening)
    counts["before first chunk"] = before
    for case in cases(args.size, args.steps, args.tile):
        start = len(logged())
        case.run(ds, 1)
        time.sleep(0.5)
        counts[case.name] = len(logged()) - start
    return counts


# -- report -------------------------------------------------------------------------------


def report(args: argparse.Namespace, result: dict, counts: dict, loads: tuple) -> str:
    medians = result["median_s"]
    lines = [
        f"cube: {args.size}x{args.size} px, {args.steps} steps, float32, tiles {args.tile}, "
        f"Zarr {args.zarr_format} consolidated, blosc-zstd; {args.repeat} repeats, medians",
        f"load average (1 min): {loads[0]:.2f} before, {loads[1]:.2f} after, "
        f"{os.cpu_count()} cores, shared machine",
        "",
        "| operation | local disk | HTTP /cubes | HTTP / disk | requests (HTTP) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for op in ("open", *[c.name for c in cases(args.size, args.steps, args.tile)]):
        disk, http = medians[f"{op}|disk"], medians[f"{op}|http"]
        lines.append(
            f"| {op} | {disk * 1e3:.1f} ms | {http * 1e3:.1f} ms | {http / disk:.2f}x "
            f"| {counts[op]} |"
        )
    before = counts["before first chunk"]
    lines += [
        "",
        f"requests before the first chunk: {len(before)} ({', '.join(before)})",
        f"chunks per read: {json.dumps(result['chunks'])}",
    ]
    return "\n".join(lines)


def main() -> None:
    args = parse_args()
    sys.path.insert(0, str(REPO))
    load_before = os.getloadavg()[0]
    root = args.work / "cubes"
    store = ensure_cube(root, args.size, args.steps, args.tile, args.zarr_format)
    bench_cubes = load_bench_module("cubes")
    url, cluster = bench_cubes.start_catalogue(args.work)
    servers: list[Server] = []
    try:
        server = start_api(url, root, bench_cubes.free_port(), args.work / "api.log", False)
        servers.append(server)
        href = f"{server.base}/cubes/{STORE}"
        paths = {"disk": str(store), "http": href}
        result = measure(args, paths)
        server.stop()
        counter = start_api(url, root, bench_cubes.free_port(), args.work / "access.log", True)
        servers.append(counter)
        counts = count_requests(args, counter, f"{counter.base}/cubes/{STORE}")
    finally:
        for each in servers:
            if each.process.poll() is None:
                each.stop()
        if cluster is not None:
            cluster.stop()
            shutil.rmtree(cluster.data_dir, ignore_errors=True)  # a throwaway catalogue
    text = report(args, result, counts, (load_before, os.getloadavg()[0]))
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")


if __name__ == "__main__":
    main()
