"""The one translator from driver errors (asyncpg, SQLAlchemy) to catalogue errors.

`Database` wraps every connection it hands out in `translated()`, so the API, ingest and
cubes only ever see `catalogue.errors` (STYLE.md: "database errors are translated once").
What a driver error becomes:

- SQLSTATE class 22 (data exception): InvalidInputError, in our words (`refused_value`);
- 57014 query_canceled (`statement_timeout`): StatementTimeoutError;
- 40P01 deadlock, 40001 serialization failure: TransactionConflictError, which
  `Database.transaction` retries;
- 23505 unique violation: ConflictError; 23503 foreign key violation: NotFoundError;
- connection lost or refused, pool exhausted, server shutting down: DatabaseUnavailableError;
- any other driver error: DatabaseError (a bug).

Each is raised `from` the driver error, so logs keep PostgreSQL's own text; the messages
raised here are public (PostgreSQL's text names the statement's internals and the host).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg
from sqlalchemy import exc

from catalogue.errors import (
    CatalogueError,
    ConflictError,
    DatabaseError,
    DatabaseUnavailableError,
    InvalidInputError,
    NotFoundError,
    StatementTimeoutError,
    TransactionConflictError,
    refused_value,
)

logger = logging.getLogger(__name__)

UNAVAILABLE = "the catalogue database is unavailable; retry shortly"
TIMED_OUT = "the query took longer than the server's statement timeout; narrow it"
CONFLICTED = "a concurrent write to the same rows got in the way; retry shortly"

# SQLSTATEs (PostgreSQL Appendix A) whose meaning is ours to say.
BY_SQLSTATE: dict[str, tuple[type[CatalogueError], str]] = {
    "57014": (StatementTimeoutError, TIMED_OUT),
    "40P01": (TransactionConflictError, CONFLICTED),
    "40001": (TransactionConflictError, CONFLICTED),
    "23505": (ConflictError, "the collection or item already exists"),
    "23503": (NotFoundError, "the collection or item that this write refers to does not exist"),
    "57P01": (DatabaseUnavailableError, UNAVAILABLE),  # admin shutdown
    "57P02": (DatabaseUnavailableError, UNAVAILABLE),  # crash shutdown
    "57P03": (DatabaseUnavailableError, UNAVAILABLE),  # cannot connect now (starting up)
}

# Connection problems the driver reports without a SQLSTATE of its own.
CONNECTION_PROBLEMS = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    ConnectionError,
    OSError,
    TimeoutError,
)


def root_cause(error: BaseException) -> BaseException:
    """The innermost `__cause__`: the driver's own exception under SQLAlchemy's wrapper."""
    while error.__cause__ is not None and error.__cause__ is not error:
        error = error.__cause__
    return error


def _sqlstate(error: BaseException) -> str:
    orig = getattr(error, "orig", None)
    return str(getattr(orig, "sqlstate", None) or getattr(root_cause(error), "sqlstate", "") or "")


def translate(error: BaseException) -> CatalogueError | None:
    """The catalogue error for a driver or connection error; None for anything else."""
    if isinstance(error, exc.TimeoutError | exc.DisconnectionError):  # pool exhausted, ping
        return DatabaseUnavailableError(UNAVAILABLE)
    if not isinstance(error, (exc.DBAPIError, *CONNECTION_PROBLEMS)):
        return None
    sqlstate = _sqlstate(error)
    if sqlstate.startswith("22"):
        cause = root_cause(error)
        logger.info(
            "database refused a value: %s (%s; %s)", cause, sqlstate, getattr(cause, "detail", None)
        )
        return InvalidInputError(refused_value(sqlstate))
    if sqlstate in BY_SQLSTATE:
        kind, message = BY_SQLSTATE[sqlstate]
        return kind(message)
    if (
        sqlstate.startswith("08")  # connection exception
        or isinstance(root_cause(error), CONNECTION_PROBLEMS)
        or getattr(error, "connection_invalidated", False)
    ):
        return DatabaseUnavailableError(UNAVAILABLE)
    return DatabaseError(f"unexpected database error ({type(root_cause(error)).__name__})")


@contextmanager
def translated() -> Iterator[None]:
    """Re-raise driver and connection errors from the block as catalogue errors."""
    try:
        yield
    except Exception as error:
        ours = translate(error)
        if ours is None:
            raise
        raise ours from error
