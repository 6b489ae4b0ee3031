"""The servers the tile benchmark compares, each started as its own process tree (uvicorn
with the same worker count) and stopped before the next one starts:

- `cubestac`: `cubestac serve --workers N` on the site's catalogue (the cube item's tiles);
  `cubestac-nocache` is the same with the rendered-tile cache off (`CUBESTAC_TILES__CACHE_MB=0`),
  so every request reads and renders like the peers do (its decoded-chunk cache stays on).
- `titiler-xarray`: `uvicorn titiler.xarray.main:app --workers N` (its own application) in
  the peer venv; tiles of `url=<level 0>&variable=V`.
- `xpublish-tiles`: `uvicorn tiles_xpublish_app:app --workers N` (bench/tiles_xpublish_app.py)
  in its own venv (it needs Python >= 3.12); the level 0 group, or with `--xpublish-tree`
  the multiscales root as a DataTree.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

from search_common import BenchFailure, free_port, tail, wait_http

BENCH = Path(__file__).resolve().parent
STOP_WAIT_S = 20.0
START_WAIT_S = 120.0


@dataclass(frozen=True)
class Style:
    """How a variable is drawn, the same on every side."""

    variable: str
    rescale: tuple[float, float] | None = None
    colormap_name: str | None = None  # a matplotlib / rio-tiler name
    classes: dict[int, str] | None = None  # value -> #rrggbb for categorical variables


STYLES = {
    "agb": Style("agb", (0.0, 300.0), "viridis"),
    "forest_type": Style("forest_type", classes={1: "#1b9e77", 2: "#d95f02", 3: "#7570b3"}),
}
CUBE_OF = {"agb": "biomass", "forest_type": "forest-type"}
# another variable of the same cube: a cold measurement first asks for one tile of it, so
# the process has opened the store and compiled what it compiles (xpublish-tiles' numba
# kernels take seconds) without reading a chunk of the measured variable
PRIMER = {"agb": "canopy_height"}


@dataclass
class Side:
    """One server: how to start it, how to ask it for a tile, what it is."""

    name: str
    command: list[str]
    env: dict[str, str]
    port: int
    health_path: str
    tile_path: str  # with {z} {x} {y}
    params: str
    primer_params: str | None  # the same request for the PRIMER variable
    version: str
    log: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def template(self) -> str:
        return self.base + self.tile_path

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        handle = self.log.open("a")
        handle.write(f"\n$ {' '.join(self.command)}\n")
        handle.flush()
        self.process = subprocess.Popen(
            self.command, env=self.env, stdout=handle, stderr=subprocess.STDOUT,
            cwd=BENCH, start_new_session=True,
        )  # fmt: skip
        try:
            wait_http(self.base + self.health_path, START_WAIT_S, self.process)
        except BenchFailure as error:
            self.stop()
            raise BenchFailure(f"{self.name}: {error}\n{tail(self.log)}") from error

    def stop(self) -> None:
        """SIGTERM to the server's own session (master + workers), SIGKILL if it lingers."""
        if self.process is None or self.process.poll() is not None:
            self.process = None
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(STOP_WAIT_S)
        self.process = None

    def cpu_seconds(self) -> float:
        """User + system CPU of the server's tree so far (master and workers)."""
        if self.process is None:
            return 0.0
        return tree_cpu(self.process.pid)


def tree_cpu(pid: int) -> float:
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for proc in procs:
        try:
            times = proc.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return total


def ours_params(style: Style) -> str:
    parts = [("variable", style.variable)]
    if style.rescale:
        parts.append(("rescale", f"{style.rescale[0]:g},{style.rescale[1]:g}"))
    if style.colormap_name:
        parts.append(("colormap", style.colormap_name))
    return _query(parts)  # categorical: the cube's own class colormap (same colours)


def titiler_params(style: Style, level0: str) -> str:
    parts = [("url", level0), ("variable", style.variable)]
    if style.rescale:
        parts.append(("rescale", f"{style.rescale[0]:g},{style.rescale[1]:g}"))
    if style.colormap_name:
        parts.append(("colormap_name", style.colormap_name))
    if style.classes:
        parts.append(("colormap", json.dumps({str(k): v for k, v in style.classes.items()})))
    return _query(parts)


def xpublish_params(style: Style) -> str:
    parts = [("variables", style.variable), ("width", "256"), ("height", "256"),
             ("f", "image/png")]  # fmt: skip
    if style.rescale:
        parts.append(("colorscalerange", f"{style.rescale[0]:g},{style.rescale[1]:g}"))
    if style.colormap_name:
        parts.append(("style", f"raster/{style.colormap_name}"))
    if style.classes:
        parts.append(("style", "raster/custom"))
        parts.append(("colormap", json.dumps({str(k): v for k, v in style.classes.items()})))
    return _query(parts)


def _primer(params: Callable[[Style], str], style: Style) -> str | None:
    other = PRIMER.get(style.variable)
    return params(replace(style, variable=other)) if other else None


def _query(parts: list[tuple[str, str]]) -> str:
    return "&".join(f"{k}={quote(v, safe='/,:')}" for k, v in parts)


def ours(database_url: str, style: Style, workers: int, logs: Path, tile_cache: bool) -> Side:
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "CUBESTAC_LOG_LEVEL": "WARNING"}
    if not tile_cache:
        env["CUBESTAC_TILES__CACHE_MB"] = "0"
    cli = str(Path(sys.executable).parent / "cubestac")
    name = "cubestac" if tile_cache else "cubestac-nocache"
    item = f"/collections/forest-recovery/items/{CUBE_OF[style.variable]}"
    return Side(
        name, [cli, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers",
               str(workers)], env, port, "/", item + "/tiles/WebMercatorQuad/{z}/{x}/{y}.png",
        ours_params(style), _primer(ours_params, style), _our_version(), logs / f"{name}.log",
    )  # fmt: skip


def titiler(python: str, level0: str, style: Style, workers: int, logs: Path) -> Side:
    port = free_port()
    env = {**os.environ, "TITILER_XARRAY_API_DEBUG": "false"}
    env.pop("PYTHONPATH", None)
    command = [python, "-m", "uvicorn", "titiler.xarray.main:app", "--host", "127.0.0.1",
               "--port", str(port), "--workers", str(workers), "--no-access-log",
               "--log-level", "warning"]  # fmt: skip
    return Side(
        "titiler-xarray", command, env, port, "/healthz",
        "/tiles/WebMercatorQuad/{z}/{x}/{y}.png", titiler_params(style, level0),
        _primer(lambda s: titiler_params(s, level0), style),
        peer_version(python, ["titiler-xarray", "titiler-core", "rio-tiler", "xarray", "zarr"]),
        logs / "titiler-xarray.log",
    )  # fmt: skip


def xpublish(python: str, path: str, as_tree: bool, style: Style, workers: int, logs: Path) -> Side:
    port = free_port()
    env = {**os.environ, "TILEBENCH_ZARR": path, "TILEBENCH_TREE": "1" if as_tree else "0"}
    env.pop("PYTHONPATH", None)
    command = [python, "-m", "uvicorn", "tiles_xpublish_app:app", "--host", "127.0.0.1",
               "--port", str(port), "--workers", str(workers), "--no-access-log",
               "--log-level", "warning"]  # fmt: skip
    return Side(
        "xpublish-tiles" + ("-tree" if as_tree else ""), command, env, port,
        "/tiles/conformance", "/tiles/WebMercatorQuad/{z}/{y}/{x}", xpublish_params(style),
        _primer(xpublish_params, style),
        peer_version(python, ["xpublish-tiles", "xpublish", "datashader", "xarray", "zarr"]),
        logs / "xpublish-tiles.log",
    )  # fmt: skip


def peer_version(python: str, packages: list[str]) -> str:
    code = (
        "import importlib.metadata as m, sys\n"
        "print(' '.join(f'{p} {m.version(p)}' for p in sys.argv[1:]))"
    )
    result = subprocess.run(
        [python, "-c", code, *packages], capture_output=True, text=True, timeout=60, cwd=BENCH
    )
    return result.stdout.strip() or f"? ({result.stderr.strip()[-200:]})"


def _our_version() -> str:
    import importlib.metadata as metadata

    from search_common import code_version

    head = code_version()["head"]
    libs = " ".join(f"{p} {metadata.version(p)}" for p in ("rio-tiler", "xarray", "zarr"))
    return f"cubestac {head} {libs}"


def describe(sides: list[Side]) -> list[dict[str, Any]]:
    return [{"side": s.name, "version": s.version, "command": " ".join(s.command[1:]),
             "tile": s.tile_path, "params": s.params} for s in sides]  # fmt: skip


def drop_page_cache() -> bool:
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("1\n")
    except OSError:
        return False
    return True
