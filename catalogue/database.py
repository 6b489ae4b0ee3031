"""Engine construction: one bounded asyncpg pool per process, built from `Settings`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import orjson
from sqlalchemy import URL, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from catalogue.embedded import EmbeddedCluster
from catalogue.settings import Settings

ASYNC_DRIVER = "postgresql+asyncpg"


def database_url(settings: Settings, driver: str = ASYNC_DRIVER) -> URL:
    """`DATABASE_URL` when set (any postgres scheme), else the embedded cluster's URL."""
    if settings.database_url is not None:
        url = make_url(settings.database_url.get_secret_value())
        return url.set(drivername=driver)
    return EmbeddedCluster(settings.db).url(driver)


def _json_dumps(value: object) -> str:
    return orjson.dumps(value).decode()


def create_engine(settings: Settings, url: URL | None = None) -> AsyncEngine:
    """An engine with a bounded pool, pre-ping (survives database restarts) and timeouts."""
    pool = settings.pool
    return create_async_engine(
        url or database_url(settings),
        pool_size=pool.pool_size,
        max_overflow=pool.max_overflow,
        pool_timeout=pool.pool_timeout_s,
        pool_pre_ping=True,
        json_serializer=_json_dumps,
        json_deserializer=orjson.loads,
        connect_args={
            "timeout": 10,
            "command_timeout": pool.statement_timeout_ms / 1000 + 5,
            "server_settings": {
                "statement_timeout": str(pool.statement_timeout_ms),
                "application_name": "cubestac",
                # Short OLTP-style queries: JIT compilation and parallel workers cost more
                # than they save (measured: a parallel plan took 30-40 ms instead of 10-15 ms
                # on 2 cores at concurrency 8, bench/results/core_search_findings.md).
                "jit": "off",
                "max_parallel_workers_per_gather": "0",
                # Plan each search with its real values: property keys and bounds are bound
                # parameters, and only a custom plan can match them to expression indexes.
                "plan_cache_mode": "force_custom_plan",
            },
        },
    )


class Database:
    """Hands out connections; tests substitute one that nests each use in a savepoint."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        # Reads run in autocommit: one statement needs no BEGIN/ROLLBACK round trips (two of
        # the four a single-item GET would otherwise cost). Same pool, other execution option.
        self.read_engine = engine.execution_options(isolation_level="AUTOCOMMIT")

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.read_engine.connect() as connection:
            yield connection

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.begin() as connection:
            yield connection

    async def dispose(self) -> None:
        await self.engine.dispose()
