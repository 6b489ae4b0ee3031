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


class DatabaseProbe:
    """`SELECT 1` with a deadline that holds whatever the network does.

    Cancelling a query that hangs is not instant: the driver then talks to the server
    (a cancel request, closing the connection) and that may hang as well. So the ping
    runs in a task of its own, and the probe stops waiting for it at the deadline; the
    task ends by itself later (driver timeouts). One ping at a time: probes arriving
    meanwhile wait for the same one, so a hanging database holds one pooled connection,
    not one per probe.
    """

    def __init__(self, db: Database, timeout_s: float) -> None:
        self.db = db
        self.timeout_s = timeout_s
        self._pending: asyncio.Task[float] | None = None

    async def _ping(self) -> float:
        started = time.perf_counter()
        await self.db.ping()
        return (time.perf_counter() - started) * 1000

    def _task(self) -> asyncio.Task[float]:
        if self._pending is None or self._pending.done():
            self._pending = asyncio.create_task(self._ping())
            # a ping nobody waits for any more must not log "exception never retrieved"
            self._pending.add_done_callback(lambda task: task.cancelled() or task.exception())
        return self._pending

    async def state(self) -> dict[str, Any]:
        """The database's state as the probe reports it; never raises. Errors are named by
        class only: the body is public and a driver's message names the database host."""
        task = self._task()
        await asyncio.wait({task}, timeout=self.timeout_s)
        if not task.done():
            problem = f"no answer within {self.timeout_s:g} s"
        elif task.cancelled():
            problem = "cancelled"
        elif (error := task.exception()) is not None:
            problem = type(_root_cause(error)).__name__
        else:
            pool = self.db.pool_use()
            return {
                "status": "UP",
                "latency_ms": round(task.result(), 2),
                "pool": {"size": pool.size, "checked_out": pool.checked_out},
            }
        logger.warning("health: the catalogue database is down: %s", problem)
        return {"status": "DOWN", "error": problem}


def health_endpoint(db: Database, timeout_s: float) -> Callable[[], Awaitable[ORJSONResponse]]:
    """The endpoint for stac-fastapi's `health_check` hook, which registers it at
    `/_mgmt/health`; FastAPI sends the response it returns as it is, status included."""

    probe = DatabaseProbe(db, timeout_s)

    async def health() -> ORJSONResponse:
        """Readiness: 200 `UP` when the catalogue database answers, 503 `DOWN` otherwise."""
        database = await probe.state()
        up = database["status"] == "UP"
        return ORJSONResponse(
            {"status": "UP" if up else "DOWN", "database": database},
            status_code=200 if up else 503,
            headers={"Cache-Control": "no-store"},
        )

    return health
