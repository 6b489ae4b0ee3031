"""EDR point time series: the time-series layout against the map layout, over HTTP.

    .venv/bin/python bench/edr.py [--work /work/benchwork/edr] [--size 256] [--steps 3650]
                                  [--tile 256] [--series-chunk 32] [--repeat 15]

Issue 15's target: a point time series over 3,650 daily steps in <= 200 ms with the
time-series layout, and >= 10x faster than the same query on the map layout.

1. Writes (once per parameter set) a cube store as `catalogue.cube_layout` lays it out:
   one float32 variable `ndvi` (time, y, x) on an EPSG:3035 grid, `--size` px square,
   `--steps` daily steps, blosc-zstd as `cubes.cf` compresses; level 0 in `0/` chunked
   1 x tile x tile (the map layout, as the builder writes it) and `timeseries/` chunked
   whole-time x series-chunk x series-chunk. A second store holds the same level 0 (a
   symlink to the first one's `0/`) and no time-series layout.
2. Starts a throwaway PostGIS and `cubestac serve` (one worker) on 127.0.0.1, publishes
   one item per store, and warms each (the first query opens the store's metadata).
3. Asks `/position` at a different pixel per repeat, alternating the two items (the slow
   map-layout queries in the first `--map-repeat` repeats only), and prints
   the median and p90 latency of each, with the `Cubestac-Layout` header that says which
   copy answered; then the same for `/area` over a 16 x 16 px square.

Files are in the page cache after the first read on both paths: this compares layouts,
not disks. The machine is shared: the load average is printed before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
WEST, NORTH, RES = 4_000_000.0, 3_004_800.0, 30.0
NDVI = {"dimensions": ["time", "y", "x"], "type": "data"}
ZARR = "application/vnd.zarr"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/work/benchwork/edr"))
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=3650)
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--series-chunk", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument(
        "--map-repeat", type=int, default=5, help="repeats of the map-layout queries (slow)"
    )
    parser.add_argument("--markdown", type=Path, help="also write the report here")
    return parser.parse_args()


def load(name: str) -> ModuleType:
    """A sibling bench module by path (the name `cubes` is the package's)."""
    spec = importlib.util.spec_from_file_location(
        f"bench_{name}", Path(__file__).with_name(f"{name}.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


# -- the cube -----------------------------------------------------------------------------


def values(t: np.ndarray, r: np.ndarray, c: np.ndarray) -> np.ndarray:
    """A seasonal signal with a spatial trend and deterministic noise (some entropy, so
    chunks do not compress to nothing)."""
    season = 0.5 + 0.3 * np.sin(2 * np.pi * t / 365.25 + r / 50.0) + 0.1 * np.cos(c / 40.0)
    noise = ((t * 7919 + r * 104729 + c * 1299709) % 1000) / 20000.0
    return (season + noise).astype("float32")


def write_stores(args: argparse.Namespace) -> tuple[Path, Path]:
    """(store with both layouts, store with the map layout only), written once."""
    key = f"{args.size}px-{args.steps}t-tile{args.tile}-series{args.series_chunk}"
    folder = args.work / "cubes" / "bench" / key
    both, map_only = folder / "both.zarr", folder / "map.zarr"
    if (folder / "done").exists():
        return both, map_only
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    started = time.perf_counter()
    _write(args, both, map_only)
    (folder / "done").write_text(f"{time.perf_counter() - started:.1f} s\n")
    return both, map_only


def _write(args: argparse.Namespace, both: Path, map_only: Path) -> None:
    import dask.array as da
    import pandas as pd
    import xarray as xr
    import zarr
    from affine import Affine
    from numcodecs import Blosc
    from odc.geo.xr import xr_crs_coord
    from pyproj import CRS

    from catalogue.cube_layout import Level, multiscales_attrs

    size, steps = args.size, args.steps
    transform = Affine(RES, 0.0, WEST, 0.0, -RES, NORTH)
    data = da.fromfunction(
        values, shape=(steps, size, size), chunks=(365, size, size), dtype="float32"
    )
    dataset = xr.Dataset(
        {"ndvi": (("time", "y", "x"), data, {"long_name": "vegetation index", "units": "1"})},
        coords={
            "time": pd.date_range("2015-01-01", periods=steps, freq="D"),
            "y": NORTH - (np.arange(size) + 0.5) * RES,
            "x": WEST + (np.arange(size) + 0.5) * RES,
            "spatial_ref": xr_crs_coord(
                CRS.from_epsg(3035), name="spatial_ref", transform=transform
            ),
        },
    )
    dataset["ndvi"].attrs["grid_mapping"] = "spatial_ref"
    compressor = Blosc(cname="zstd", clevel=5, shuffle=Blosc.SHUFFLE)

    def encoding(chunks: tuple[int, int, int]) -> dict[str, Any]:
        return {
            "ndvi": {
                "chunks": chunks,
                "compressors": (compressor,),
                "_FillValue": np.float32(np.nan),
            }
        }

    tile, side = min(args.tile, size), min(args.series_chunk, size)
    dataset.to_zarr(
        both, group="0", zarr_format=2, consolidated=False, encoding=encoding((1, tile, tile))
    )
    series = dataset.chunk({"time": steps, "y": side, "x": side})
    series.to_zarr(
        both,
        group="timeseries",
        zarr_format=2,
        consolidated=False,
        encoding=encoding((steps, side, side)),
    )
    level = Level("0", 1.0, (size, size), transform.to_gdal())
    for store, groups in ((both, ("0", "timeseries")), (map_only, ("0",))):
        if store == map_only:
            store.mkdir()
            (store / "0").symlink_to(both / "0")
        root = zarr.open_group(store, mode="a", zarr_format=2)
        root.attrs.update(multiscales_attrs([level], "average"))
        zarr.consolidate_metadata(store, zarr_format=2)
        for group in groups:
            zarr.consolidate_metadata(store, path=group, zarr_format=2)


def item(item_id: str, store: Path, size: int) -> dict[str, Any]:
    from pyproj import Transformer

    to_geo = Transformer.from_crs("EPSG:3035", "EPSG:4326", always_xy=True)
    xs = [WEST, WEST + size * RES]
    ys = [NORTH - size * RES, NORTH]
    lons, lats = to_geo.transform([xs[0], xs[1], xs[0], xs[1]], [ys[0], ys[0], ys[1], ys[1]])
    w, s, e, n = min(lons), min(lats), max(lons), max(lats)
    return {
        "type": "Feature", "stac_version": "1.1.0", "stac_extensions": [], "id": item_id,
        "collection": "bench", "bbox": [w, s, e, n],
        "geometry": {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]},
        "properties": {"datetime": "2015-01-01T00:00:00Z", "cube:variables": {"ndvi": NDVI}},
        "assets": {"zarr": {"href": f"{store}/0", "type": ZARR, "roles": ["data"]}},
        "links": [],
    }  # fmt: skip


def start_api(bench_open: ModuleType, database_url: str, port: int, log: Path) -> Any:
    """`cubestac serve` (the venv's script next to this interpreter: PYTHONPATH picks the
    working copy), one worker, waited for like bench/open.py waits."""
    # the map layout's 3,650-chunk series is what this measures: lift the read budget
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "CUBESTAC_EDR__MAX_POSITION_CHUNKS": "100000",
    }
    env.pop("CUBESTAC_API_KEY", None)
    command = [str(Path(sys.executable).with_name("cubestac")), "serve", "--port", str(port)]
    with log.open("wb") as output:
        process = subprocess.Popen(command, env=env, stdout=output, stderr=output)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{base}/_mgmt/ping", timeout=2)
            return bench_open.Server(process, base, log)
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the API did not start; see {log}") from None
            time.sleep(0.2)


# -- measuring ----------------------------------------------------------------------------


def lonlat(row: float, col: float) -> tuple[float, float]:
    from pyproj import Transformer

    x, y = WEST + col * RES, NORTH - row * RES
    lon, lat = Transformer.from_crs("EPSG:3035", "EPSG:4326", always_xy=True).transform(x, y)
    return lon, lat


def get(url: str) -> tuple[float, str, bytes]:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=300) as response:
        body = response.read()
        layout = response.headers.get("Cubestac-Layout", "?")
    return time.perf_counter() - started, layout, body


def position_url(base: str, item_id: str, row: int, col: int, fmt: str | None = None) -> str:
    lon, lat = lonlat(row + 0.5, col + 0.5)
    params = {"coords": f"POINT({lon} {lat})", "parameter-name": "ndvi"}
    if fmt:
        params["f"] = fmt
    return f"{base}/collections/bench/items/{item_id}/position?{urllib.parse.urlencode(params)}"


def area_url(base: str, item_id: str, row: int, col: int, side: int = 16) -> str:
    from shapely.geometry import Polygon

    ring = [
        lonlat(r, c)
        for r, c in ((row, col), (row, col + side), (row + side, col + side), (row + side, col))
    ]
    params = {"coords": Polygon(ring).wkt, "parameter-name": "ndvi"}
    return f"{base}/collections/bench/items/{item_id}/area?{urllib.parse.urlencode(params)}"


def measure(args: argparse.Namespace, base: str) -> dict[str, dict[str, Any]]:
    cases = {
        "position, time-series layout": lambda r, c: position_url(base, "series", r, c),
        "position, map layout": lambda r, c: position_url(base, "map", r, c),
        "position CSV, time-series layout": lambda r, c: position_url(base, "series", r, c, "csv"),
        "area 16x16 px, cube with both layouts": lambda r, c: area_url(base, "series", r, c),
        "area 16x16 px, map layout": lambda r, c: area_url(base, "map", r, c),
    }  # fmt: skip
    for name in cases:  # warm: open each store once
        get(cases[name](1, 1))
    times: dict[str, list[float]] = {name: [] for name in cases}
    layouts: dict[str, str] = {}
    sizes: dict[str, int] = {}
    rng = np.random.default_rng(7)
    for repeat in range(args.repeat):
        row, col = (int(v) for v in rng.integers(0, args.size - 17, 2))
        for name, url in cases.items():
            if name.endswith("map layout") and repeat >= args.map_repeat:
                continue
            seconds, layout, body = get(url(row, col))
            times[name].append(seconds)
            layouts[name], sizes[name] = layout, len(body)
    return {
        name: {
            "median_ms": 1000 * statistics.median(values),
            "p90_ms": 1000 * float(np.percentile(values, 90)),
            "layout": layouts[name],
            "bytes": sizes[name],
        }
        for name, values in times.items()
    }


def report(args: argparse.Namespace, result: dict, loads: tuple) -> str:
    point_series = result["position, time-series layout"]["median_ms"]
    point_map = result["position, map layout"]["median_ms"]
    lines = [
        f"cube: {args.size}x{args.size} px, {args.steps} daily steps, float32, blosc-zstd, Zarr 2; "
        f"map layout chunks 1x{args.tile}x{args.tile}, time-series layout chunks "
        f"{args.steps}x{args.series_chunk}x{args.series_chunk}; {args.repeat} repeats "
        f"({args.map_repeat} of the map-layout queries), one "
        "uvicorn worker, urllib client on 127.0.0.1",
        f"load average before / after: {loads[0]} / {loads[1]}",
        "",
        "| query | answered from | median | p90 | answer bytes |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for name, figures in result.items():
        lines.append(
            f"| {name} | {figures['layout']} | {figures['median_ms']:.1f} ms | "
            f"{figures['p90_ms']:.1f} ms | {figures['bytes']} |"
        )
    lines += ["", f"point time series: map / time-series layout = {point_map / point_series:.1f}x"]
    return "\n".join(lines)


def main() -> None:
    args = parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    both, map_only = write_stores(args)
    bench_cubes, bench_open = load("cubes"), load("open")
    url, cluster = bench_cubes.start_catalogue(args.work)
    server = None
    try:
        items = [item("series", both, args.size), item("map", map_only, args.size)]
        asyncio.run(bench_cubes.seed(url, items))
        server = start_api(bench_open, url, bench_cubes.free_port(), args.work / "api.log")
        before = os.getloadavg()[0]
        result = measure(args, server.base)
        loads = (f"{before:.2f}", f"{os.getloadavg()[0]:.2f}")
        text = report(args, result, loads)
        print(text)
        print(json.dumps(result))
        if args.markdown:
            args.markdown.write_text(text + "\n")
    finally:
        if server is not None:
            server.stop()
        if cluster is not None:
            cluster.stop()
            shutil.rmtree(cluster.data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
