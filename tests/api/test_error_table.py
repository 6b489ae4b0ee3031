"""api/errors.py: each catalogue error answers its status and STAC-shaped body, whatever
route raises it (the 400/404/409/503/504 cases are also met end to end in test_bad_input,
test_transactions and test_resilience)."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from api.errors import add_error_handlers
from catalogue.errors import (
    ConflictError,
    DatabaseError,
    DatabaseUnavailableError,
    InvalidInputError,
    NotFoundError,
    NotMigratedError,
    StatementTimeoutError,
    TransactionConflictError,
)

CASES = [
    (NotFoundError("no item 'x'"), 404, "NotFoundError", "no item 'x'", False),
    (ConflictError("item 'x' exists"), 409, "ConflictError", "item 'x' exists", False),
    (InvalidInputError("bad bbox"), 400, "InvalidInputError", "bad bbox", False),
    (DatabaseUnavailableError("retry shortly"), 503, "DatabaseUnavailable", "retry", True),
    (TransactionConflictError("retry shortly"), 503, "DatabaseUnavailable", "retry", True),
    (StatementTimeoutError("narrow it"), 504, "DatabaseUnavailable", "narrow it", True),
    (NotMigratedError("run cubestac db upgrade"), 503, "NotMigratedError", "upgrade", False),
    (DatabaseError("unexpected (UndefinedFunctionError)"), 500, "InternalError", "logged", False),
    (ConnectionRefusedError("db.internal:5432"), 503, "DatabaseUnavailable", "retry", True),
]


@pytest.mark.parametrize(("error", "status", "code", "says", "retry"), CASES)
async def test_each_error_answers_its_row(
    error: Exception, status: int, code: str, says: str, retry: bool
) -> None:
    app = FastAPI()
    add_error_handlers(app)

    @app.get("/fails")
    async def fails() -> None:
        raise error

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        response = await http.get("/fails")
    assert response.status_code == status
    body = response.json()
    assert body["code"] == code
    assert says in body["description"]
    assert "db.internal" not in body["description"]  # a driver's text names hosts
    assert "UndefinedFunctionError" not in body["description"]
    assert ("retry-after" in response.headers) is retry
