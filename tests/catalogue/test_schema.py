"""Schema: the Alembic revisions match the models; an unmigrated database is refused."""

from __future__ import annotations

import httpx
import pytest
from alembic import command
from sqlalchemy import URL
from sqlalchemy.ext.asyncio import create_async_engine
from typer.testing import CliRunner

from api import create_app
from catalogue.errors import NotMigratedError
from catalogue.schema import alembic_config, ensure_migrated
from cubestac.cli import app
from tests.conftest import _admin
from tests.helpers import live_server, make_settings


def test_revisions_match_the_models(template_url: URL) -> None:
    """`alembic check` finds nothing to autogenerate: models and migrations agree."""
    command.check(alembic_config(template_url.set(drivername="postgresql+asyncpg")))


@pytest.fixture
def empty_db_url(server_url: URL) -> URL:
    _admin(
        server_url,
        "DROP DATABASE IF EXISTS cubestac_empty WITH (FORCE)",
        "CREATE DATABASE cubestac_empty",
    )
    return server_url.set(database="cubestac_empty", drivername="postgresql+asyncpg")


async def test_unmigrated_database_is_refused_with_the_command_to_run(empty_db_url: URL) -> None:
    engine = create_async_engine(empty_db_url)
    try:
        with pytest.raises(NotMigratedError, match="cubestac db upgrade"):
            await ensure_migrated(engine)
    finally:
        await engine.dispose()


def test_serve_refuses_an_unmigrated_database(empty_db_url: URL, monkeypatch) -> None:
    monkeypatch.setenv("DATABASE_URL", empty_db_url.render_as_string(hide_password=False))
    result = CliRunner().invoke(app, ["serve", "--port", "1"])
    assert result.exit_code == 1
    assert "cubestac db upgrade" in result.output


def test_api_lifespan_refuses_an_unmigrated_database(empty_db_url: URL, caplog) -> None:
    with pytest.raises(RuntimeError), live_server(create_app(make_settings(empty_db_url))):
        pass
    assert "cubestac db upgrade" in caplog.text


def test_db_upgrade_then_serve(empty_db_url: URL, monkeypatch) -> None:
    monkeypatch.setenv("DATABASE_URL", empty_db_url.render_as_string(hide_password=False))
    _admin(
        empty_db_url.set(drivername="postgresql+psycopg"), "CREATE EXTENSION IF NOT EXISTS postgis"
    )
    assert CliRunner().invoke(app, ["db", "upgrade"]).exit_code == 0
    with live_server(create_app(make_settings(empty_db_url))) as base:
        assert httpx.get(f"{base}/conformance").status_code == 200
