"""User code that ends its thread, its task or its worker process fails its own cube only:
the other cubes are built, the table is printed, the job is recorded failed and the run
exits 1 (issue 14, #6). Driven through the real CLI with real CONFIGs."""

from __future__ import annotations

import logging
import textwrap
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from catalogue.database import Database
from catalogue.repositories.jobs import recent_jobs
from cubestac.cli import app
from tests.cubes import data
from tests.cubes.conftest import seed
from tests.cubes.test_cli import cli_env, cube, invoke, with_database, write_config

HOOKS = """
import os
import sys

import numpy as np
import xarray as xr


def exits(ds: xr.Dataset) -> xr.Dataset:
    sys.exit(3)


def interrupts(ds: xr.Dataset) -> xr.Dataset:
    raise KeyboardInterrupt


def raises_base(ds: xr.Dataset) -> xr.Dataset:
    raise BaseException("not an Exception")


def _in_task(action):
    def per_block(block):
        action()
        return block

    def wrap(ds: xr.Dataset) -> xr.Dataset:
        def lazily(v: xr.DataArray) -> xr.DataArray:
            meta = np.empty((0,) * v.ndim, v.dtype)
            return v.copy(data=v.data.map_blocks(per_block, dtype=v.dtype, meta=meta))

        return ds.map(lazily)

    return wrap


def _exit_now():
    sys.exit(4)


def _kill_worker():
    os._exit(9)


exits_in_task = _in_task(_exit_now)
kills_worker = _in_task(_kill_worker)
"""

CASES = {
    "exits": "SystemExit",
    "interrupts": "KeyboardInterrupt",
    "raises_base": "not an Exception",
    "exits_in_task": "SystemExit",
}


def run_with_hook(tmp_path: Path, url: Any, hook: str, **changes: Any) -> Any:
    (tmp_path / "user_hooks.py").write_text(textwrap.dedent(HOOKS))
    with_database(url, lambda db: seed(db, [data.forest_type(tmp_path).item]))
    broken = cube("broken", input={"processing": f"user_hooks:{hook}"}, **changes)
    config = write_config(tmp_path, broken, cube("types"))
    return invoke([str(config)], cli_env(url, tmp_path / "cubes"))


def jobs(url: Any) -> dict[str, dict[str, Any]]:
    async def read(database: Database) -> list[dict[str, Any]]:
        async with database.read() as conn:
            return await recent_jobs(conn)

    return {job["target"]: job for job in with_database(url, read)}


def assert_only_broken_failed(result: Any, url: Any, expected: str, log: str) -> None:
    assert result.exit_code == 1, result.output
    assert "broken" in result.output and "failed" in result.output
    assert "succeeded" in result.output  # the table, with the other cube built
    recorded = jobs(url)
    assert recorded["types"]["status"] == "succeeded"
    assert recorded["broken"]["status"] == "failed"
    assert expected in recorded["broken"]["message"]
    assert expected in result.output.replace("\n", "")
    # the estimate, said (logged when not on a terminal) before the good cube was computed
    assert "cube types: 200 x 160 px x 1 time step(s) x 1 variable(s) = 32 k values" in log
    assert "32 kB uncompressed, 12 chunks; about 1 s on 2 dask thread(s)" in log
    listed = CliRunner().invoke(app, ["jobs"], env={"DATABASE_URL": url.render_as_string(False)})
    assert listed.exit_code == 0 and "None" not in listed.output


@pytest.mark.parametrize("hook", sorted(CASES))
def test_user_code_that_ends_its_thread_fails_only_its_cube(
    tmp_path: Path, fresh_db_url: Any, hook: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="cubestac.cube_commands")
    result = run_with_hook(tmp_path, fresh_db_url, hook)
    assert_only_broken_failed(result, fresh_db_url, CASES[hook], caplog.text)


@pytest.mark.slow
def test_user_code_that_kills_its_worker_process_fails_only_its_cube(
    tmp_path: Path, fresh_db_url: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="cubestac.cube_commands")
    compute = {"processes": True, "workers": 1, "threads": 1, "memory_limit": "1GB"}
    result = run_with_hook(tmp_path, fresh_db_url, "kills_worker", compute=compute)
    assert_only_broken_failed(result, fresh_db_url, "worker", caplog.text)
