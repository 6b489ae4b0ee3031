"""Build and publish the cubes of a CONFIG, one after the other, each on its own.

Per cube: take the cube's advisory lock (skip, and say so, when another run holds it),
record a job, resolve the inputs in the catalogue, build and write a new version in a
worker thread (dask runs it on the cluster), publish the item, retire old versions. Any
failure fails that cube only; the job row and the result carry the message.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distributed import KilledWorker

from catalogue.cube_layout import DATA_ASSET, FULL_RESOLUTION_GROUP, group_url, store_url
from catalogue.cube_root import normalise_root
from catalogue.database import Database
from catalogue.repositories.jobs import (
    JobStatus,
    finish_job,
    record_skipped,
    start_job,
    target_lock,
)
from catalogue.version_links import add_version_fields
from cubes import compute
from cubes.assets import configure_gdal_s3
from cubes.build import BuiltCube, build_cube
from cubes.cf import cf_dataset, encoding
from cubes.compute import ComputePool
from cubes.errors import CubeError, OutputError, UserCodeError
from cubes.estimate import estimate
from cubes.grid import target_geobox, wgs84_footprint
from cubes.icechunk_store import Commit, commit_version, repository_url, rollback
from cubes.publish import current_href, publish
from cubes.pyramid import PyramidPlan, build_pyramid, full_resolution_attrs
from cubes.resolve import ResolvedInput, resolve_inputs
from cubes.spec import CubeSpec
from cubes.to_item import categorical_variables, cube_item
from cubes.write import (
    CubeStore,
    check_writable,
    mark_retired,
    open_written,
    remove_version,
    store_bytes,
    sweep,
    write_version,
)

logger = logging.getLogger(__name__)
JOB_KIND = "cube"


@dataclass
class CubeResult:
    """What the status table and `cubestac jobs` show for one cube."""

    cube: str
    status: JobStatus
    duration_s: float
    size_bytes: int | None = None
    message: str = ""
    href: str | None = None
    counts: dict[str, int] = field(default_factory=dict)


@dataclass
class Reporter:
    """Callbacks for progress; called from worker threads, so they must be thread-safe."""

    started: Callable[[str], None] = lambda cube: None
    planned: Callable[[str, str], None] = lambda cube, estimate: None  # before computing
    progress: Callable[[str, int, int], None] = lambda cube, done, total: None
    finished: Callable[[CubeResult], None] = lambda result: None


@dataclass
class RunContext:
    """What a run needs: the catalogue, the cube root (`CUBESTAC_CUBE_ROOT`), the dask pool,
    the CONFIG's folder (for user code) and where progress goes."""

    database: Database
    cube_root: str
    pool: ComputePool
    config_dir: Path | None = None
    reporter: Reporter = field(default_factory=Reporter)
    cube_anon: bool = False  # CUBESTAC_CUBE_ANON: items tell S3 readers to go anonymous
    values_per_thread_s: float = 7_500_000.0  # CUBESTAC_CUBES__VALUES_PER_THREAD_S

    def __post_init__(self) -> None:
        self.cube_root = normalise_root(self.cube_root)


@dataclass
class _Written:
    url: str
    item: dict[str, Any]
    size: int
    counts: dict[str, int]
    commit: Commit | None = None  # a versioned cube's new version


async def run_cubes(specs: list[CubeSpec], context: RunContext) -> list[CubeResult]:
    results = []
    for spec in specs:
        result = await run_cube(spec, context)
        context.reporter.finished(result)
        results.append(result)
    return results


async def run_cube(spec: CubeSpec, context: RunContext) -> CubeResult:
    database = context.database
    started = time.monotonic()
    async with target_lock(database.engine, JOB_KIND, spec.id) as acquired:
        if not acquired:
            message = "skipped: another run is building this cube"
            await database.transaction(
                lambda conn: record_skipped(conn, JOB_KIND, spec.id, message)
            )
            return CubeResult(spec.id, JobStatus.SKIPPED, 0.0, message=message)
        pid = acquired.pid
        job = await database.transaction(lambda conn: start_job(conn, JOB_KIND, spec.id, pid))
        context.reporter.started(spec.id)
        try:
            written = await _build_and_publish(spec, context)
        except Exception as error:  # noqa: BLE001 - one cube's failure must not stop the run
            return await _failed(spec, job, error, started, context)
        elapsed = time.monotonic() - started
        href = written.item["assets"][DATA_ASSET]["href"]  # `<store>/0`, what readers open
        message = f"published {href}"
        if written.commit is not None:
            message += f" (version {written.commit.snapshot_id})"
        await database.transaction(
            lambda conn: finish_job(conn, job, JobStatus.SUCCEEDED, written.counts, [], message)
        )
        logger.info("cube %s: %s in %.1f s", spec.id, message, elapsed)
        return CubeResult(
            spec.id, JobStatus.SUCCEEDED, elapsed, written.size, message, href,
            written.counts,
        )  # fmt: skip


async def _failed(
    spec: CubeSpec, job: int, error: Exception, started: float, context: RunContext
) -> CubeResult:
    if isinstance(error, CubeError):
        message = str(error)
        logger.error("%s", message)
    elif isinstance(error, KilledWorker):
        message = (
            f"cube {spec.id!r}: a dask worker process died while running a task (user code "
            f"calling os._exit, a crash or running out of memory): {error}"
        )
        logger.error("%s", message)
    else:
        message = f"cube {spec.id!r}: {type(error).__name__}: {error}"
        logger.error("%s", message, exc_info=error)
    detail = {"cube": spec.id, "where": getattr(error, "where", None), "message": message}
    await context.database.transaction(
        lambda conn: finish_job(conn, job, JobStatus.FAILED, {}, [detail], message)
    )
    return CubeResult(spec.id, JobStatus.FAILED, time.monotonic() - started, message=message)


async def _build_and_publish(spec: CubeSpec, context: RunContext) -> _Written:
    geobox = target_geobox(spec.grid, spec.id)
    _, wgs84_bbox = wgs84_footprint(geobox)
    resolved = await resolve_inputs(context.database, spec, wgs84_bbox)
    store = CubeStore(context.cube_root, spec.collection, spec.id, context.cube_anon)
    previous = await current_href(context.database, spec)
    written = await asyncio.to_thread(_guarded_write, spec, resolved, geobox, store, context)
    try:
        if previous and store_url(previous) != written.url:
            await asyncio.to_thread(mark_retired, previous)
        await publish(context.database, spec, written.item)
    except BaseException:
        if written.commit is not None:  # readers of `main` saw it: back to what is published
            await asyncio.to_thread(rollback, written.commit)
        else:
            await asyncio.to_thread(remove_version, written.url)
        raise
    try:
        await asyncio.to_thread(sweep, store, written.url, spec.grace_period)
    except Exception:  # noqa: BLE001 - old versions linger until the next sweep; not fatal
        logger.warning("cube %s: could not sweep old versions", spec.id, exc_info=True)
    return written


def _guarded_write(
    spec: CubeSpec,
    resolved: list[ResolvedInput],
    geobox: Any,
    store: CubeStore,
    context: RunContext,
) -> _Written:
    """`_write`, with `SystemExit`, `KeyboardInterrupt` and other non-`Exception`s turned
    into this cube's failure. No signal reaches a worker thread, so they come from user code
    (a hook, or a function it mapped over dask blocks, whose error the client re-raises)."""
    try:
        return _write(spec, resolved, geobox, store, context)
    except Exception:
        raise
    except BaseException as error:  # noqa: BLE001 - see the docstring
        raise UserCodeError(
            f"the build was ended by {type(error).__name__}: {error} "
            "(raised by user code: a processing hook or a function it runs on the data)",
            cube=spec.id,
        ) from error


def _write(
    spec: CubeSpec,
    resolved: list[ResolvedInput],
    geobox: Any,
    store: CubeStore,
    context: RunContext,
) -> _Written:
    """Runs in a worker thread: everything that touches pixels or the cube store."""
    check_writable(store)
    configure_gdal_s3()
    client = context.pool.client(spec.compute)
    built = build_cube(spec, resolved, geobox, context.config_dir)
    dataset = cf_dataset(built, spec, geobox)
    threads = sum(client.nthreads().values())
    planned = estimate(dataset, spec.grid.tile_size, threads, context.values_per_thread_s)
    context.reporter.planned(spec.id, planned.describe(threads, context.values_per_thread_s))
    url = store.new_version()
    counts = _counts(built, resolved)
    done_before = [0]  # tasks of earlier computations: progress runs on across them

    def on_progress(done: int, total: int) -> None:
        context.reporter.progress(spec.id, done_before[0] + done, done_before[0] + total)

    def run(work: Any) -> None:
        tasks = len(work.__dask_graph__())
        counts["tasks"] = counts.get("tasks", 0) + tasks
        compute.run(client, work, on_progress)
        done_before[0] += tasks

    plan = pyramid_plan(dataset, built, spec, geobox)
    dataset.attrs.update(full_resolution_attrs(plan, (dataset.sizes["y"], dataset.sizes["x"])))
    versioned = spec.store == "icechunk"
    published = repository_url(store.folder) if versioned else url
    try:
        write_version(dataset, dict(plan.encoding), url, spec.zarr_format, run)
        pyramid = build_pyramid(url, spec.zarr_format, plan, run)
        _verify(group_url(url, FULL_RESOLUTION_GROUP), spec, built, store.reader_options)
        size = store_bytes(url)
        item = cube_item(dataset, built, spec, geobox, published, store.reader_options, pyramid)
        commit = _commit(spec, url, published, item, store.reader_options) if versioned else None
    except BaseException:
        remove_version(url)
        raise
    if commit is not None:
        remove_version(url)  # committed: the staged store has served its purpose
    counts["bytes"] = size
    counts["levels"] = len(pyramid.levels)
    return _Written(published, item, size, counts, commit)


def _commit(
    spec: CubeSpec, staged: str, repository: str, item: dict[str, Any], options: dict[str, Any]
) -> Commit:
    """The staged store committed as the next version of the cube's Icechunk repository,
    the item given the version's id and its predecessor (`cubes.icechunk_store`). The
    commit's metadata keeps the item as built, which the API serves for that version."""
    try:
        commit = commit_version(
            repository, staged, f"cubestac: build of cube {spec.id}", {"item": item}
        )
    except Exception as error:  # noqa: BLE001 - icechunk, zarr and S3 raise many types
        raise OutputError(
            f"could not commit the new version to {repository}: {type(error).__name__}: {error}",
            cube=spec.id,
        ) from error
    add_version_fields(item, commit.snapshot_id, commit.predecessor_id, options)
    return commit


def pyramid_plan(dataset: Any, built: BuiltCube, spec: CubeSpec, geobox: Any) -> PyramidPlan:
    """How the levels resample each variable (mode for classes, else average), with level
    0's nodata and encoding; and the time-series layout when the cube asks for it."""
    categorical = set(categorical_variables(dataset, built))
    layout = spec.timeseries_layout
    return PyramidPlan(
        resampling={name: "mode" if name in categorical else "average" for name in built.layers},
        nodata={name: layer.nodata for name, layer in built.layers.items()},
        encoding=encoding(dataset, built, spec),
        derived_encoding=encoding(dataset, built, spec, derived=True),
        tile=spec.grid.tile_size,
        crs=geobox.crs.proj,
        transform=tuple(geobox.transform)[:6],
        timeseries=layout is not None,
        timeseries_chunk=layout.chunk if layout is not None else None,
        inner_chunk=spec.inner_chunk,
    )


def _counts(built: BuiltCube, resolved: list[ResolvedInput]) -> dict[str, int]:
    return {
        "inputs": len(resolved),
        "items": sum(len(r.items) for r in resolved),
        "variables": len(built.layers),
    }


def _verify(url: str, spec: CubeSpec, built: BuiltCube, options: dict[str, Any]) -> None:
    """Open the new version the way readers will (the item's storage options), before
    anyone is pointed at it."""
    try:
        written = open_written(url, spec.zarr_format, options)
    except Exception as error:  # noqa: BLE001 - zarr/fsspec raise many types
        hint = (
            " without credentials (CUBESTAC_CUBE_ANON is set: the bucket must allow public"
            " reads, s3:GetObject for everyone)"
            if options.get("anon")
            else ""
        )
        raise OutputError(
            f"the written store {url} does not open{hint}: {type(error).__name__}: {error}",
            cube=spec.id,
        ) from error
    missing = sorted(set(built.layers) - set(written.data_vars))
    if missing:
        raise OutputError(f"the written store {url} lacks {', '.join(missing)}", cube=spec.id)
