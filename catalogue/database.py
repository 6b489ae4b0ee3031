"""Engine construction: one bounded asyncpg pool per process, built from `Settings`."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import URL, event, exc, literal, make_url, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import QueuePool
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from catalogue import json_codec
from catalogue.driver_errors import translated
from catalogue.embedded import EmbeddedCluster
from catalogue.errors import TransactionConflictError
from catalogue.settings import Settings

ASYNC_DRIVER = "postgresql+asyncpg"
TRANSACTION_ATTEMPTS = 4  # a deadlock or serialization failure: the first try and 3 more

logger = logging.getLogger(__name__)
T = TypeVar("T")


def database_url(settings: Settings, driver: str = ASYNC_DRIVER) -> URL:
    """`DATABASE_URL` when set (any postgres scheme), else the embedded cluster's URL."""
    if settings.database_url is not None:
        url = make_url(settings.database_url.get_secret_value())
        return url.set(drivername=driver)
    return EmbeddedCluster(settings.db).url(driver)


# A pooled connection idle for longer than this is pinged before use (see _ping_when_idle).
IDLE_PING_S = 2.0


def _ping_when_idle(engine: AsyncEngine) -> None:
    """Ping a connection on checkout only when it sat idle in the pool for `IDLE_PING_S`.

    SQLAlchemy's `pool_pre_ping` pings on every checkout: one extra round trip per request, a
    large share of a single-item GET (bench/results/code_figures.md). A connection in steady
    use needs no ping: if the server went away under it, the failing statement answers 503
    and SQLAlchemy invalidates the pool, so the next request reconnects. Idle connections
    are the ones a restart leaves dead, and they are still pinged (raising
    DisconnectionError makes the pool replace the connection, as pre-ping does).
    """
    pool_events = engine.sync_engine

    @event.listens_for(pool_events, "checkin")
    def _checked_in(dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(pool_events, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        idle_since = record.info.pop("idle_since", None)
        if idle_since is None or time.monotonic() - idle_since < IDLE_PING_S:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as error:  # noqa: BLE001 - whatever broke it, replace the connection
            raise exc.DisconnectionError(str(error)) from error


def create_engine(settings: Settings, url: URL | None = None) -> AsyncEngine:
    """An engine with a bounded pool, a ping for idle connections (survives database
    restarts) and timeouts."""
    pool = settings.pool
    engine = create_async_engine(
        url or database_url(settings),
        pool_size=pool.pool_size,
        max_overflow=pool.max_overflow,
        pool_timeout=pool.pool_timeout_s,
        json_serializer=json_codec.dumps,  # exact for integers beyond 64 bits (jsonb holds them)
        json_deserializer=json_codec.loads,
        connect_args={
            "timeout": 10,
            "command_timeout": pool.statement_timeout_ms / 1000 + 5,
            "server_settings": {
                "statement_timeout": str(pool.statement_timeout_ms),
                "application_name": "cubestac",
                # Short OLTP-style queries: JIT compilation and parallel workers cost more
                # than they save (bench/results/code_figures.md).
                "jit": "off",
                "max_parallel_workers_per_gather": "0",
                # Plan each search with its real values: property keys and bounds are bound
                # parameters, and only a custom plan can match them to expression indexes.
                "plan_cache_mode": "force_custom_plan",
            },
        },
    )
    _ping_when_idle(engine)
    return engine


def _log_conflict(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome else None
    logger.info("transaction retried (attempt %d): %s", state.attempt_number, error)


@dataclass(frozen=True)
class PoolUse:
    """Connections of this process's pool: `size` kept open, `checked_out` in use now."""

    size: int
    checked_out: int


class Database:
    """Hands out connections; tests substitute one that nests each use in a savepoint.

    Every connection comes wrapped in the one driver-error translator
    (`catalogue.driver_errors`): callers see catalogue errors only. Writers go through
    `transaction`, which also retries deadlocks and serialization failures. Subclasses
    change where connections come from by overriding the `_reading`, `_writing` and
    `_reading_in_transaction` hooks, and keep the translation and the retries.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        # Reads run in autocommit: one statement needs no BEGIN/ROLLBACK round trips (two of
        # the four a single-item GET would otherwise cost). Same pool, other execution option.
        self.read_engine = engine.execution_options(isolation_level="AUTOCOMMIT")

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """An autocommit connection for reads."""
        with translated():
            async with self._reading() as connection:
                yield connection

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A connection in one transaction, committed when the block ends; not retried
        (writers use `transaction`, which is)."""
        with translated():
            async with self._writing() as connection:
                yield connection

    @asynccontextmanager
    async def read_in_transaction(self) -> AsyncIterator[AsyncConnection]:
        """A connection in a transaction of its own, always rolled back: for a read that
        sets transaction-local settings (the count's `statement_timeout`), which an
        autocommit connection from `read` cannot hold."""
        with translated():
            async with self._reading_in_transaction() as connection:
                yield connection

    async def transaction(self, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """`work(connection)` in one transaction, committed when it returns.

        PostgreSQL aborts one of two transactions that deadlock (40P01) or that cannot be
        serialized (40001); run again, the same work normally passes. So `work` is run in a
        fresh transaction up to `TRANSACTION_ATTEMPTS` times, after a random wait that grows
        exponentially (two retried writers do not collide again); `work` must therefore do
        nothing but database work. Any other error, and the last conflict, is raised (as a
        catalogue error).
        """
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(TransactionConflictError),
            stop=stop_after_attempt(TRANSACTION_ATTEMPTS),
            wait=wait_random_exponential(multiplier=0.05, max=1.0),
            before_sleep=_log_conflict,
            reraise=True,
        ):
            with attempt:
                async with self.write() as connection:
                    return await work(connection)
        raise AssertionError("unreachable: tenacity re-raises the last error")

    @asynccontextmanager
    async def _reading(self) -> AsyncIterator[AsyncConnection]:
        async with self.read_engine.connect() as connection:
            yield connection

    @asynccontextmanager
    async def _writing(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.begin() as connection:
            yield connection

    @asynccontextmanager
    async def _reading_in_transaction(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as connection:
            transaction = await connection.begin()
            try:
                yield connection
            finally:
                await transaction.rollback()

    async def ping(self) -> None:
        """`SELECT 1` through the pool, so that the answer is what a request would meet.

        After a database restart the pool may still hold dead connections: the first use of
        one fails and makes SQLAlchemy discard the whole pool, so one retry on a fresh
        connection tells a restarted database (up) from a stopped one (down).
        """
        with translated():
            for attempt in (1, 2):
                try:
                    async with self._reading() as connection:
                        await connection.execute(select(literal(1)))
                    return
                except exc.DBAPIError as error:
                    if attempt == 2 or not error.connection_invalidated:
                        raise

    def pool_use(self) -> PoolUse:
        pool = self.engine.pool
        size = pool.size() if isinstance(pool, QueuePool) else 0
        checked_out = pool.checkedout() if isinstance(pool, QueuePool) else 0
        return PoolUse(size=size, checked_out=checked_out)

    async def dispose(self) -> None:
        await self.engine.dispose()
