"""Errors to HTTP statuses, in one table, with STAC-shaped bodies (`code`, `description`)."""

from __future__ import annotations

import logging

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
)

logger = logging.getLogger(__name__)

STATUS_BY_ERROR: dict[type[Exception], int] = {
    NotFoundError: status.HTTP_404_NOT_FOUND,
    ConflictError: status.HTTP_409_CONFLICT,
    InvalidInputError: status.HTTP_400_BAD_REQUEST,
    DatabaseUnavailableError: status.HTTP_503_SERVICE_UNAVAILABLE,
    NotMigratedError: status.HTTP_503_SERVICE_UNAVAILABLE,
}


def _database_unavailable(request: Request, error: Exception) -> ORJSONResponse:
    """Connection loss, pool exhaustion or a statement timeout: retryable, details logged only."""
    logger.warning("database unavailable for %s %s: %s", request.method, request.url.path, error)
    text = str(getattr(error, "orig", error))
    if "statement timeout" in text or "canceling statement" in text:
        description = "the query took longer than the server's statement timeout; narrow it"
        code = status.HTTP_504_GATEWAY_TIMEOUT
    else:
        description = "the catalogue database is unavailable; retry shortly"
        code = status.HTTP_503_SERVICE_UNAVAILABLE
    return ORJSONResponse(
        {"code": "DatabaseUnavailable", "description": description},
        status_code=code,
        headers={"Retry-After": "1"},
    )


def add_database_error_handlers(app: FastAPI) -> None:
    for error in (
        sa_exc.OperationalError,
        sa_exc.InterfaceError,
        sa_exc.TimeoutError,
        sa_exc.DisconnectionError,
        ConnectionError,
        TimeoutError,
    ):
        app.add_exception_handler(error, _database_unavailable)  # type: ignore[arg-type]  # Starlette's handler type is narrower than its runtime contract
