"""`cubestac ingest` and `cubestac jobs`: bad CONFIG, the advisory lock, SIGKILL then rerun."""

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
from sqlalchemy import URL, create_engine, text
from typer.testing import CliRunner

from cubestac.cli import app
from tests.ingest.catalogs import Faults, StaticCatalog, file_server
from tests.waiting import until

runner = CliRunner()


def write_config(path: Path, *sources: dict[str, object]) -> Path:
    path.write_text(yaml.safe_dump({"sources": list(sources)}))
    return path


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ({"id": "Bad Id", "kind": "stac-static", "url": "x.json"}, "sources[0].stac-static.id"),
        ({"id": "a", "kind": "stac-api", "url": "https://x", "bbox": [1, 2]}, "bbox"),
        ({"id": "a", "kind": "stac-api", "url": "https://x", "datetime": "2021-13-01"}, "datetime"),
        ({"id": "a", "kind": "ftp", "url": "x"}, "does not match any of the expected tags"),
        (
            {"id": "a", "kind": "files", "url": "*.nc"},
            "sources[0].files.collection: Field required",
        ),
    ],
)
def test_a_bad_config_is_refused_before_anything_runs(
    tmp_path: Path, source: dict[str, object], expected: str
) -> None:
    config = write_config(tmp_path / "cubestac.yaml", source)
    result = runner.invoke(app, ["ingest", str(config)], env={"DATABASE_URL": "postgresql://-"})
    assert result.exit_code == 2, result.output
    assert expected in result.output.replace("\n", "")


def test_unknown_source_ids_and_duplicates_are_refused(tmp_path: Path) -> None:
    one = {"id": "a", "kind": "stac-static", "url": "catalog.json"}
    config = write_config(tmp_path / "one.yaml", one)
    result = runner.invoke(app, ["ingest", str(config), "--source", "b"])
    assert result.exit_code == 2 and "no source 'b'" in result.output
    config = write_config(tmp_path / "two.yaml", one, one)
    result = runner.invoke(app, ["ingest", str(config)])
    assert result.exit_code == 2 and "used more than once" in result.output


async def test_a_second_run_skips_a_source_that_is_being_harvested(
    harvest, catalogue, tmp_path: Path
) -> None:
    from tests.ingest.catalogs import build_static_catalog

    catalog = build_static_catalog(tmp_path / "up", gami=10, biomass=5)
    gate = threading.Event()
    with file_server(catalog.root, Faults(gate=gate)) as base:
        config = {"id": "slow", "kind": "stac-static", "url": f"{base}/catalog.json"}
        first = asyncio.create_task(harvest(config))

        async def first_holds_the_lock() -> bool:
            assert not first.done(), first.result()
            return await catalogue_statuses(catalogue) == ["running"]  # job rows: under the lock

        await until(first_holds_the_lock, "the first run to take the source's lock")
        [second] = await harvest(config)
        gate.set()
        [done] = await first
    assert second.status == "skipped" and "another run" in (second.message or "")
    assert done.status == "succeeded" and done.counts.new == 15
    statuses = await catalogue_statuses(catalogue)
    assert sorted(statuses) == ["skipped", "succeeded"]


async def catalogue_statuses(engine) -> list[str]:
    async with engine.connect() as conn:
        return list((await conn.scalars(text("SELECT status FROM jobs"))).all())


def _cli(config: Path, db_url: URL) -> subprocess.Popen[str]:
    environment = {
        **os.environ,
        "DATABASE_URL": db_url.render_as_string(hide_password=False),
        "PYTHONUNBUFFERED": "1",
    }
    return subprocess.Popen(
        [sys.executable, "-c", "from cubestac.cli import main; main()", "ingest", str(config)],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _count(db_url: URL, sql: str) -> int:
    engine = create_engine(db_url.set(drivername="postgresql+psycopg"))
    with engine.connect() as conn:
        value = conn.scalar(text(sql))
    engine.dispose()
    return int(value or 0)


@pytest.mark.slow
def test_a_run_killed_mid_way_leaves_whole_batches_and_the_rerun_completes(
    fresh_db_url: URL, static_catalog: StaticCatalog, tmp_path: Path
) -> None:
    with file_server(static_catalog.root, Faults(delay_s=0.01)) as base:
        source = {
            "id": "eoforest",
            "kind": "stac-static",
            "url": f"{base}/catalog.json",
            "batch_size": 20,
            "concurrency": 2,
        }
        config = write_config(tmp_path / "cubestac.yaml", source)
        killed = _cli(config, fresh_db_url)
        deadline = time.monotonic() + 60
        while _count(fresh_db_url, "SELECT count(*) FROM items") < 60:
            assert killed.poll() is None, killed.communicate()
            assert time.monotonic() < deadline, "the first run wrote nothing"
            time.sleep(0.05)
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=10)
        committed = _count(fresh_db_url, "SELECT count(*) FROM items")
        assert 60 <= committed < 300
        assert committed % 20 == 0  # whole batches only
        assert _count(fresh_db_url, "SELECT count(*) FROM source_items") == committed
        assert _count(fresh_db_url, "SELECT count(*) FROM jobs WHERE status = 'running'") == 1

        rerun = _cli(config, fresh_db_url)
        out, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err
    assert f"eoforest: {300 - committed} new, 0 changed, {committed} unchanged" in out
    assert _count(fresh_db_url, "SELECT count(*) FROM items") == 300
    assert _count(fresh_db_url, "SELECT count(*) FROM jobs WHERE status = 'failed'") == 1

    result = runner.invoke(
        app, ["jobs", "--limit", "5"], env={"DATABASE_URL": fresh_db_url.render_as_string(False)}
    )
    assert result.exit_code == 0, result.output
    assert "interrupted" in result.output and f"new={300 - committed}" in result.output
