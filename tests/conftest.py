"""One real PostGIS per test session, migrated once with Alembic.

Where it comes from, in order: `TEST_DATABASE_URL`; testcontainers' `postgis/postgis`
when a Docker engine answers; else a throwaway embedded cluster (our own
`catalogue.embedded` code) in a temporary folder on a free port, removed afterwards.

Each test that touches the catalogue runs inside a transaction that is rolled back; its
writes go through savepoints on that one connection. Tests that need a real server
(uvicorn) get a fresh database cloned from the migrated template instead.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import URL, create_engine, make_url, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from api import create_app
from catalogue.database import Database
from catalogue.embedded import EmbeddedCluster
from catalogue.schema import upgrade
from catalogue.settings import EmbeddedDatabaseSettings, Settings
from tests.helpers import TEST_API_KEY, free_port, make_settings

TEMPLATE_DB = "cubestac_template"
_clone_counter = itertools.count()


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
        return True
    except Exception:  # noqa: BLE001 - any failure means "no engine here"
        return False


@pytest.fixture(scope="session")
def server_url() -> Iterator[URL]:
    """A superuser URL (psycopg driver) of a PostGIS server that lives for the session."""
    if os.environ.get("TEST_DATABASE_URL"):
        yield make_url(os.environ["TEST_DATABASE_URL"]).set(drivername="postgresql+psycopg")
        return
    if _docker_answers():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgis/postgis:16-3.4", driver="psycopg") as container:
            yield make_url(container.get_connection_url())
        return
    folder = Path(tempfile.mkdtemp(prefix="cubestac-test-pg-"))
    cluster = EmbeddedCluster(
        EmbeddedDatabaseSettings(data_dir=folder, port=free_port(), database="postgres")
    )
    try:
        yield cluster.start().set(drivername="postgresql+psycopg")
    finally:
        cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)


def _admin(url: URL, *statements: str) -> None:
    """DDL on the server's maintenance database. Database names are our own constants."""
    engine = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        for statement in statements:
            conn.execute(text(statement))
    engine.dispose()


@pytest.fixture(scope="session")
def template_url(server_url: URL) -> URL:
    """A database migrated once with Alembic (`cubestac db upgrade`), used as a template."""
    _admin(
        server_url,
        f"DROP DATABASE IF EXISTS {TEMPLATE_DB} WITH (FORCE)",
        f"CREATE DATABASE {TEMPLATE_DB}",
    )
    url = server_url.set(database=TEMPLATE_DB)
    _admin_db = create_engine(url, isolation_level="AUTOCOMMIT")
    with _admin_db.connect() as conn:
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
    _admin_db.dispose()
    upgrade(url.set(drivername="postgresql+asyncpg"))
    return url


def clone_database(server_url: URL, template_url: URL) -> URL:
    """A fresh, migrated database for one test that needs its own server process."""
    name = f"cubestac_t{os.getpid()}_{next(_clone_counter)}"
    _admin(
        server_url,
        f"DROP DATABASE IF EXISTS {name} WITH (FORCE)",
        f"CREATE DATABASE {name} TEMPLATE {template_url.database}",
    )
    return server_url.set(database=name, drivername="postgresql+asyncpg")


@pytest.fixture(scope="session")
def session_db_url(server_url: URL, template_url: URL) -> URL:
    return clone_database(server_url, template_url)


@pytest.fixture
def fresh_db_url(server_url: URL, template_url: URL) -> URL:
    """A migrated database of its own, for a test that runs a real server process."""
    return clone_database(server_url, template_url)


class SavepointDatabase(Database):
    """Every read and write nests in a savepoint of one connection whose transaction the
    test rolls back, so no test sees another's data and nothing is cleaned with DELETE.
    Only where connections come from changes: errors are translated as in production."""

    def __init__(self, connection: AsyncConnection) -> None:
        super().__init__(connection.engine)
        self.connection = connection

    @asynccontextmanager
    async def _reading(self) -> AsyncIterator[AsyncConnection]:
        async with self.connection.begin_nested():
            yield self.connection

    @asynccontextmanager
    async def _writing(self) -> AsyncIterator[AsyncConnection]:
        async with self.connection.begin_nested():
            yield self.connection

    @asynccontextmanager
    async def _reading_in_transaction(self) -> AsyncIterator[AsyncConnection]:
        savepoint = await self.connection.begin_nested()
        try:
            yield self.connection
        finally:
            # A count's transaction-local `statement_timeout` (100 ms) would also bound the
            # ROLLBACK TO SAVEPOINT, which production's plain ROLLBACK does not wait on; on
            # a loaded test box that rollback was cancelled (a 504). Lift it first (inside
            # the savepoint: the rollback restores the outer value); a transaction aborted
            # by a cancelled count refuses the SET, and its rollback is what is left.
            with contextlib.suppress(DBAPIError):
                await self.connection.exec_driver_sql(
                    "SELECT set_config('statement_timeout', '0', true)"
                )
            await savepoint.rollback()


@pytest.fixture(scope="session")
async def session_engine(session_db_url: URL):
    engine = create_async_engine(session_db_url)
    yield engine
    await engine.dispose()


@pytest.fixture
async def database(session_engine) -> AsyncIterator[SavepointDatabase]:
    async with session_engine.connect() as connection:
        transaction = await connection.begin()
        try:
            yield SavepointDatabase(connection)
        finally:
            await transaction.rollback()


@pytest.fixture
def settings(session_db_url: URL) -> Settings:
    return make_settings(session_db_url)


@pytest.fixture
async def client(
    settings: Settings, database: SavepointDatabase
) -> AsyncIterator[httpx.AsyncClient]:
    """The API in-process (ASGI), writes allowed with the test key."""
    app = create_app(settings, database=database)
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {TEST_API_KEY}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", headers=headers
    ) as http:
        yield http
