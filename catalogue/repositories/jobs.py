"""Run records of ingest and cube jobs, and the advisory locks that keep runs apart.

Liveness: a run holds its target's advisory lock on a connection of its own for as long as
it lives, and its job row records that connection's backend pid (`holder_pid`). PostgreSQL
ends the backend, and the lock, when the process dies however it dies (SIGKILL included),
so a `running` job whose backend is gone was interrupted: `recent_jobs` says so.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, column, exists, func, insert, or_, select, table, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from catalogue.models import JobRow

jobs = JobRow.__table__
backends = table("pg_stat_activity", column("pid"), column("backend_start"))
MAX_ERRORS_KEPT = 200
INTERRUPTED_MESSAGE = "interrupted: the process ended before the run finished"


class JobStatus(enum.StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    INTERRUPTED = "interrupted"  # only shown: a stored `running` whose holder is gone


@dataclass(frozen=True)
class LockHold:
    """What `target_lock` yields: whether the lock was taken, and by which backend."""

    acquired: bool
    pid: int | None = None

    def __bool__(self) -> bool:
        return self.acquired


async def start_job(
    conn: AsyncConnection, kind: str, target: str, holder_pid: int | None = None
) -> int:
    """Record a new run held by backend `holder_pid` (see `target_lock`); earlier runs of
    the same target still `running` were killed (the caller holds the target's advisory
    lock, so none can be alive) and become failed."""
    await conn.execute(
        update(jobs)
        .where(jobs.c.kind == kind, jobs.c.target == target, jobs.c.status == JobStatus.RUNNING)
        .values(
            status=JobStatus.FAILED,
            finished_at=func.now(),
            message=INTERRUPTED_MESSAGE,
        )
    )
    return await conn.scalar(
        insert(jobs)
        .values(
            kind=kind,
            target=target,
            status=JobStatus.RUNNING,
            counts={},
            errors=[],
            holder_pid=holder_pid,
        )
        .returning(jobs.c.id)
    )


async def finish_job(
    conn: AsyncConnection,
    job_id: int,
    status: JobStatus,
    counts: dict[str, int],
    errors: list[dict[str, Any]],
    message: str | None = None,
) -> None:
    await conn.execute(
        update(jobs)
        .where(jobs.c.id == job_id)
        .values(
            status=status,
            finished_at=func.now(),
            counts=counts,
            errors=errors[:MAX_ERRORS_KEPT],
            message=message,
        )
    )


async def record_skipped(conn: AsyncConnection, kind: str, target: str, message: str) -> None:
    await conn.execute(
        insert(jobs).values(
            kind=kind,
            target=target,
            status=JobStatus.SKIPPED,
            finished_at=func.now(),
            counts={},
            errors=[],
            message=message,
        )
    )


async def recent_jobs(conn: AsyncConnection, limit: int = 20) -> list[dict[str, Any]]:
    """Newest first; a `running` job whose lock-holding backend is gone is `interrupted`.

    The backend must have started before the job: a pid that PostgreSQL has since given to
    a new connection does not keep a dead run alive. (Another role's sessions may hide
    `backend_start`; such a backend counts as alive.) Jobs recorded before holders were
    (migration 0009) keep their stored status."""
    gone = _holder_gone()
    statement = (
        select(
            *(c for c in jobs.c if c.name not in ("status", "message")),
            case((gone, JobStatus.INTERRUPTED.value), else_=jobs.c.status).label("status"),
            case((gone, INTERRUPTED_MESSAGE), else_=jobs.c.message).label("message"),
        )
        .order_by(jobs.c.started_at.desc(), jobs.c.id.desc())
        .limit(limit)
    )
    rows = await conn.execute(statement)
    return [dict(row._mapping) for row in rows]


@dataclass(frozen=True)
class JobTally:
    """How many runs of one kind ended (or stand) in one status, and the newest end time."""

    kind: str
    status: str
    count: int
    last_finished: datetime | None


async def job_tallies(conn: AsyncConnection) -> list[JobTally]:
    """Runs per (kind, status), for monitoring: one grouped scan of a table that grows by
    one row per source or cube and run (thousands a year), so callers cache it anyway.
    Statuses as `recent_jobs` shows them (a killed run is `interrupted`)."""
    status = case((_holder_gone(), JobStatus.INTERRUPTED.value), else_=jobs.c.status)
    rows = await conn.execute(
        select(jobs.c.kind, status, func.count(), func.max(jobs.c.finished_at))
        .group_by(jobs.c.kind, status)
        .order_by(jobs.c.kind, status)
    )
    return [JobTally(kind, status, count, finished) for kind, status, count, finished in rows]


def _holder_gone() -> Any:
    """A `running` job whose lock-holding backend is gone (see `recent_jobs`)."""
    alive = exists(
        select(backends.c.pid).where(
            backends.c.pid == jobs.c.holder_pid,
            or_(backends.c.backend_start.is_(None), backends.c.backend_start <= jobs.c.started_at),
        )
    )
    return and_(jobs.c.status == JobStatus.RUNNING, jobs.c.holder_pid.is_not(None), ~alive)


@asynccontextmanager
async def target_lock(engine: AsyncEngine, kind: str, target: str) -> AsyncIterator[LockHold]:
    """A session advisory lock on (kind, target), held on its own connection for the run.

    Yields a false `LockHold`, without waiting, when another run holds it; a true one with
    the holding backend's pid (for `start_job`) otherwise. The lock key is
    `hashtext(kind || ':' || target)`, computed by PostgreSQL from bound parameters; the
    lock is released when the connection closes, so a killed run cannot leave it behind.
    """
    async with engine.connect() as conn:
        key = func.hashtext(func.concat(kind, ":", target))
        taken = await conn.execute(select(func.pg_try_advisory_lock(key), func.pg_backend_pid()))
        acquired, pid = taken.one()
        await conn.commit()
        try:
            yield LockHold(bool(acquired), pid if acquired else None)
        finally:
            if acquired:
                await conn.scalar(select(func.pg_advisory_unlock(key)))
                await conn.commit()
