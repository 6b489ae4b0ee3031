"""`cubestac cubes CONFIG [--cube ID]...`: exit codes, the status table, and a build killed
with SIGKILL in the middle of writing."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import xarray as xr
import yaml
from sqlalchemy import URL
from typer.testing import CliRunner

from catalogue.cube_layout import store_url
from catalogue.database import Database, create_engine
from catalogue.repositories.items import get_item
from catalogue.repositories.jobs import recent_jobs
from cubestac.cli import app
from cubestac.config_file import ConfigError
from cubestac.cube_commands import load_cubes
from tests.cubes import data
from tests.cubes.conftest import seed
from tests.helpers import make_settings
from tests.waiting import until_sync

SLOW_HOOK = """
import time
from pathlib import Path

import numpy as np
import xarray as xr

RUNNING = Path(__file__).with_name("slow_hook_running")


def slow(ds: xr.Dataset) -> xr.Dataset:
    def wait(block):
        RUNNING.touch()  # the test waits for this: a data task is in the hook, mid-write
        time.sleep(30)
        return block

    def slowly(v: xr.DataArray) -> xr.DataArray:
        meta = np.empty((0,) * v.ndim, v.dtype)
        return v.copy(data=v.data.map_blocks(wait, dtype=v.dtype, meta=meta))

    return ds.map(slowly)
"""


def cube(cube_id: str = "types", **changes: Any) -> dict[str, Any]:
    spec = {
        "id": cube_id,
        "collection": "scs2",
        "grid": data.GRID,
        "inputs": [{"collection": "forest-type", "resampling": "mode"}],
    }
    if "input" in changes:
        spec["inputs"] = [{**spec["inputs"][0], **changes.pop("input")}]
    return {**spec, **changes}


def write_config(folder: Path, *cubes: dict[str, Any], name: str = "config.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump({"sources": [], "cubes": list(cubes)}, sort_keys=False))
    return path


def run_in_loop(coroutine_factory: Any) -> Any:
    return asyncio.run(coroutine_factory())


def with_database(url: URL, work: Any) -> Any:
    async def go() -> Any:
        database = Database(create_engine(make_settings(url)))
        try:
            return await work(database)
        finally:
            await database.dispose()

    return asyncio.run(go())


def cli_env(url: URL, root: Path) -> dict[str, str]:
    return {
        "DATABASE_URL": url.render_as_string(hide_password=False),
        "CUBESTAC_CUBE_ROOT": str(root),
        "CUBESTAC_DASK_WORKERS": "1",
        "CUBESTAC_DASK_THREADS": "2",
        "CUBESTAC_DASK_PROCESSES": "false",
        "CUBESTAC_DASK_MEMORY_LIMIT": "2GB",
    }


def invoke(args: list[str], env: dict[str, str]) -> Any:
    return CliRunner().invoke(app, ["cubes", *args], env=env)


def test_a_bad_config_exits_2_naming_the_field(tmp_path) -> None:
    spec = cube()
    spec["grid"] = {**spec["grid"], "bbox": [1, 2, 3]}
    spec["inputs"][0]["resampling"] = "sharpest"
    config = write_config(tmp_path, spec)
    result = invoke([str(config)], {"CUBESTAC_CUBE_ROOT": str(tmp_path)})
    assert result.exit_code == 2
    assert f"{config}: cubes[0].grid.bbox" in result.output
    assert f"{config}: cubes[0].inputs[0].resampling" in result.output


def test_a_collection_the_api_cannot_serve_exits_2_naming_the_field(tmp_path) -> None:
    """Issue 14: `collection: ../../x` was published where no URL of the API reaches."""
    config = write_config(tmp_path, {**cube(), "collection": "../../x"})
    result = invoke([str(config)], {"CUBESTAC_CUBE_ROOT": str(tmp_path)})
    assert result.exit_code == 2
    assert f"{config}: cubes[0].collection" in result.output
    assert "'../../x' may not contain '/'" in result.output


def test_load_cubes_rejects_duplicates_and_bad_filters(tmp_path) -> None:
    spec = cube(input={"filter": {"op": "~~", "args": [{"property": "x"}, 1]}})
    with pytest.raises(ConfigError, match=r"cubes\[0\]\.inputs\[0\]\.filter"):
        load_cubes(write_config(tmp_path, spec))
    with pytest.raises(ConfigError, match="used more than once"):
        load_cubes(write_config(tmp_path, cube(), cube(), name="twice.yaml"))


def test_an_unknown_cube_id_exits_2(tmp_path) -> None:
    config = write_config(tmp_path, cube())
    result = invoke([str(config), "--cube", "nope"], {"CUBESTAC_CUBE_ROOT": str(tmp_path)})
    assert result.exit_code == 2 and "no cube 'nope'" in result.output


def test_without_a_cube_root_exits_2(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("CUBESTAC_CUBE_ROOT", raising=False)
    result = CliRunner().invoke(app, ["cubes", str(write_config(tmp_path, cube()))])
    assert result.exit_code == 2 and "CUBESTAC_CUBE_ROOT" in result.output


def test_builds_selected_cubes_and_prints_a_status_table(tmp_path, fresh_db_url) -> None:
    source = data.forest_type(tmp_path)
    with_database(fresh_db_url, lambda db: seed(db, [source.item]))
    config = write_config(tmp_path, cube("types"), cube("types-too"), cube("not-now"))
    root = tmp_path / "cubes"
    result = invoke(
        [str(config), "--cube", "types", "--cube", "types-too"], cli_env(fresh_db_url, root)
    )
    assert result.exit_code == 0, result.output
    for text in ("cube", "status", "duration", "size", "message", "types-too", "succeeded"):
        assert text in result.output
    assert "not-now" not in result.output
    assert sorted(p.name for p in (root / "scs2").iterdir()) == ["types", "types-too"]


def test_one_failing_cube_exits_1_and_the_others_are_built(tmp_path, fresh_db_url) -> None:
    with_database(fresh_db_url, lambda db: seed(db, [data.forest_type(tmp_path).item]))
    failing = cube("broken", input={"variables": ["nope"]})
    config = write_config(tmp_path, failing, cube("types"))
    result = invoke([str(config)], cli_env(fresh_db_url, tmp_path / "cubes"))
    assert result.exit_code == 1
    assert "failed" in result.output and "succeeded" in result.output
    assert "variable 'nope'" in result.output

    async def published(database: Database) -> str:
        async with database.read() as conn:
            return (await get_item(conn, "scs2", "types"))["assets"]["zarr"]["href"]

    assert Path(with_database(fresh_db_url, published)).is_dir()


@pytest.mark.slow
def test_a_build_killed_mid_write_leaves_the_published_cube_readable(
    tmp_path, fresh_db_url
) -> None:
    (tmp_path / "hooks_slow.py").write_text(textwrap.dedent(SLOW_HOOK))
    with_database(fresh_db_url, lambda db: seed(db, [data.forest_type(tmp_path).item]))
    root = tmp_path / "cubes"
    env = {**os.environ, **cli_env(fresh_db_url, root)}
    cubestac = str(Path(sys.executable).parent / "cubestac")
    config = write_config(tmp_path, cube())
    subprocess.run([cubestac, "cubes", str(config)], env=env, check=True, capture_output=True)

    async def href(database: Database) -> str:
        async with database.read() as conn:
            return (await get_item(conn, "scs2", "types"))["assets"]["zarr"]["href"]

    published = with_database(fresh_db_url, href)
    before = xr.open_zarr(published).load()
    slow = write_config(tmp_path, cube(input={"processing": "hooks_slow:slow"}), name="slow.yaml")
    process = subprocess.Popen(
        [cubestac, "cubes", str(slow)], env=env, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    folder = root / "scs2" / "types"

    def mid_write() -> bool:
        assert process.poll() is None, "the slow build ended before it was killed"
        return (tmp_path / "slow_hook_running").exists() and len(list(folder.glob("*.zarr"))) == 2

    until_sync(mid_write, "the slow build's data tasks to run its hook")
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    assert len(list(folder.glob("*.zarr"))) == 2, "the killed build left its partial version"
    assert with_database(fresh_db_url, href) == published
    xr.testing.assert_equal(xr.open_zarr(published).load(), before)

    rerun = subprocess.run([cubestac, "cubes", str(config)], env=env, capture_output=True)
    assert rerun.returncode == 0, rerun.stderr.decode()
    current = with_database(fresh_db_url, href)
    names = sorted(p.name for p in folder.glob("*.zarr"))
    stores = {Path(store_url(published)).name, Path(store_url(current)).name}
    assert names == sorted(stores)  # debris swept

    async def jobs(database: Database) -> list[dict[str, Any]]:
        async with database.read() as conn:
            return await recent_jobs(conn)

    statuses = [(job["status"], job["message"] or "") for job in with_database(fresh_db_url, jobs)]
    assert statuses[1][0] == "failed" and "interrupted" in statuses[1][1]
