"""Which tiles the tile benchmark asks for, and the client that asks: WebMercatorQuad tiles
that touch the cube (seeded), loaded at a fixed concurrency by one asyncio aiohttp client
whose own CPU time is measured, so a client that saturates a 2-core box is visible.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import math
import random
import statistics
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SAMPLES_PER_SIDE = 6  # points per tile side tested against the cube's footprint
Tile = tuple[int, int, int]  # z, x, y


@dataclass(frozen=True)
class Footprint:
    """The cube's grid in its own CRS: what a tile must touch to be asked for."""

    crs: str
    west: float
    south: float
    east: float
    north: float

    @classmethod
    def of_store(cls, level0: str, variable: str) -> Footprint:
        import xarray as xr

        with xr.open_zarr(level0) as ds:
            x, y = ds[variable]["x"].values, ds[variable]["y"].values
            crs = ds["spatial_ref"].attrs.get("crs_wkt") or ds[variable].attrs["_CRS"]["wkt"]
        half_x, half_y = abs(x[1] - x[0]) / 2, abs(y[1] - y[0]) / 2
        return cls(
            crs, float(x.min() - half_x), float(y.min() - half_y),
            float(x.max() + half_x), float(y.max() + half_y),
        )  # fmt: skip

    def touches(self, tms: Any, to_cube: Any, tile: Tile) -> bool:
        """True when a grid of points over the tile has one inside the cube, or a grid of
        points over the cube has one inside the tile (a tile much larger than the cube)."""
        import numpy as np

        bounds = tms.xy_bounds(tile[1], tile[2], tile[0])
        tx, ty = _grid(bounds.left, bounds.bottom, bounds.right, bounds.top)
        cx, cy = to_cube.transform(tx, ty)
        if np.any((cx >= self.west) & (cx <= self.east) & (cy >= self.south) & (cy <= self.north)):
            return True
        gx, gy = _grid(self.west, self.south, self.east, self.north)
        mx, my = to_cube.transform(gx, gy, direction="INVERSE")
        inside = (mx >= bounds.left) & (mx <= bounds.right)
        return bool(np.any(inside & (my >= bounds.bottom) & (my <= bounds.top)))

    @functools.cache  # noqa: B019 - a few footprints per run, each kept for the run
    def tiles(self, zoom: int) -> list[Tile]:
        """Every WebMercatorQuad tile of `zoom` that touches the cube."""
        import morecantile
        from pyproj import Transformer

        tms = morecantile.tms.get("WebMercatorQuad")
        to_lonlat = Transformer.from_crs(self.crs, "EPSG:4326", always_xy=True)
        lons, lats = to_lonlat.transform(
            [self.west, self.west, self.east, self.east, (self.west + self.east) / 2],
            [self.south, self.north, self.south, self.north, self.north],
        )
        to_cube = Transformer.from_crs(tms.crs._pyproj_crs, self.crs, always_xy=True)
        candidates = tms.tiles(min(lons), min(lats), max(lons), max(lats), [zoom])
        return [(t.z, t.x, t.y) for t in candidates if self.touches(tms, to_cube, (t.z, t.x, t.y))]


def _grid(west: float, south: float, east: float, north: float) -> tuple[Any, Any]:
    import numpy as np

    xs = np.linspace(west, east, SAMPLES_PER_SIDE)
    ys = np.linspace(south, north, SAMPLES_PER_SIDE)
    grid_x, grid_y = np.meshgrid(xs, ys)
    return grid_x.ravel(), grid_y.ravel()


def zoomed_out_zooms(footprint: Footprint, most: int = 4) -> list[int]:
    """The zooms at which the whole cube fits in 1..`most` tiles (and is more than a dot:
    at least the deepest zoom that still holds it in one tile)."""
    zooms, zoom = [], 0
    while zoom < 24:
        count = len(footprint.tiles(zoom))
        if count > most:
            break
        zooms.append(zoom)
        zoom += 1
    return [z for z in zooms if z >= (zooms[-1] - 2)] if zooms else []


def native_zoom(footprint: Footprint, resolution: float) -> int:
    """The first zoom whose ground pixel (at the cube's middle latitude) is finer than the
    cube's own pixel: where level 0 is read."""
    import math

    from pyproj import Transformer

    to_lonlat = Transformer.from_crs(footprint.crs, "EPSG:4326", always_xy=True)
    _, lat = to_lonlat.transform(
        (footprint.west + footprint.east) / 2, (footprint.south + footprint.north) / 2
    )
    zoom = 0
    while 156543.034 / 2**zoom * math.cos(math.radians(lat)) > resolution:
        zoom += 1
    return zoom


def mixed_set(footprint: Footprint, zooms: Sequence[int], per_zoom: int, seed: int) -> list[Tile]:
    """Up to `per_zoom` tiles of each zoom (seeded draw), shuffled together."""
    rng = random.Random(seed)
    chosen: list[Tile] = []
    for zoom in zooms:
        tiles = footprint.tiles(zoom)
        chosen.extend(rng.sample(tiles, min(per_zoom, len(tiles))))
    rng.shuffle(chosen)
    return chosen


@dataclass
class LoadResult:
    """One load run: what was asked, how fast it was answered and what the client cost."""

    concurrency: int
    wall_s: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    bytes: int = 0
    client_cpu_s: float = 0.0
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> int:
        return self.statuses.get("200 png", 0)

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies_ms)
        return {
            "requests": len(lat),
            "ok_png": self.ok,
            "statuses": dict(self.statuses),
            "tiles_per_s": round(self.ok / self.wall_s, 2) if self.wall_s else None,
            "p50_ms": round(percentile(lat, 50), 1) if lat else None,
            "p95_ms": round(percentile(lat, 95), 1) if lat else None,
            "mean_ms": round(statistics.fmean(lat), 1) if lat else None,
            "first_ms": round(self.latencies_ms[0], 1) if lat else None,
            "wall_s": round(self.wall_s, 2),
            "client_cpu_s": round(self.client_cpu_s, 2),
            "client_cores": round(self.client_cpu_s / self.wall_s, 2) if self.wall_s else None,
            "kb_per_tile": round(self.bytes / 1024 / max(len(lat), 1), 1),
            "first_errors": self.errors[:3],
        }


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), math.ceil(q / 100 * len(sorted_values))))
    return sorted_values[rank - 1]


def classify(status: int, body: bytes) -> str:
    if status == 200 and body.startswith(PNG_MAGIC):
        return "200 png"
    return f"{status} {'empty' if not body else 'other'}"


async def _one(session: Any, url: str, result: LoadResult) -> None:
    import aiohttp

    started = time.perf_counter()
    try:
        async with session.get(url) as response:
            body = await response.read()
            status = response.status
    except (aiohttp.ClientError, TimeoutError) as error:
        result.statuses["client error"] += 1
        result.errors.append(f"{url}: {error!r}")
        return
    result.latencies_ms.append((time.perf_counter() - started) * 1000)
    kind = classify(status, body)
    result.statuses[kind] += 1
    result.bytes += len(body)
    if kind != "200 png":
        result.errors.append(f"{url}: {status} {body[:200]!r}")


async def _load(urls: Sequence[str], concurrency: int, duration: float, passes: int) -> LoadResult:
    """Workers draw the URLs in order, cycling, until `duration` is over and at least
    `passes` passes are done; the wall time ends with the last answer."""
    import aiohttp

    result = LoadResult(concurrency)
    total = max(len(urls), len(urls) * passes)
    cursor = itertools.count()  # shared by the workers: each index is asked once
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    timeout = aiohttp.ClientTimeout(total=300)
    started = time.perf_counter()
    deadline = started + duration

    async def worker(session: Any) -> None:
        for index in cursor:
            if index >= total and time.perf_counter() > deadline:
                return
            await _one(session, urls[index % len(urls)], result)

    cpu = time.process_time()
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    result.wall_s = time.perf_counter() - started
    result.client_cpu_s = time.process_time() - cpu
    return result


def load(urls: Sequence[str], concurrency: int, duration: float, passes: int = 1) -> LoadResult:
    return asyncio.run(_load(urls, concurrency, duration, passes))


def sequential(urls: Sequence[str]) -> LoadResult:
    """One keep-alive connection, one request at a time (so one server worker answers
    them all: the latency a single map client sees)."""
    return asyncio.run(_load(urls, 1, 0.0, 1))


def probe(
    primer: str | None, cold: Sequence[str], warm: Sequence[str], between: Callable[[], bool]
) -> tuple[LoadResult | None, bool, LoadResult, LoadResult]:
    """On ONE keep-alive connection (so one server worker answers everything): the primer,
    then `between()` (dropping the page cache), then the cold URLs, then the warm ones."""
    return asyncio.run(_probe(primer, cold, warm, between))


async def _probe(
    primer: str | None, cold: Sequence[str], warm: Sequence[str], between: Callable[[], bool]
) -> tuple[LoadResult | None, bool, LoadResult, LoadResult]:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=1)
    timeout = aiohttp.ClientTimeout(total=300)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        primed = None
        if primer is not None:
            primed = LoadResult(1)
            await _one(session, primer, primed)
        done = between()
        results = []
        for urls in (cold, warm):
            result = LoadResult(1)
            started, cpu = time.perf_counter(), time.process_time()
            for url in urls:
                await _one(session, url, result)
            result.wall_s = time.perf_counter() - started
            result.client_cpu_s = time.process_time() - cpu
            results.append(result)
    return primed, done, results[0], results[1]


def url_builder(template: str, params: str) -> Callable[[Tile], str]:
    """`template` holds {z} {x} {y}; `params` is the query string (without `?`)."""

    def build(tile: Tile) -> str:
        z, x, y = tile
        return template.format(z=z, x=x, y=y) + (f"?{params}" if params else "")

    return build


def save_tiles(path: Path, tiles: Sequence[Tile]) -> None:
    path.write_text("\n".join(f"{z}/{x}/{y}" for z, x, y in tiles) + "\n")
