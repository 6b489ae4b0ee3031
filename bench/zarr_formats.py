"""The same cube as Zarr v2 and as Zarr v3 sharded, opened over HTTP through the API's
/cubes (uvicorn on 127.0.0.1) and from local disk, same run (issue 18, "Format choice").

    python bench/zarr_formats.py [--work DIR] [--size 4096] [--steps 2] [--tile 2048]
                                 [--inner 512] [--repeat 9] [--markdown FILE]

1. Generates one float32 variable `agb` (time, y, x), `--size` pixels square, as
   `cubestac cubes` writes it (blosc-zstd, consolidated metadata, tiles of `--tile`), twice:
   Zarr v2 with one chunk per tile, and Zarr v3 with each tile one shard of `--inner`
   inner chunks (`bench/open.py`'s generator; reused when already there).
2. Starts a throwaway PostGIS (`DATABASE_URL` when set) and `cubestac serve` on a free port.
3. Times, alternating disk/HTTP and v2/v3 each repeat, `xr.open_zarr` with the item's
   open_kwargs and then a 512 x 512 window of one step, half an inner chunk off the grid
   (so it touches 4 inner chunks of the v3 cube, 1-4 tiles of the v2 one); each repeat opens
   afresh and reads another window. Medians.
4. Counts requests at the server (the API in this process under uvicorn, with a middleware
   that sees each request's Range header): for an open and the first window, those before
   the first request that returns chunk bytes -- metadata documents and shard indexes
   (suffix ranges, `bytes=-N`); coordinate arrays, which xarray loads to index, are counted
   apart.

Files come from the page cache on both paths after the warm-up: the figures compare the HTTP
route's overhead with a local read, and the two layouts with each other, not disks.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

REPO = Path(__file__).resolve().parents[1]
COLLECTION_PATH = "bench/formats"  # <collection>/<cube id> under the cube root
WINDOW = 512
FORMATS = {"v2": (2, None), "v3 sharded": (3, "inner")}  # label -> (zarr_format, inner?)
METADATA = (".zmetadata", ".zgroup", ".zattrs", ".zarray", "zarr.json")
COORDINATES = ("x", "y", "time")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/cubestac-bench/zarr-formats"))
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--tile", type=int, default=2048)
    parser.add_argument("--inner", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--markdown", type=Path, help="also write the report here")
    return parser.parse_args()


def load(name: str) -> ModuleType:
    """A sibling bench module by path (`bench/cubes.py` would shadow the `cubes` package)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", REPO / "bench" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def ensure_cubes(args: argparse.Namespace, opener: ModuleType) -> dict[str, Path]:
    """One store per format, generated unless there with the same parameters."""
    root = args.work / "cubes"
    stores = {}
    for label, (zarr_format, inner) in FORMATS.items():
        name = label.replace(" ", "-")
        store = root / COLLECTION_PATH / f"{name}.zarr"
        marker = store.with_suffix(".facts")
        facts = f"{args.size} {args.steps} {args.tile} {args.inner if inner else None}"
        if not (store.exists() and marker.exists() and marker.read_text() == facts):
            shutil.rmtree(store, ignore_errors=True)
            started = time.monotonic()
            opener.write_cube(
                store, args.size, args.steps, args.tile, zarr_format, args.inner if inner else None
            )
            marker.write_text(facts)
            size_mb = sum(f.stat().st_size for f in store.rglob("*") if f.is_file()) / 1e6
            print(f"generated {label}: {size_mb:.0f} MB in {time.monotonic() - started:.0f} s")
        stores[label] = store
    return stores


def open_kwargs(label: str, tile: int) -> dict[str, Any]:
    """What the cube item's `xarray:open_kwargs` say (a dask chunk per shard when sharded)."""
    from cubes.sharding import read_chunks

    zarr_format, inner = FORMATS[label]
    chunks = read_chunks(tile if inner else None)
    return {"consolidated": True, "zarr_format": zarr_format, "chunks": chunks}


def window_origin(args: argparse.Namespace, i: int) -> tuple[int, int]:
    """Half an inner chunk off the grid, moving by whole tiles between repeats."""
    span = max(args.size - WINDOW, 1)
    y0 = (args.inner // 2 + args.tile * (i % 3) + args.inner * (i % 2)) % span
    x0 = (args.inner // 2 + args.tile * (i % 5) + args.inner * (i % 4)) % span
    return y0, x0


def read_window(dataset: Any, args: argparse.Namespace, i: int) -> None:
    y0, x0 = window_origin(args, i)
    window = dataset["agb"].isel(
        time=i % args.steps, y=slice(y0, y0 + WINDOW), x=slice(x0, x0 + WINDOW)
    )
    assert window.values.shape == (WINDOW, WINDOW)


def measure(args: argparse.Namespace, paths: dict[tuple[str, str], str]) -> dict[str, float]:
    """Median seconds of (open | window) per (format, disk | http)."""
    import xarray as xr

    timings: dict[str, list[float]] = {}
    for i in range(args.repeat + 1):  # repeat 0 warms the page cache and the HTTP session
        order = list(paths) if i % 2 else list(reversed(paths))
        for label, where in order:
            started = time.perf_counter()
            dataset = xr.open_zarr(paths[label, where], **open_kwargs(label, args.tile))
            opened = time.perf_counter()
            read_window(dataset, args, i)
            done = time.perf_counter()
            if i:
                timings.setdefault(f"open|{label}|{where}", []).append(opened - started)
                timings.setdefault(f"window|{label}|{where}", []).append(done - opened)
    return {key: statistics.median(values) for key, values in timings.items()}


# -- counting requests at the server ---------------------------------------------------


@dataclass
class Recorded:
    """(path, Range header) of every request under /cubes/."""

    entries: list[tuple[str, str | None]] = field(default_factory=list)
    body_bytes: int = 0  # response bytes sent since the last reset

    def reset(self) -> None:
        self.entries.clear()
        self.body_bytes = 0


class Recorder:
    def __init__(self, app: Any, recorded: Recorded) -> None:
        self.app = app
        self.recorded = recorded

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/cubes/"):
            await self.app(scope, receive, send)
            return
        byte_range = dict(scope["headers"]).get(b"range")
        self.recorded.entries.append((scope["path"], byte_range.decode() if byte_range else None))

        async def sending(message: Any) -> None:
            if message["type"] == "http.response.body":
                self.recorded.body_bytes += len(message.get("body", b""))
            await send(message)

        await self.app(scope, receive, sending)


@contextmanager
def counting_server(database_url: str, root: Path, port: int) -> Iterator[tuple[str, Recorded]]:
    """The API app under uvicorn in a thread of this process, recording requests."""
    import uvicorn

    from api import create_app
    from catalogue.settings import Settings

    recorded = Recorded()
    app = create_app(Settings(database_url=database_url, cube_root=str(root)))
    app.add_middleware(Recorder, recorded=recorded)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", log_config=None)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", recorded
    finally:
        server.should_exit = True
        thread.join(timeout=20)


def kind(path: str, byte_range: str | None) -> str:
    name = path.rstrip("/").rsplit("/", 1)[-1]
    if name in METADATA:
        return "metadata"
    array = path.split(".zarr/", 1)[1].split("/", 1)[0]
    if array in COORDINATES:
        return "coordinate"
    if byte_range and byte_range.startswith("bytes=-"):
        return "shard index"
    return "chunk"


def count(args: argparse.Namespace, base: str, recorded: Recorded) -> dict[str, dict[str, int]]:
    """Per format: requests by kind before the first chunk bytes, and for the window."""
    import xarray as xr

    counts = {}
    for label in FORMATS:
        name = label.replace(" ", "-")
        recorded.reset()
        dataset = xr.open_zarr(
            f"{base}/cubes/{COLLECTION_PATH}/{name}.zarr", **open_kwargs(label, args.tile)
        )
        opened = len(recorded.entries)
        opened_bytes = recorded.body_bytes
        read_window(dataset, args, 1)
        kinds = [kind(path, byte_range) for path, byte_range in recorded.entries]
        first = kinds.index("chunk")
        before = [k for k in kinds[:first] if k != "coordinate"]
        window = kinds[opened:]
        counts[label] = {
            "before first chunk": len(before),
            "metadata": before.count("metadata"),
            "shard index (before)": before.count("shard index"),
            "coordinates": kinds.count("coordinate"),
            "window requests": len(window),
            "window chunks": window.count("chunk"),
            "window shard indexes": window.count("shard index"),
            "window bytes": recorded.body_bytes - opened_bytes,
        }
    return counts


# -- report ----------------------------------------------------------------------------


def report(
    args: argparse.Namespace,
    medians: dict[str, float],
    counts: dict[str, dict[str, int]],
    loads: tuple[float, float],
) -> str:
    lines = [
        f"cube: {args.size} x {args.size} px, {args.steps} steps, float32, blosc-zstd, tiles of "
        f"{args.tile}; v3: shards of one tile, inner chunks of {args.inner}; "
        f"{args.repeat} repeats, medians",
        f"load average (1 min): {loads[0]:.2f} before, {loads[1]:.2f} after, "
        f"{os.cpu_count()} cores",
        "",
        "| format | open, disk | open, HTTP | 512x512 window, disk | window, HTTP | "
        "window HTTP / disk | requests before the first chunk | window requests | "
        "window bytes sent |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label in FORMATS:
        c = counts[label]
        disk, http = medians[f"window|{label}|disk"], medians[f"window|{label}|http"]
        before = f"{c['before first chunk']} ({c['metadata']} metadata"
        before += f", {c['shard index (before)']} shard index)" if label != "v2" else ")"
        window = f"{c['window requests']} ({c['window chunks']} chunks"
        window += f", {c['window shard indexes']} indexes)" if label != "v2" else ")"
        lines.append(
            f"| {label} | {medians[f'open|{label}|disk'] * 1e3:.1f} ms "
            f"| {medians[f'open|{label}|http'] * 1e3:.1f} ms | {disk * 1e3:.1f} ms "
            f"| {http * 1e3:.1f} ms | {http / disk:.2f}x | {before} | {window} "
            f"| {c['window bytes'] / 1e6:.1f} MB |"
        )
    lines += [
        "",
        "coordinate requests while opening (x, y, time; xarray loads them to index): "
        + ", ".join(f"{label} {counts[label]['coordinates']}" for label in FORMATS),
    ]
    return "\n".join(lines)


def main() -> None:
    args = parse_args()
    sys.path.insert(0, str(REPO))
    load_before = os.getloadavg()[0]
    opener = load("open")
    bench_cubes = load("cubes")
    stores = ensure_cubes(args, opener)
    root = args.work / "cubes"
    url, cluster = bench_cubes.start_catalogue(args.work)
    server = None
    try:
        port = bench_cubes.free_port()
        server = opener.start_api(url, root, port, args.work / "api.log", False)
        paths = {}
        for label, store in stores.items():
            paths[label, "disk"] = str(store)
            paths[label, "http"] = f"{server.base}/cubes/{COLLECTION_PATH}/{store.name}"
        medians = measure(args, paths)
        server.stop()
        server = None
        with counting_server(url, root, bench_cubes.free_port()) as (base, recorded):
            counts = count(args, base, recorded)
    finally:
        if server is not None:
            server.stop()
        if cluster is not None:
            cluster.stop()
            shutil.rmtree(cluster.data_dir, ignore_errors=True)  # a throwaway catalogue
    text = report(args, medians, counts, (load_before, os.getloadavg()[0]))
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")


if __name__ == "__main__":
    main()
