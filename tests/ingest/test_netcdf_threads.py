"""NetCDF files harvested at the default concurrency: netCDF4/HDF5 is not thread-safe, so
reading many files from the ingest's threads must not crash the process (issue 14, #3).

Each run is a real `cubestac ingest` subprocess, so a crash shows as a signal exit status
instead of ending pytest."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rioxarray  # noqa: F401 - .rio accessor for writing the grid mapping
import xarray as xr
import yaml
from sqlalchemy import URL, create_engine, text

pytestmark = pytest.mark.slow
FILES = 40
RUNS = 3


def write_netcdfs(folder: Path) -> None:
    folder.mkdir()
    rng = np.random.default_rng(7)
    for index in range(FILES):
        dataset = xr.Dataset(
            {"agb": (("time", "y", "x"), rng.random((2, 8, 8)).astype("float32"))},
            coords={
                "time": np.array(["2010-01-01", "2011-01-01"], dtype="datetime64[ns]"),
                "y": 3_000_000.0 - 100.0 * np.arange(8) - 50 - 1000 * index,
                "x": 4_000_000.0 + 100.0 * np.arange(8) + 50,
            },
            attrs={"title": f"tile {index}"},
        )
        dataset.rio.write_crs("EPSG:3035").to_netcdf(folder / f"tile_{index:02d}.nc")


def test_many_netcdf_files_are_harvested_at_the_default_concurrency(
    fresh_db_url: URL, tmp_path: Path
) -> None:
    write_netcdfs(tmp_path / "nc")
    sources = [
        {
            "id": f"tiles-{run}",
            "kind": "files",
            "url": str(tmp_path / "nc" / "*.nc"),
            "collection": {"id": f"tiles-{run}", "title": "tiles", "license": "CC-BY-4.0"},
        }
        for run in range(RUNS)
    ]
    environment = {**os.environ, "DATABASE_URL": fresh_db_url.render_as_string(False)}
    for run, source in enumerate(sources):
        config = tmp_path / f"run{run}.yaml"
        config.write_text(yaml.safe_dump({"sources": [source]}))
        done = subprocess.run(
            [sys.executable, "-c", "from cubestac.cli import main; main()", "ingest", str(config)],
            env=environment,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, (done.returncode, done.stderr[-3000:])
        assert f"tiles-{run}: {FILES} new" in done.stdout
    engine = create_engine(fresh_db_url.set(drivername="postgresql+psycopg"))
    with engine.connect() as conn:
        items = conn.scalar(text("SELECT count(*) FROM items"))
        running = conn.scalar(text("SELECT count(*) FROM jobs WHERE status <> 'succeeded'"))
    engine.dispose()
    assert items == FILES * RUNS
    assert running == 0
