"""The embedded PostGIS: created, started, reported and stopped; clear errors when it cannot."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from typer.testing import CliRunner

from catalogue.embedded import ClusterState, EmbeddedCluster, find_pg_bin_dir
from catalogue.errors import EmbeddedDatabaseError
from catalogue.settings import EmbeddedDatabaseSettings
from cubestac.cli import app
from tests.helpers import free_port

pytestmark = pytest.mark.slow


async def _postgis_version(url) -> str:
    engine = create_async_engine(url)
    async with engine.connect() as conn:
        version = await conn.scalar(text("SELECT postgis_version()"))
    await engine.dispose()
    return version


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A folder the server's OS user can reach (pytest's own tmp folders are private)."""
    parent = Path(tempfile.mkdtemp(prefix="cubestac-embedded-"))
    parent.chmod(0o755)
    yield parent / "cubestac"
    shutil.rmtree(parent, ignore_errors=True)


def test_cli_start_status_stop_and_restart_keeps_data(data_dir: Path, monkeypatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("CUBESTAC_DB__DATA_DIR", str(data_dir))
    monkeypatch.setenv("CUBESTAC_DB__PORT", str(free_port()))
    runner = CliRunner()
    try:
        assert runner.invoke(app, ["db", "status"]).exit_code == 1
        started = runner.invoke(app, ["db", "start"])
        assert started.exit_code == 0, started.output
        assert "running" in started.output
        status = runner.invoke(app, ["db", "status"])
        assert status.exit_code == 0 and "running" in status.output
        assert "***" in status.output  # the password is never printed
        assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
        cluster = EmbeddedCluster(
            EmbeddedDatabaseSettings(data_dir=data_dir, port=int(os.environ["CUBESTAC_DB__PORT"]))
        )
        assert asyncio.run(_postgis_version(cluster.url()))
        assert runner.invoke(app, ["db", "stop"]).exit_code == 0
        assert cluster.status().state is ClusterState.STOPPED
        assert runner.invoke(app, ["db", "start"]).exit_code == 0  # survives a restart
        assert cluster.status().state is ClusterState.RUNNING
        assert (data_dir / "password").stat().st_mode & 0o077 == 0
    finally:
        runner.invoke(app, ["db", "stop"])


def test_only_loopback_is_listened_on(data_dir: Path) -> None:
    cluster = EmbeddedCluster(EmbeddedDatabaseSettings(data_dir=data_dir, port=free_port()))
    try:
        cluster.start()
        conf = (data_dir / "pgdata" / "postgresql.auto.conf").read_text()
        assert "listen_addresses = '127.0.0.1'" in conf
    finally:
        cluster.stop()


def test_missing_binaries_say_what_to_install(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr("catalogue.embedded.glob.glob", lambda pattern: [])
    with pytest.raises(EmbeddedDatabaseError, match="apt-get install postgresql-15"):
        find_pg_bin_dir(None)


def test_missing_postgis_says_what_to_install(tmp_path: Path) -> None:
    fake_bin = tmp_path / "15" / "bin"
    fake_bin.mkdir(parents=True)
    for name in ("initdb", "pg_ctl"):
        (fake_bin / name).write_text("#!/bin/sh\n")
    (fake_bin / "pg_config").write_text(f"#!/bin/sh\necho {tmp_path / 'share'}\n")
    (fake_bin / "pg_config").chmod(0o755)
    settings = EmbeddedDatabaseSettings(data_dir=tmp_path / "data", pg_bin_dir=fake_bin)
    with pytest.raises(EmbeddedDatabaseError, match="postgresql-15-postgis-3"):
        EmbeddedCluster(settings).start()


def test_database_url_makes_db_commands_a_noop(monkeypatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://user:pw@127.0.0.1:1/none")
    result = CliRunner().invoke(app, ["db", "start"])
    assert result.exit_code == 0
    assert "DATABASE_URL is set" in result.output
