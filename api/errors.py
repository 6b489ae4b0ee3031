"""Our errors to HTTP statuses, in one table, with STAC-shaped bodies (`code`, `description`).

Driver errors never get here: `catalogue.database.Database` translates them into catalogue
errors (`catalogue.driver_errors`), so this module knows nothing of asyncpg or SQLAlchemy.
Starlette picks the handler of the most specific class in an error's MRO, so a subclass
listed here (StatementTimeoutError) wins over its base (DatabaseUnavailableError).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from fastapi import FastAPI
from starlette import status
from starlette.requests import Request

from api.responses import ORJSONResponse
from catalogue.errors import (
    ConflictError,
    DatabaseError,
    DatabaseUnavailableError,
    InvalidInputError,
    NotFoundError,
    NotMigratedError,
    StatementTimeoutError,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Answer:
    """How an error is answered: its status, the body's `code` (the error's class name when
    None), whether the client is told to retry (`Retry-After`), and a fixed `description`
    where the error's own text is not for users (None: the error's message)."""

    status: int
    code: str | None = None
    retry_after: bool = False
    description: str | None = None


UNAVAILABLE = Answer(status.HTTP_503_SERVICE_UNAVAILABLE, "DatabaseUnavailable", True)
# A raw connection error's text names hosts and ports: answered in our words.
CONNECTION_BROKE = Answer(
    status.HTTP_503_SERVICE_UNAVAILABLE,
    "DatabaseUnavailable",
    True,
    "the catalogue database is unavailable; retry shortly",
)

ANSWERS: dict[type[Exception], Answer] = {
    NotFoundError: Answer(status.HTTP_404_NOT_FOUND),
    ConflictError: Answer(status.HTTP_409_CONFLICT),
    InvalidInputError: Answer(status.HTTP_400_BAD_REQUEST),
    DatabaseUnavailableError: UNAVAILABLE,  # TransactionConflictError too: retry shortly
    StatementTimeoutError: Answer(status.HTTP_504_GATEWAY_TIMEOUT, "DatabaseUnavailable", True),
    NotMigratedError: Answer(status.HTTP_503_SERVICE_UNAVAILABLE),
    DatabaseError: Answer(
        status.HTTP_500_INTERNAL_SERVER_ERROR,
        "InternalError",
        False,
        "internal error; it has been logged",
    ),
    # a connection this process depends on broke outside the catalogue's own translation
    ConnectionError: CONNECTION_BROKE,
    TimeoutError: CONNECTION_BROKE,
}


def _answer(request: Request, error: Exception, answer: Answer) -> ORJSONResponse:
    """The error's answer; a 500 is logged with its traceback, an unavailable database with
    the driver's cause (its text names hosts, so the body leaves it out)."""
    where = f"{request.method} {request.url.path}"
    if answer.status == status.HTTP_500_INTERNAL_SERVER_ERROR:
        logger.error("database error on %s", where, exc_info=error)
    elif answer.code == "DatabaseUnavailable":
        logger.warning("database unavailable for %s: %s", where, error.__cause__ or error)
    return ORJSONResponse(
        {
            "code": answer.code or type(error).__name__,
            "description": answer.description or str(error),
        },
        status_code=answer.status,
        headers={"Retry-After": "1"} if answer.retry_after else None,
    )


def add_error_handlers(app: FastAPI) -> None:
    """One handler per row of `ANSWERS`."""
    for error_class, answer in ANSWERS.items():

        def handler(request: Request, error: Exception, answer: Answer = answer) -> ORJSONResponse:
            return _answer(request, error, answer)

        app.add_exception_handler(error_class, handler)
