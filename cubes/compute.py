"""Dask for cube builds: a `distributed.LocalCluster` sized from CONFIG/env, or the
scheduler at `DASK_SCHEDULER_ADDRESS` (DESIGN.md, "Real components").

Sizing, most specific first: the cube's `compute:` section, then `CUBESTAC_DASK_WORKERS`,
`CUBESTAC_DASK_THREADS`, `CUBESTAC_DASK_MEMORY_LIMIT` (total for the cluster, split evenly
across workers), `CUBESTAC_DASK_PROCESSES`, then the machine: one in-process worker with a
thread per core and 80 % of the RAM. One worker with threads is the default because the
heavy parts (GDAL warp, Blosc/Zstd, numpy) release the GIL, and tiles then never travel
between processes; `processes: true` isolates workers instead. Clusters are started lazily
and reused by every cube of a run that asks for the same size.

With a remote scheduler the workers must reach the cube root and the inputs themselves
(shared folder or S3) and have the same environment (AWS_*, GDAL options).
"""

from __future__ import annotations

import asyncio
import logging
import os
import warnings
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import dask
import psutil
from dask.utils import parse_bytes
from distributed import Client, LocalCluster, WorkerPlugin
from distributed.diagnostics.progressbar import ProgressBar
from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from tornado.platform.asyncio import BaseAsyncIOLoop

from cubes.assets import configure_gdal_s3
from cubes.spec import ComputeSpec, parse_memory

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]


class ComputeSettings(BaseSettings):
    """Cluster defaults from the environment (read when an entry point builds it)."""

    model_config = SettingsConfigDict(env_prefix="CUBESTAC_DASK_", extra="ignore")

    workers: int | None = Field(None, ge=1)
    threads: int | None = Field(None, ge=1)
    memory_limit: str | None = None
    processes: bool | None = None
    scheduler_address: str | None = Field(
        None, validation_alias=AliasChoices("DASK_SCHEDULER_ADDRESS")
    )

    @field_validator("memory_limit")
    @classmethod
    def _memory(cls, value: str | None) -> str | None:
        if value is not None:
            parse_memory(value)
        return value


@dataclass(frozen=True)
class ClusterSize:
    workers: int
    threads: int
    memory_per_worker: int
    processes: bool

    def describe(self) -> str:
        kind = "processes" if self.processes else "in-process"
        memory = self.memory_per_worker * self.workers / 2**30
        return f"{self.workers} worker(s) x {self.threads} thread(s), {memory:.1f} GiB, {kind}"


def cluster_size(spec: ComputeSpec, env: ComputeSettings) -> ClusterSize:
    cores = os.cpu_count() or 1
    workers = spec.workers or env.workers or 1
    threads = spec.threads or env.threads or max(1, cores // workers)
    limit = spec.memory_limit or env.memory_limit
    total = parse_bytes(limit) if isinstance(limit, str) else limit
    total = total or int(psutil.virtual_memory().total * 0.8)
    processes = spec.processes if spec.processes is not None else bool(env.processes)
    return ClusterSize(workers, threads, max(1, int(total) // workers), processes)


class ComputePool:
    """The dask clients of one run; close it (or use it as a context manager) at the end."""

    def __init__(self, env: ComputeSettings | None = None) -> None:
        self.env = env or ComputeSettings()
        self._clusters: dict[ClusterSize, tuple[LocalCluster, Client]] = {}
        self._remote: Client | None = None

    def __enter__(self) -> ComputePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def client(self, spec: ComputeSpec) -> Client:
        if self.env.scheduler_address:
            if self._remote is None:
                self._remote = Client(self.env.scheduler_address, set_as_default=False)
            return self._remote
        size = cluster_size(spec, self.env)
        if size not in self._clusters:
            self._clusters[size] = self._start(size)
        return self._clusters[size][1]

    def _start(self, size: ClusterSize) -> tuple[LocalCluster, Client]:
        configure_gdal_s3()  # before worker processes start: they inherit the environment
        logger.info("starting a dask LocalCluster: %s", size.describe())
        with dask.config.set(_memory_policy(size.processes)):
            cluster = LocalCluster(
                n_workers=size.workers,
                threads_per_worker=size.threads,
                memory_limit=size.memory_per_worker,
                processes=size.processes,
                dashboard_address=None,
                # not `silence_logs`: it sets the level of the root logger's handlers for
                # the cluster's life, which silenced cubestac's own progress logs (cron);
                # the CLI sets the `distributed` logger's level instead
                silence_logs=False,
            )
        client = Client(cluster, set_as_default=False)
        client.register_plugin(_GdalThreads(), name="cubestac-gdal-threads")
        return cluster, client

    def close(self) -> None:
        with _quiet_shutdown():
            for cluster, client in self._clusters.values():
                client.close()
                cluster.close()
            self._clusters.clear()
            if self._remote is not None:
                self._remote.close()
                self._remote = None


@contextmanager
def _quiet_shutdown() -> Iterator[None]:
    """Closing a cluster cancels its progress feeds and comms, which distributed logs as
    errors with tracebacks; at shutdown they are expected."""
    log = logging.getLogger("distributed")
    level = log.level
    log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        log.setLevel(level)


def _memory_policy(processes: bool) -> dict[str, Any]:
    """Worker memory thresholds that make sense for the kind of worker.

    A worker measures its memory as its process's resident size. A worker in a process of
    its own measures itself; an in-process worker (the default) measures the whole host
    process: the CLI with its catalogue connections, or an API or test process that has
    grown past the limit for reasons of its own. distributed then pauses the worker at 80 %
    of `memory_limit` and never resumes it, since nothing it could free brings the host
    below the line, and the build waits forever with no error. So an in-process worker is
    never paused and never spills on the process measure; it still spills by the size of
    the results it holds (`target`), which is its own. (distributed reads these from its
    configuration when a worker starts; the Worker keywords its docstring lists are gone.)
    """
    if processes:
        return {}
    return {"distributed.worker.memory.pause": False, "distributed.worker.memory.spill": False}


class TaskEnded(Exception):  # noqa: N818 - says what happened to the task
    """A task raised `SystemExit` or `KeyboardInterrupt` (user code calling `sys.exit()`);
    reported as the task's error instead of ending the worker."""


class GuardedThreadPoolExecutor(ThreadPoolExecutor):
    """The worker's task threads; `SystemExit`/`KeyboardInterrupt` out of a task become
    `TaskEnded`.

    distributed lets those two through on purpose, to shut the worker down: an in-process
    worker then takes the whole dask event loop with it (the client waits forever), a worker
    process is restarted and the task retried. Raised from a task they can only come from
    user code, and they must fail that cube only. (The class name keeps "ThreadPoolExecutor":
    distributed checks for it to run tasks with their context.)
    """

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        return super().submit(_guarded, fn, *args, **kwargs)


def _guarded(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except (SystemExit, KeyboardInterrupt) as error:
        raise TaskEnded(f"a task raised {type(error).__name__}: {error}") from None


class _GdalThreads(WorkerPlugin):
    """Each worker thread keeps one rasterio environment for its whole life.

    Without one, every `rasterio.warp.reproject` (one per tile and plane) builds and drops a
    GDAL environment, and when AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are set that means a
    new boto3 session each time, which made an S3-credentialled build several times slower
    (bench/results/code_figures.md). The worker's default thread pool is replaced by one
    whose threads enter `rasterio.Env()` once when they start (and which guards against user
    code ending the worker, see `GuardedThreadPoolExecutor`). Also quiets rasterio 1.4's
    "Dataset has no geotransform" warning, which it emits while creating the in-memory
    dataset of a warp, before it sets the transform.
    """

    def setup(self, worker: Any) -> None:
        from rasterio.errors import NotGeoreferencedWarning

        warnings.filterwarnings("ignore", category=NotGeoreferencedWarning)
        previous = worker.executors.get("default")
        worker.executors["default"] = GuardedThreadPoolExecutor(
            max_workers=worker.state.nthreads,
            thread_name_prefix="cubestac-worker",
            initializer=_enter_gdal_environment,
        )
        if previous is not None:
            previous.shutdown(wait=False)


def _enter_gdal_environment() -> None:
    import rasterio

    rasterio.Env().__enter__()  # left open on purpose: lives as long as the thread


def run(client: Client, work: Any, on_progress: ProgressCallback | None = None) -> None:
    """Compute `work` (a dask collection) on the cluster, reporting tasks done/total."""
    future = client.compute(work)
    feed = _Feed(future, client, on_progress) if on_progress is not None else None
    listening = feed.start(client) if feed is not None else None
    try:
        future.result()
    finally:
        future.release()
        if listening is not None:
            listening.cancel()  # the scheduler's last report may still be on its way
    if feed is not None and on_progress is not None and feed.total:
        on_progress(feed.total, feed.total)


class _Feed(ProgressBar):
    """distributed's scheduler-side progress, drawn by a callback instead of text.

    Overrides the private `_draw_bar` that `ProgressBar.listen` calls with each report;
    requirements.lock pins distributed, and tests/cubes/test_patched_internals.py fails,
    naming this class, when an upgrade changes what it relies on."""

    def __init__(self, future: Any, client: Client, on_progress: ProgressCallback) -> None:
        assert client.scheduler is not None  # set once the client has connected
        super().__init__([future], scheduler=client.scheduler.address, interval="250ms")
        self.client = weakref.ref(client)
        self._on_progress = on_progress
        self.total = 0

    def _draw_bar(self, remaining: int = 0, all: int = 0, **kwargs: Any) -> None:  # noqa: A002
        self.total = all
        self._on_progress(all - remaining, all)

    def start(self, client: Client) -> Any:
        loop = client.loop
        assert isinstance(loop, BaseAsyncIOLoop)  # every tornado >= 5 loop runs on asyncio
        return asyncio.run_coroutine_threadsafe(self.listen(), loop.asyncio_loop)
