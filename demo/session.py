"""`cubestac demo`: the README's main command, end to end on one machine.

1. the demo world (`demo.world`) under `<folder>/world`, written once;
2. served on 127.0.0.1 by a child process (`demo.files`), as an upstream would be;
3. a CONFIG (`<folder>/cubestac.yaml`) and its user code (`<folder>/demo_processing.py`),
   which `cubestac ingest/cubes/run` accept as they are;
4. harvested with the code of `cubestac ingest` (a `stac-static` and two `files` sources);
5. cubes built with the code of `cubestac cubes` into `CUBESTAC_CUBE_ROOT` (default
   `<folder>/cubes`), with their levels and the time-series layout, or reused when nothing
   they are made of changed since they were built (a store from before levels is rebuilt);
6. a PNG quicklook per cube (asset `thumbnail`) for STAC Browser.

The caller then serves the API (`cubestac serve` code) while the file server keeps running, so
every href in the catalogue answers. A second run finds the world, the catalogue and the cubes
in place: it harvests nothing new and builds nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import yaml

from catalogue.database import Database, create_engine
from catalogue.repositories.jobs import JobStatus
from catalogue.settings import Settings
from demo.files import serve_files
from demo.world import BBOX, GRID_CRS, RESOLUTION, TILE_SIZE, World, ensure_world
from ingest.progress import RichProgress, for_stream
from ingest.report import SourceOutcome
from ingest.runner import run_ingest

logger = logging.getLogger(__name__)

CUBE_COLLECTION = "demo-cubes"
CUBE_ID = "forest-recovery"
CONFIG_NAME = "cubestac.yaml"
MODULE_NAME = "demo_processing"
STATE_NAME = "state.json"
TIMESERIES_CHUNK = 64  # the time-series layout: 4 years x 64 x 64 px per chunk
STORM_POINT = (4_313_050, 3_107_050)  # EPSG:3035, inside the patch the 2018 storm felled

PROCESSING_MODULE = '''"""User code of the demo cube (processing: demo_processing:forest_age_stats).

cubestac calls it on each forest-age item, in the file's own grid, before regridding.
"""

import xarray as xr


def forest_age_stats(ds: xr.Dataset) -> xr.Dataset:
    """Reduce the age ensemble to its mean and the spread between its members."""
    spread = ds["forest_age"].std("member", keep_attrs=True)
    spread.attrs["long_name"] = "forest age: standard deviation of the ensemble"
    mean = ds.mean("member", skipna=True, keep_attrs=True)
    mean["forest_age"].attrs["long_name"] = "forest age: ensemble mean"
    return mean.assign(forest_age_spread=spread)
'''


class DemoError(Exception):
    """The demo could not get its catalogue or cubes ready; the message says why."""


@dataclass(frozen=True)
class DemoOptions:
    """Where the demo keeps its files and on which port it serves its world."""

    folder: Path
    files_port: int = 8081

    @property
    def world(self) -> Path:
        return self.folder / "world"

    @property
    def config(self) -> Path:
        return self.folder / CONFIG_NAME

    @property
    def default_cube_root(self) -> Path:
        return self.folder / "cubes"


@dataclass
class DemoRun:
    """What a run did: the world, the CONFIG, the harvest and the cube outcomes."""

    world: World
    config: Path
    files_url: str
    settings: Settings
    ingest: list[SourceOutcome] = field(default_factory=list)
    built: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)


def default_folder(settings: Settings) -> Path:
    """Next to the embedded database: `<CUBESTAC_DB__DATA_DIR>/demo`."""
    return settings.db.data_dir / "demo"


def demo_config(files_url: str) -> dict[str, Any]:
    """The CONFIG the demo writes: three sources, one cube on the common EPSG:3035 grid."""
    return {
        "sources": [
            {"id": "demo-forest", "kind": "stac-static", "url": f"{files_url}/stac/catalog.json"},
            {
                "id": "demo-biomass", "kind": "files", "url": f"{files_url}/files/biomass/*.nc",
                "collection": {"id": "biomass", "title": "Above-ground biomass, yearly",
                               "license": "CC-BY-4.0"},
            },
            {
                "id": "demo-canopy", "kind": "files", "url": f"{files_url}/files/canopy/*.tif",
                "collection": {"id": "canopy-height", "title": "Canopy height",
                               "license": "CC-BY-4.0"},
            },
        ],
        "cubes": [
            {
                "id": CUBE_ID,
                "collection": CUBE_COLLECTION,
                "title": "Forest recovery (demo)",
                "description": "Forest type, age, canopy height and yearly biomass on one "
                "EPSG:3035 100 m grid.",
                "grid": {"crs": GRID_CRS, "bbox": list(BBOX), "resolution": RESOLUTION,
                         "tile_size": TILE_SIZE},
                "time": {"range": ["2017-01-01", "2020-12-31"], "period": "1Y",
                         "method": "mean"},
                "inputs": [
                    {"collection": "forest-type", "resampling": "mode"},
                    {"collection": "forest-age", "resampling": "bilinear",
                     "processing": f"{MODULE_NAME}:forest_age_stats"},
                    {"collection": "canopy-height", "resampling": "average"},
                    {"collection": "biomass", "variables": ["agb"], "resampling": "bilinear"},
                ],
                "timeseries": {"chunk": TIMESERIES_CHUNK},
            }
        ],
    }  # fmt: skip


def write_config(options: DemoOptions, files_url: str) -> Path:
    """CONFIG and the user code beside it, rewritten only when their text changes."""
    options.folder.mkdir(parents=True, exist_ok=True)
    header = (
        "# Written by `cubestac demo` (and rewritten by it): the demo's sources and cube.\n"
        "# While the demo runs, `cubestac run` on this file harvests and builds again.\n"
    )
    text = header + yaml.safe_dump(demo_config(files_url), sort_keys=False)
    _write_if_changed(options.config, text)
    _write_if_changed(options.folder / f"{MODULE_NAME}.py", PROCESSING_MODULE)
    return options.config


def _write_if_changed(path: Path, text: str) -> None:
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)


@contextmanager
def demo_session(settings: Settings, options: DemoOptions) -> Iterator[DemoRun]:
    """Get the world, the catalogue and the cubes ready, and keep the world served while
    the caller serves the API. `settings` must name a migrated catalogue."""
    if not settings.cube_root:
        settings = settings.model_copy(update={"cube_root": str(options.default_cube_root)})
    world = ensure_world(options.world)
    logger.info("demo world %s in %s", "generated" if world.created else "kept", world.root)
    with serve_files(world.root, options.files_port, options.folder / "files.log") as url:
        config = write_config(options, url)
        run = DemoRun(world, config, url, settings)
        run.ingest = _harvest(settings, config)
        failed = [o for o in run.ingest if o.status is JobStatus.FAILED]
        if failed:
            raise DemoError("harvest failed: " + "; ".join(o.summary() for o in failed))
        asyncio.run(_cubes(run, options))
        yield run


def _harvest(settings: Settings, config: Path) -> list[SourceOutcome]:
    from cubestac.ingest_commands import load_sources

    sources = load_sources(config)
    progress = for_stream(sys.stderr)
    display = progress if isinstance(progress, RichProgress) else nullcontext()
    with display:
        outcomes = asyncio.run(run_ingest(settings, sources, progress))
    for outcome in outcomes:
        logger.info("ingest %s", outcome.summary())
    return outcomes


async def _cubes(run: DemoRun, options: DemoOptions) -> None:
    """Build each cube unless the one published was built from the same world, CONFIG
    and user code and its store is still there."""
    from cubes.compute import ComputePool
    from cubes.runner import RunContext, run_cubes
    from cubestac.cube_commands import load_cubes
    from demo.preview import add_quicklook

    specs = load_cubes(run.config)
    state = _read_state(options)
    database = Database(create_engine(run.settings))
    try:
        stale = [spec for spec in specs if not await _reusable(database, spec, run, state)]
        run.reused = [spec.id for spec in specs if spec not in stale]
        if not stale:
            return
        logging.getLogger("distributed").setLevel(logging.WARNING)  # cluster chatter
        await _describe_collection(database)
        with ComputePool() as pool:
            context = RunContext(database, run.settings.cube_root or "", pool, options.folder)
            results = await run_cubes(stale, context)
        failed = [r for r in results if r.status is not JobStatus.SUCCEEDED]
        if failed:
            raise DemoError("cube build failed: " + "; ".join(r.message for r in failed))
        for spec, result in zip(stale, results, strict=True):
            assert result.href is not None
            await add_quicklook(database, spec, result.href, run.settings)
            state[spec.id] = {"fingerprint": _fingerprint(spec, run), "href": result.href}
            run.built.append(spec.id)
        _write_state(options, state)
    finally:
        await database.dispose()


async def _describe_collection(database: Database) -> None:
    """Title, description and license of the cube collection, for its STAC Browser page;
    set once (publishing grows its extent afterwards, which must not be overwritten)."""
    from catalogue.errors import NotFoundError
    from catalogue.repositories.collections import get_collection, upsert_collection
    from cubes.publish import new_collection

    async with database.write() as conn:
        try:
            await get_collection(conn, CUBE_COLLECTION)
        except NotFoundError:
            collection = new_collection(CUBE_COLLECTION)
            collection.update(
                title="Demo cubes",
                description="Analysis-ready Zarr cubes that `cubestac demo` built from its "
                "generated forest-recovery world (EPSG:3035, 100 m).",
                license="CC-BY-4.0",
                keywords=["demo", "datacube", "zarr", "forest"],
            )
            await upsert_collection(conn, collection)


def _fingerprint(spec: Any, run: DemoRun) -> str:
    module = (run.config.parent / f"{MODULE_NAME}.py").read_text()
    parts = [run.world.digest, spec.model_dump_json(), module, run.files_url]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


async def _reusable(database: Database, spec: Any, run: DemoRun, state: dict[str, Any]) -> bool:
    from catalogue.cube_layout import FULL_RESOLUTION_GROUP, group_url, store_url
    from cubes.publish import current_href
    from cubes.write import CubeStore

    known = state.get(spec.id) or {}
    if known.get("fingerprint") != _fingerprint(spec, run):
        return False
    href = await current_href(database, spec)
    if href is None or store_url(href) != store_url(str(known.get("href") or "")):
        return False
    store = store_url(href)
    filesystem, _ = CubeStore(run.settings.cube_root or "", spec.collection, spec.id).filesystem()
    levelled = group_url(store, FULL_RESOLUTION_GROUP)  # a store from before levels: rebuilt
    return bool(
        filesystem.exists(f"{levelled}/.zmetadata") or filesystem.exists(f"{levelled}/zarr.json")
    )


def _read_state(options: DemoOptions) -> dict[str, Any]:
    try:
        state = json.loads((options.folder / STATE_NAME).read_text())
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def _write_state(options: DemoOptions, state: dict[str, Any]) -> None:
    (options.folder / STATE_NAME).write_text(json.dumps(state, indent=1) + "\n")


def snippet(api_url: str) -> str:
    """The Python a user pastes: search the catalogue, open the cube lazily, read one pixel."""
    x, y = STORM_POINT
    return f'''import xarray as xr
from pystac_client import Client

client = Client.open("{api_url}")
item = next(client.search(collections=["{CUBE_COLLECTION}"], ids=["{CUBE_ID}"]).items())
asset = item.assets["zarr"]
cube = xr.open_zarr(asset.href, **asset.extra_fields["xarray:open_kwargs"])
print(cube)
# biomass where the 2018 storm felled the forest: high in 2017, then regrowing
print(cube["agb"].sel(x={x}, y={y}, method="nearest").values)
'''


def viewer_url(api_url: str) -> str:
    """The web viewer (api.viewer) opened on the demo cube."""
    query = urlencode({"collection": CUBE_COLLECTION, "item": CUBE_ID})
    return f"{api_url.rstrip('/')}/viewer?{query}"


def summary(run: DemoRun, api_url: str) -> str:
    """What the demo prints before it serves: what it did, the URLs and the snippet."""
    harvest = "\n".join(f"  {outcome.summary()}" for outcome in run.ingest)
    cubes = ", ".join([*(f"{c} built" for c in run.built), *(f"{c} reused" for c in run.reused)])
    base = api_url.rstrip("/")
    item = f"{base}/collections/{CUBE_COLLECTION}/items/{CUBE_ID}"
    return (
        f"demo world: {run.world.root} (served at {run.files_url}/)\n"
        f"CONFIG: {run.config}  (again, while the demo runs: "
        f"CUBESTAC_CUBE_ROOT={run.settings.cube_root} cubestac run {run.config})\n"
        f"harvest:\n{harvest}\n"
        f"cubes: {cubes} (under {run.settings.cube_root})\n\n"
        f"STAC API     {base}/\n"
        f"collections  {base}/collections\n"
        f"cube item    {item}\n"
        f"viewer       {viewer_url(base)}  (the cube on a map; click for a time series)\n"
        f"cube files   {base}/cubes/  (the Zarr stores the items point to)\n"
        f"API docs     {base}/api.html\n"
        f"STAC Browser give it {base}/ (CORS is open; item pages show a quicklook)\n\n"
        f"Paste into Python:\n\n{snippet(base)}\n"
        "Ctrl-C stops the API and the file server; `cubestac db stop` stops the database.\n"
    )
