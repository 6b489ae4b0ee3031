"""`Database`: driver errors come out as catalogue errors, and `transaction` retries what
PostgreSQL aborted to break a deadlock (catalogue/driver_errors.py, catalogue/database.py)."""

from __future__ import annotations

import ast
import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import URL, func, literal, select
from sqlalchemy.ext.asyncio import AsyncConnection

from catalogue.database import TRANSACTION_ATTEMPTS, Database, create_engine
from catalogue.errors import (
    DatabaseError,
    DatabaseUnavailableError,
    InvalidInputError,
    NotFoundError,
    StatementTimeoutError,
    TransactionConflictError,
)
from tests.helpers import free_port, make_settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def real_database(session_db_url: URL) -> AsyncIterator[Database]:
    """Connections of their own (the savepoint fixture has only one): a deadlock needs two."""
    database = Database(create_engine(make_settings(session_db_url)))
    yield database
    await database.dispose()


async def test_a_refused_value_is_invalid_input_in_our_words(database: Database) -> None:
    with pytest.raises(InvalidInputError, match="divides by zero") as raised:
        async with database.read() as conn:
            await conn.execute(select(literal(1) / literal(0)))
    assert "22012" not in str(raised.value)  # PostgreSQL's own text stays in the log


async def test_an_unknown_database_error_is_a_database_error(database: Database) -> None:
    with pytest.raises(DatabaseError):
        async with database.write() as conn:
            await conn.execute(select(func.no_such_function()))


async def test_a_statement_timeout_is_its_own_error(real_database: Database) -> None:
    with pytest.raises(StatementTimeoutError):
        async with real_database.read_in_transaction() as conn:
            await conn.execute(select(func.set_config("statement_timeout", "50", True)))
            await conn.execute(select(func.pg_sleep(2)))


@pytest.mark.parametrize("use", ["read", "write", "transaction", "ping"])
async def test_an_unreachable_database_raises_database_unavailable(use: str) -> None:
    url = URL.create("postgresql+asyncpg", "nobody", None, "127.0.0.1", free_port(), "x")
    database = Database(create_engine(make_settings(url)))
    try:
        with pytest.raises(DatabaseUnavailableError) as raised:
            if use == "ping":
                await database.ping()
            elif use == "transaction":
                await database.transaction(lambda conn: conn.execute(select(literal(1))))
            else:
                async with getattr(database, use)() as conn:
                    await conn.execute(select(literal(1)))
        assert "127.0.0.1" not in str(raised.value)  # the message is public
    finally:
        await database.dispose()


async def test_a_deadlock_is_retried_and_both_writers_commit(real_database: Database) -> None:
    """Two transactions take two locks in opposite orders: PostgreSQL aborts one of them,
    and `transaction` runs that one again, so both succeed."""
    both_hold_one = asyncio.Barrier(2)
    runs: list[int] = []

    async def take(first: int, second: int) -> int:
        async def work(conn: AsyncConnection) -> int:
            runs.append(first)
            await conn.execute(select(func.pg_advisory_xact_lock(first)))
            if len(runs) <= 2:  # only the first attempts meet; a retry goes straight on
                await both_hold_one.wait()
            await conn.execute(select(func.pg_advisory_xact_lock(second)))
            return first

        return await real_database.transaction(work)

    assert sorted(await asyncio.gather(take(71, 72), take(72, 71))) == [71, 72]
    assert len(runs) == 3  # the aborted one ran twice


async def test_a_conflict_is_raised_after_the_last_attempt(database: Database) -> None:
    calls = 0

    async def always_conflicts(conn: AsyncConnection) -> None:
        nonlocal calls
        calls += 1
        raise TransactionConflictError("aborted")

    with pytest.raises(TransactionConflictError):
        await database.transaction(always_conflicts)
    assert calls == TRANSACTION_ATTEMPTS


async def test_other_errors_are_not_retried(database: Database) -> None:
    calls = 0

    async def not_found(conn: AsyncConnection) -> None:
        nonlocal calls
        calls += 1
        raise NotFoundError("no such item")

    with pytest.raises(NotFoundError):
        await database.transaction(not_found)
    assert calls == 1


@pytest.mark.parametrize("package", ["api", "ingest", "cubes"])
def test_only_the_catalogue_imports_driver_errors(package: str) -> None:
    """Driver errors are translated once, in the catalogue: no other package names them."""
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                module = node.module or ""
                names = [module, *(f"{module}.{alias.name}" for alias in node.names)]
            else:
                continue
            for name in names:
                assert not name.startswith(("asyncpg", "sqlalchemy.exc")), f"{path}: {name}"
