"""The cubes of the tile benchmark: the forest-recovery inputs of the shared harness
(`gen_inputs.py`, seed 42) built by OUR builder (`cubestac cubes CONFIG`) into a scratch
folder, with the private catalogue that serves them kept beside them.

Every side of the benchmark reads the same store: ours through the catalogue item, the
peers by path (level 0, `<store>/0`, or the store itself when it has no levels).

    <work>/data-<scale>/        the harness's inputs (forest_type.tif, biomass_cover_height.tif)
    <work>/site-<scale>/        catalogue/ (embedded PostGIS), root/ (cube root), config/,
                                site.json (port, stores, build time and the code that built them)
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from search_common import REPO, BenchFailure, code_version, free_port, tail

HARNESS_CUBES = ("forest_type", "biomass")  # a categorical and a continuous cube
COLLECTION = "forest-recovery"


def log(message: str) -> None:
    print(f"[tiles {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Site:
    """A built scale: where its catalogue listens and where each cube's store is."""

    folder: Path
    port: int
    stores: dict[str, str]  # cube id -> store URL (the version folder, `.../<stamp>.zarr`)
    facts: dict[str, Any]

    @property
    def catalogue_dir(self) -> Path:
        return self.folder / "catalogue"


def load_module(path: Path, name: str) -> ModuleType:
    """A module by path (bench/cubes.py would shadow the `cubes` package if imported)."""
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise BenchFailure(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


def cluster_for(folder: Path, port: int) -> Any:
    from catalogue.embedded import EmbeddedCluster
    from catalogue.settings import EmbeddedDatabaseSettings

    return EmbeddedCluster(EmbeddedDatabaseSettings(data_dir=folder, port=port))


def database_url(site: Site) -> str:
    """Start the site's catalogue (idempotent, migrated) and give its URL."""
    from catalogue.schema import upgrade

    url = cluster_for(site.catalogue_dir, site.port).start()
    upgrade(url.set(drivername="postgresql+asyncpg"))
    return url.render_as_string(hide_password=False)


def stop_catalogue(site: Site) -> None:
    cluster_for(site.catalogue_dir, site.port).stop()


def ensure_inputs(harness: Path, data: Path, scale: float) -> dict[str, Any]:
    """The two inputs at `scale` (generated once; the manifest's sha256 say what they are)."""
    manifest = data / "manifest.json"
    if manifest.exists():
        known = json.loads(manifest.read_text())
        if known.get("scale") == scale and set(HARNESS_CUBES) <= set(known.get("inputs", {})):
            return known
    data.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, str(harness / "gen_inputs.py"), "--out", str(data),
               "--scale", str(scale), "--seed", "42", "--only", *HARNESS_CUBES]  # fmt: skip
    log(f"generating inputs: {' '.join(command)}")
    subprocess.run(command, check=True, timeout=1800)
    return json.loads(manifest.read_text())


def load_site(folder: Path) -> Site | None:
    path = folder / "site.json"
    if not path.exists():
        return None
    facts = json.loads(path.read_text())
    return Site(folder, int(facts["port"]), dict(facts["stores"]), facts)


def build_site(
    harness: Path, work: Path, scale: float, cube_extra: dict[str, Any], rebuild: bool
) -> Site:
    """The built cubes at `scale`: reused when site.json exists (unless `rebuild`)."""
    folder = work / f"site-{scale:g}"
    site = load_site(folder)
    if site is not None and not rebuild:
        return site
    manifest = ensure_inputs(harness, work / f"data-{scale:g}", scale)
    port = site.port if site is not None else free_port()
    site = Site(folder, port, {}, {})
    folder.mkdir(parents=True, exist_ok=True)
    url = database_url(site)
    try:
        stores, timings = _build(harness, site, url, manifest, work / f"data-{scale:g}", cube_extra)
    finally:
        stop_catalogue(site)
    facts = {"port": port, "stores": stores, "scale": scale, "build_s": timings,
             "cube_extra": cube_extra, "code": code_version(),
             "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}  # fmt: skip
    (folder / "site.json").write_text(json.dumps(facts, indent=1, default=str))
    return Site(folder, port, stores, facts)


def _build(
    harness: Path,
    site: Site,
    url: str,
    manifest: dict[str, Any],
    data: Path,
    cube_extra: dict[str, Any],
) -> tuple[dict[str, str], dict[str, float]]:
    """Register the inputs, write the CONFIG, run `cubestac cubes` once per cube."""
    sys.path.insert(0, str(harness))
    bench_cubes = load_module(REPO / "bench" / "cubes.py", "bench_cubes")
    common = load_module(harness / "common.py", "harness_common")
    items = [bench_cubes.item_for(c, manifest["inputs"][c], data) for c in HARNESS_CUBES]
    asyncio.run(bench_cubes.seed(url, items))
    wanted = {cube.replace("_", "-") for cube in HARNESS_CUBES}
    config = bench_cubes.cube_config(common, manifest)
    config["cubes"] = [{**c, **cube_extra} for c in config["cubes"] if c["id"] in wanted]
    config_path = bench_cubes.write_config(site.folder / "config", config)
    env = {**os.environ, "DATABASE_URL": url, "CUBESTAC_CUBE_ROOT": str(site.folder / "root"),
           "CUBESTAC_DASK_WORKERS": "1", "CUBESTAC_DASK_THREADS": "2",
           "CUBESTAC_DASK_PROCESSES": "false"}  # fmt: skip
    cli = str(Path(sys.executable).parent / "cubestac")
    stores: dict[str, str] = {}
    timings: dict[str, float] = {}
    for cube_id in sorted(wanted):
        log_path = site.folder / f"build-{cube_id}.log"
        started = time.perf_counter()
        with log_path.open("w") as handle:
            result = subprocess.run(
                [cli, "cubes", str(config_path), "--cube", cube_id],
                env=env, stdout=handle, stderr=subprocess.STDOUT, timeout=1800,
            )  # fmt: skip
        if result.returncode != 0:
            raise BenchFailure(f"building {cube_id} failed, see {log_path}:\n{tail(log_path)}")
        timings[cube_id] = round(time.perf_counter() - started, 2)
        href, _job = asyncio.run(bench_cubes.published(url, cube_id))
        from catalogue.cube_layout import store_url

        stores[cube_id] = store_url(href)
        log(f"built {cube_id} in {timings[cube_id]} s: {stores[cube_id]}")
    return stores, timings


def level0_url(store: str) -> str:
    """What a peer opens: level 0 of a store with levels, else the store itself."""
    from catalogue.cube_layout import FULL_RESOLUTION_GROUP, group_url, levels_from_attrs

    attrs_path = Path(store) / ".zattrs"
    attrs = json.loads(attrs_path.read_text()) if attrs_path.exists() else {}
    levels = levels_from_attrs(attrs)
    if levels[0].path == FULL_RESOLUTION_GROUP:
        return group_url(store, FULL_RESOLUTION_GROUP)
    return store


def has_levels(store: str) -> bool:
    return level0_url(store) != store
