"""`/_mgmt/health`: whether this node can serve, for a load balancer's readiness probe.

stac-fastapi's default answers `{"status": "UP"}` whatever the database does, so a node
whose database is gone stays in rotation and answers 503s. This one runs `SELECT 1`
through the request pool with a short deadline and answers 503 `DOWN` when it fails or
does not answer in time: a probe never waits longer than `health_timeout_s`.
`/_mgmt/ping` stays the liveness probe (the process answers at all).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from api.responses import ORJSONResponse
from catalogue.database import Database

logger = logging.getLogger(__name__)


def _root_cause(error: BaseException) -> BaseException:
    while error.__cause__ is not None and error.__cause__ is not error:
        error = error.__cause__
    return error


async def database_health(db: Database, timeout_s: float) -> dict[str, Any]:
    """The database's state as the probe reports it; never raises, never exceeds the
    deadline. Errors are named by class only: the body is public and a driver's message
    carries the database's host and port."""
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout_s):
            await db.ping()
    except TimeoutError:
        problem = f"no answer within {timeout_s:g} s"
    except Exception as error:  # noqa: BLE001 - any failure to answer means DOWN
        problem = type(_root_cause(error)).__name__
    else:
        pool = db.pool_use()
        return {
            "status": "UP",
            "latency_ms": round((time.perf_counter() - started) * 1000, 2),
            "pool": {"size": pool.size, "checked_out": pool.checked_out},
        }
    logger.warning("health: the catalogue database is down: %s", problem)
    return {"status": "DOWN", "error": problem}


def health_endpoint(db: Database, timeout_s: float) -> Callable[[], Awaitable[ORJSONResponse]]:
    """The endpoint for stac-fastapi's `health_check` hook, which registers it at
    `/_mgmt/health`; FastAPI sends the response it returns as it is, status included."""

    async def health() -> ORJSONResponse:
        """Readiness: 200 `UP` when the catalogue database answers, 503 `DOWN` otherwise."""
        database = await database_health(db, timeout_s)
        up = database["status"] == "UP"
        return ORJSONResponse(
            {"status": "UP" if up else "DOWN", "database": database},
            status_code=200 if up else 503,
            headers={"Cache-Control": "no-store"},
        )

    return health
