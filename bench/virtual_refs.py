"""Opening a multi-file NetCDF collection: the files themselves vs their Kerchunk references
(what `virtual_refs` harvests), locally and over HTTP through the API (issue 18, item 5).

    nice -n 10 .venv/bin/python bench/virtual_refs.py --work "$WORK" [--files 24]
        [--size 512] [--tile 256] [--repeat 5] [--markdown bench/results/virtual_refs.md]

1. Writes `--files` NetCDF-4 files (one monthly step each of a float32 `agb` on an
   EPSG:3035 grid, `--size` pixels square, zlib, chunks of `--tile`, a CF grid mapping)
   under `<work>/cubes/files` unless they are there with the same parameters.
2. References them as the harvester does (`ingest.metadata.references`): one JSON per file
   for the local paths, one per file for their URLs under the API's /cubes route, and one
   combined reference set (VirtualiZarr's `open_virtual_mfdataset`, concatenated in time)
   for each; the time this takes is printed (a harvest pays it once per file).
3. Starts a throwaway PostGIS and the API (uvicorn with its access log, to count requests)
   with `CUBESTAC_CUBE_ROOT=<work>/cubes`; files and references are served under /cubes.
4. Measures, alternating the ways within each repeat: opening the collection as one lazy
   dataset (`xr.open_mfdataset` on the files; `xr.open_mfdataset(engine="kerchunk")` on the
   per-file references; `xr.open_dataset(engine="kerchunk")` on the combined references),
   and reading a 1-pixel time series (one chunk per file). Medians; HTTP requests counted
   at the server for one open and one read.

Files come from the page cache after the first repeat: the figures compare the ways of
opening, not disks. The machine is shared: the load average is printed before and after.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
COLLECTION_WAYS = (
    "files (open_mfdataset)",
    "per-file references (open_mfdataset, kerchunk)",
    "combined references (open_dataset, kerchunk)",
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--files", type=int, default=24)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--markdown", type=Path, help="also write the report here")
    return parser.parse_args()


def load_bench_module(name: str) -> Any:
    """Another bench script, loaded by path (`bench/cubes.py` is not the `cubes` package)."""
    spec = importlib.util.spec_from_file_location(
        f"bench_{name}", Path(__file__).with_name(f"{name}.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


# -- the files and their references -------------------------------------------------------


def ensure_files(folder: Path, count: int, size: int, tile: int) -> list[Path]:
    facts = {"files": count, "size": size, "tile": tile}
    manifest = folder / "manifest.json"
    paths = [folder / f"agb_{2000 + i // 12}{i % 12 + 1:02d}.nc" for i in range(count)]
    if manifest.exists() and json.loads(manifest.read_text()) == facts:
        return paths
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for i, path in enumerate(paths):
        write_file(path, i, size, tile)
    manifest.write_text(json.dumps(facts))
    return paths


def write_file(path: Path, i: int, size: int, tile: int) -> None:
    import rioxarray  # noqa: F401 - the .rio accessor writes the grid mapping
    import xarray as xr

    rng = np.random.default_rng(i)
    ramp = np.add.outer(np.arange(size), np.arange(size)).astype("float32") / size
    values = (100 * ramp + rng.normal(0, 5, (size, size))).astype("float32")[None]
    time_step = np.array([f"{2000 + i // 12}-{i % 12 + 1:02d}-01"], dtype="datetime64[ns]")
    dataset = xr.Dataset(
        {"agb": (("time", "y", "x"), values, {"units": "Mg/ha"})},
        coords={
            "time": time_step,
            "y": 3_000_000 - 30.0 * np.arange(size) - 15,
            "x": 4_000_000 + 30.0 * np.arange(size) + 15,
        },
    ).rio.write_crs("EPSG:3035")
    # in `encoding`, not to_netcdf's argument, which would drop rioxarray's `grid_mapping`
    dataset["agb"].encoding.update(zlib=True, chunksizes=(1, tile, tile), _FillValue=-1.0)
    dataset.to_netcdf(path, engine="netcdf4")


def reference_each(urls: list[str], folder: Path) -> tuple[list[Path], float]:
    """One reference set per file, as the harvester writes them; and the seconds taken."""
    from ingest.metadata import references

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    started = time.perf_counter()
    for url in urls:
        found = references.file_references(url, references.HDF5_SIGNATURE, {})
        path = folder / f"{url.rsplit('/', 1)[-1].removesuffix('.nc')}.json"
        references.write_references(found, str(path))
        written.append(path)
    return written, time.perf_counter() - started


def reference_combined(urls: list[str], path: Path) -> float:
    """One reference set for the whole collection, concatenated along time."""
    from virtualizarr import open_virtual_mfdataset
    from virtualizarr.parsers import HDFParser

    from ingest.metadata import references

    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dataset = open_virtual_mfdataset(
            [references._as_url(url) for url in urls],
            registry=references._registry(urls[0], {}),
            parser=HDFParser(),
            combine="nested",
            concat_dim="time",
            data_vars="minimal",
            coords="minimal",
            compat="override",
        )
        found: dict[str, Any] = dataset.vz.to_kerchunk(format="dict")
    for name in [key[: -len("/.zarray")] for key in found["refs"] if key.endswith("/.zarray")]:
        references._as_netcdf_reads(found["refs"], name)
    references.write_references(found, str(path))
    return time.perf_counter() - started


# -- opening and reading ------------------------------------------------------------------


# xarray's advice for many files of one grid: compare nothing, take coordinates and the
# grid mapping from the first file (the defaults load `spatial_ref` from every file).
FAST_COMBINE = {
    "combine": "by_coords",
    "data_vars": "minimal",
    "coords": "minimal",
    "compat": "override",
    "join": "exact",
}


def openers(files: list[str], each: list[str], combined: str) -> dict[str, Callable[[], Any]]:
    import fsspec
    import xarray as xr

    def open_files() -> Any:
        if files[0].startswith("http"):  # what a user does with URLs: fsspec file objects
            handles = [fsspec.open(url, "rb").open() for url in files]
            return xr.open_mfdataset(handles, engine="h5netcdf", **FAST_COMBINE)
        return xr.open_mfdataset(files, **FAST_COMBINE)

    return {
        COLLECTION_WAYS[0]: open_files,
        COLLECTION_WAYS[1]: lambda: xr.open_mfdataset(each, engine="kerchunk", **FAST_COMBINE),
        COLLECTION_WAYS[2]: lambda: xr.open_dataset(combined, engine="kerchunk", chunks={}),
    }


def read_series(dataset: Any, repeat: int, size: int) -> np.ndarray:
    """A 1-pixel time series, another pixel each repeat: one chunk per file."""
    where = (37 * (repeat + 1)) % size
    return np.asarray(dataset["agb"].isel(x=where, y=size - 1 - where).values)


def measure(args: argparse.Namespace, ways: dict[str, dict[str, Callable[[], Any]]]) -> dict:
    times: dict[str, list[float]] = {}
    series: dict[str, np.ndarray] = {}
    for repeat in range(args.repeat):
        for place, openings in ways.items():
            for way, opener in openings.items():
                started = time.perf_counter()
                dataset = opener()
                opened = time.perf_counter()
                values = read_series(dataset, repeat, args.size)
                done = time.perf_counter()
                dataset.close()
                times.setdefault(f"{place}|{way}|open", []).append(opened - started)
                times.setdefault(f"{place}|{way}|series", []).append(done - opened)
                if repeat == 0:
                    series[f"{place}|{way}"] = values
    first = next(iter(series.values()))
    for key, values in series.items():  # every way reads the same values
        np.testing.assert_array_equal(values, first, err_msg=key)
    assert first.shape == (args.files,)
    return {key: statistics.median(values) for key, values in times.items()}


def count_requests(log: Path, openings: dict[str, Callable[[], Any]], size: int) -> dict:
    """Requests the API logged for one open and one read of each way."""

    def logged() -> int:
        return sum(1 for line in log.read_text().splitlines() if '"GET /cubes/' in line)

    counts = {}
    for way, opener in openings.items():
        before = logged()
        dataset = opener()
        time.sleep(0.2)  # the access log is written after the response
        opened = logged()
        read_series(dataset, 0, size)
        dataset.close()
        time.sleep(0.2)
        counts[way] = (opened - before, logged() - opened)
    return counts


# -- the run ------------------------------------------------------------------------------


def report(args: argparse.Namespace, result: dict, counts: dict, facts: dict) -> str:
    lines = [
        f"collection: {args.files} NetCDF-4 files of {args.size}x{args.size} float32 px "
        f"(zlib, chunks {args.tile}), {facts['file_kib']:.0f} KiB each; "
        f"{args.repeat} repeats, medians",
        f"load average (1 min): {facts['load'][0]:.2f} before, {facts['load'][1]:.2f} after, "
        f"{os.cpu_count()} cores, shared machine",
        f"referencing (as the harvest does, once per file): {facts['ref_local']:.2f} s for "
        f"{args.files} local files, {facts['ref_http']:.2f} s over HTTP; combined set: "
        f"{facts['combined_local']:.2f} s local, {facts['combined_http']:.2f} s over HTTP; "
        f"reference sets {facts['each_kib']:.1f} KiB per file, "
        f"{facts['combined_kib']:.1f} KiB combined",
        "",
        "| way | open, local | open, HTTP | series, local | series, HTTP "
        "| requests open + series (HTTP) |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for way in COLLECTION_WAYS:
        local = [result[f"local|{way}|{op}"] * 1e3 for op in ("open", "series")]
        http = [result[f"http|{way}|{op}"] * 1e3 for op in ("open", "series")]
        opened, read = counts[way]
        lines.append(
            f"| {way} | {local[0]:.0f} ms | {http[0]:.0f} ms | {local[1]:.0f} ms "
            f"| {http[1]:.0f} ms | {opened} + {read} |"
        )
    return "\n".join(lines)


def main() -> None:
    args = parse_args()
    warnings.simplefilter("ignore")  # numcodecs "not in the Zarr 3 spec", xarray defaults
    sys.path.insert(0, str(REPO))
    bench_open = load_bench_module("open")
    bench_cubes = load_bench_module("cubes")
    load_before = os.getloadavg()[0]
    root = args.work.resolve() / "cubes"
    paths = ensure_files(root / "files", args.files, args.size, args.tile)
    local = [str(p) for p in paths]
    refs = root / "refs" / "bench"
    each_local, ref_local = reference_each(local, args.work.resolve() / "refs-local")
    combined_local = reference_combined(local, refs / "combined-local.json")
    url, cluster = bench_cubes.start_catalogue(args.work)
    server = None
    try:
        port = bench_cubes.free_port()
        log = args.work / "access.log"
        server = bench_open.start_api(url, root, port, log, True)
        urls = [f"{server.base}/cubes/files/{p.name}" for p in paths]
        each_http, ref_http = reference_each(urls, refs / "http")
        combined_http = reference_combined(urls, refs / "combined-http.json")
        base = f"{server.base}/cubes/refs/bench"
        ways = {
            "local": openers(
                local, [str(p) for p in each_local], str(refs / "combined-local.json")
            ),
            "http": openers(
                urls,
                [f"{base}/http/{p.name}" for p in each_http],
                f"{base}/combined-http.json",
            ),
        }
        result = measure(args, ways)
        counts = count_requests(log, ways["http"], args.size)
    finally:
        if server is not None and server.process.poll() is None:
            server.stop()
        if cluster is not None:
            cluster.stop()
            shutil.rmtree(cluster.data_dir, ignore_errors=True)
    facts = {
        "load": (load_before, os.getloadavg()[0]),
        "file_kib": paths[0].stat().st_size / 1024,
        "each_kib": each_local[0].stat().st_size / 1024,
        "combined_kib": (refs / "combined-local.json").stat().st_size / 1024,
        "ref_local": ref_local,
        "ref_http": ref_http,
        "combined_local": combined_local,
        "combined_http": combined_http,
    }
    text = report(args, result, counts, facts)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")


if __name__ == "__main__":
    main()
