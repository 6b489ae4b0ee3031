"""Cluster sizing (CONFIG over environment over machine) and an existing scheduler."""

from __future__ import annotations

import psutil
import pytest
from distributed import LocalCluster

from catalogue.repositories.jobs import JobStatus
from cubes.compute import ComputePool, ComputeSettings, cluster_size
from cubes.spec import ComputeSpec
from tests.cubes import data
from tests.cubes.conftest import build, seed


def test_the_cube_s_compute_section_wins_over_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("CUBESTAC_DASK_WORKERS", "3")
    monkeypatch.setenv("CUBESTAC_DASK_MEMORY_LIMIT", "6GB")
    monkeypatch.setenv("CUBESTAC_DASK_PROCESSES", "true")
    env = ComputeSettings()
    size = cluster_size(ComputeSpec(workers=2, threads=1, memory_limit="4GB"), env)
    assert (size.workers, size.threads, size.processes) == (2, 1, True)
    assert size.memory_per_worker == 2_000_000_000  # the limit is the cluster's total
    from_env = cluster_size(ComputeSpec(), env)
    assert (from_env.workers, from_env.memory_per_worker) == (3, 2_000_000_000)


def test_without_settings_one_in_process_worker_uses_the_machine(monkeypatch) -> None:
    for name in ("WORKERS", "THREADS", "MEMORY_LIMIT", "PROCESSES"):
        monkeypatch.delenv(f"CUBESTAC_DASK_{name}", raising=False)
    size = cluster_size(ComputeSpec(), ComputeSettings())
    assert size.workers == 1 and not size.processes
    assert size.threads == (psutil.cpu_count() or 1)
    assert size.memory_per_worker == pytest.approx(psutil.virtual_memory().total * 0.8, rel=0.01)


async def test_dask_scheduler_address_uses_that_scheduler(database, tmp_path, monkeypatch):
    await seed(database, [data.forest_type(tmp_path).item])
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False) as cluster:
        monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", cluster.scheduler_address)
        with ComputePool() as pool:
            spec = {"id": "remote-scheduler", "collection": "c", "grid": data.GRID,
                    "inputs": [{"collection": "forest-type", "resampling": "mode"}]}  # fmt: skip
            [result] = await build(database, [spec], tmp_path / "cubes", pool)
            assert result.status is JobStatus.SUCCEEDED, result.message
            assert pool.client(ComputeSpec()).scheduler.address == cluster.scheduler_address
            assert "reproject-store-map" in cluster.scheduler.task_prefixes  # it ran there


def test_an_in_process_worker_computes_in_a_host_process_bigger_than_its_limit() -> None:
    """An in-process worker measures the whole host process. One whose host already holds
    more than the worker's limit (here: 300 MB of ballast over a 200 MB limit) was paused
    by distributed and never resumed, so the build waited forever; it must compute."""
    import dask.array as da
    import numpy as np

    ballast = np.ones(300 * 2**20 // 8)  # noqa: F841 - held so the process is past the limit
    assert psutil.Process().memory_info().rss > 200 * 2**20
    work = da.ones((256, 256), chunks=32).sum()
    with ComputePool() as pool:
        client = pool.client(ComputeSpec(workers=1, threads=1, memory_limit="200MB"))
        [worker] = client.cluster.workers.values()  # type: ignore[union-attr]
        future = client.compute(work)
        assert future.result(timeout=60) == 256 * 256
        assert worker.status.name == "running"
