"""`cubestac jobs` tells a live run from a killed one without waiting for the next run of
the same target (issue 14, #7): a real `cubestac ingest` killed with SIGKILL."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from sqlalchemy import URL
from sqlalchemy.ext.asyncio import create_async_engine
from typer.testing import CliRunner

from catalogue.repositories.jobs import JobTally, job_tallies
from cubestac.cli import app
from tests.ingest.catalogs import Faults, build_static_catalog, file_server

pytestmark = pytest.mark.slow


def jobs_output(db_url: URL) -> str:
    result = CliRunner().invoke(
        app, ["jobs"], env={"DATABASE_URL": db_url.render_as_string(hide_password=False)}
    )
    assert result.exit_code == 0, result.output
    return result.output


def wait_for(condition, what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_a_killed_run_shows_as_interrupted_and_a_live_one_as_running(
    fresh_db_url: URL, tmp_path: Path
) -> None:
    catalog = build_static_catalog(tmp_path / "up", gami=10, biomass=5)
    gate = threading.Event()  # never set: the run waits on its item requests until killed
    with file_server(catalog.root, Faults(gate=gate)) as base:
        source = {"id": "waits", "kind": "stac-static", "url": f"{base}/catalog.json"}
        config = tmp_path / "cubestac.yaml"
        config.write_text(yaml.safe_dump({"sources": [source]}))
        environment = {**os.environ, "DATABASE_URL": fresh_db_url.render_as_string(False)}
        process = subprocess.Popen(
            [sys.executable, "-c", "from cubestac.cli import main; main()", "ingest", str(config)],
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for(lambda: "running" in jobs_output(fresh_db_url), "the run never started")
            assert "waits" in jobs_output(fresh_db_url)
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
        gate.set()
    wait_for(
        lambda: "interrupted" in jobs_output(fresh_db_url),
        "the killed run is still shown as running",
        seconds=15,
    )
    shown = jobs_output(fresh_db_url)
    assert "running" not in shown
    assert "the process ended before the run finished" in shown
    assert [(t.kind, t.status, t.count) for t in asyncio.run(tallies(fresh_db_url))] == [
        ("ingest", "interrupted", 1)
    ]  # what /metrics reports


async def tallies(db_url: URL) -> list[JobTally]:
    engine = create_async_engine(db_url)
    try:
        async with engine.connect() as conn:
            return await job_tallies(conn)
    finally:
        await engine.dispose()
