"""Errors to HTTP statuses, in one table, with STAC-shaped bodies (`code`, `description`)."""

from __future__ import annotations

import logging

import asyncpg
from fastapi import FastAPI
from sqlalchemy import exc as sa_exc
from starlette import status
from starlette.requests import Request

from api.responses import ORJSONResponse
from catalogue.errors import (
    ConflictError,
    DatabaseUnavailableError,
    InvalidInputError,
    NotFoundError,
    NotMigratedError,
    refused_value,
)

logger = logging.getLogger(__name__)

STATUS_BY_ERROR: dict[type[Exception], int] = {
    NotFoundError: status.HTTP_404_NOT_FOUND,
    ConflictError: status.HTTP_409_CONFLICT,
    InvalidInputError: status.HTTP_400_BAD_REQUEST,
    DatabaseUnavailableError: status.HTTP_503_SERVICE_UNAVAILABLE,
    NotMigratedError: status.HTTP_503_SERVICE_UNAVAILABLE,
}


CONNECTION_PROBLEMS = (
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.AdminShutdownError,
    asyncpg.InterfaceError,
    ConnectionError,
    OSError,
)


def _root_cause(error: BaseException) -> BaseException:
    seen = error
    while seen.__cause__ is not None and seen.__cause__ is not seen:
        seen = seen.__cause__
    return seen


def _database_unavailable(request: Request, error: Exception) -> ORJSONResponse:
    """Connection loss, pool exhaustion or a statement timeout: retryable (503/504), details
    logged only. Any other database error is a bug: logged with its traceback, a plain 500."""
    cause = _root_cause(error)
    if isinstance(cause, asyncpg.DataError):
        # SQLSTATE class 22: a value PostgreSQL cannot hold (a \u0000 in JSON text, a number
        # out of range) that got past the checks before SQL: the client's input, a 400
        # (PostgreSQL's own text names its internals: logged, not answered)
        sqlstate = getattr(cause, "sqlstate", None)
        logger.info(
            "database refused a value on %s %s: %s (%s; %s)",
            request.method,
            request.url.path,
            cause,
            sqlstate,
            getattr(cause, "detail", None),
        )
        return ORJSONResponse(
            {"code": "InvalidInputError", "description": refused_value(sqlstate)},
            status_code=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(cause, asyncpg.QueryCanceledError):
        description = "the query took longer than the server's statement timeout; narrow it"
        code = status.HTTP_504_GATEWAY_TIMEOUT
    elif (
        isinstance(error, sa_exc.TimeoutError | sa_exc.DisconnectionError)
        or isinstance(cause, CONNECTION_PROBLEMS)
        or getattr(error, "connection_invalidated", False)
    ):
        description = "the catalogue database is unavailable; retry shortly"
        code = status.HTTP_503_SERVICE_UNAVAILABLE
    else:
        logger.error("database error on %s %s", request.method, request.url.path, exc_info=error)
        return ORJSONResponse(
            {"code": "InternalError", "description": "internal error; it has been logged"},
            status_code=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    logger.warning("database unavailable for %s %s: %s", request.method, request.url.path, cause)
    return ORJSONResponse(
        {"code": "DatabaseUnavailable", "description": description},
        status_code=code,
        headers={"Retry-After": "1"},
    )


def add_database_error_handlers(app: FastAPI) -> None:
    for error in (
        sa_exc.DBAPIError,
        sa_exc.TimeoutError,
        sa_exc.DisconnectionError,
        ConnectionError,
        TimeoutError,
    ):
        app.add_exception_handler(error, _database_unavailable)
