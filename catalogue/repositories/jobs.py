"""Run records of ingest and cube jobs, and the advisory locks that keep runs apart."""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from catalogue.models import JobRow

jobs = JobRow.__table__
MAX_ERRORS_KEPT = 200


class JobStatus(enum.StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"


async def start_job(conn: AsyncConnection, kind: str, target: str) -> int:
    """Record a new run; earlier runs of the same target still `running` were killed
    (the caller holds the target's advisory lock, so none can be alive) and become failed."""
    await conn.execute(
        update(jobs)
        .where(jobs.c.kind == kind, jobs.c.target == target, jobs.c.status == JobStatus.RUNNING)
        .values(
            status=JobStatus.FAILED,
            finished_at=func.now(),
            message="interrupted: the process ended before the run finished",
        )
    )
    return await conn.scalar(
        insert(jobs)
        .values(kind=kind, target=target, status=JobStatus.RUNNING, counts={}, errors=[])
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
    rows = await conn.execute(
        select(jobs).order_by(jobs.c.started_at.desc(), jobs.c.id.desc()).limit(limit)
    )
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
    one row per source or cube and run (thousands a year), so callers cache it anyway."""
    rows = await conn.execute(
        select(jobs.c.kind, jobs.c.status, func.count(), func.max(jobs.c.finished_at))
        .group_by(jobs.c.kind, jobs.c.status)
        .order_by(jobs.c.kind, jobs.c.status)
    )
    return [JobTally(kind, status, count, finished) for kind, status, count, finished in rows]


@asynccontextmanager
async def target_lock(engine: AsyncEngine, kind: str, target: str) -> AsyncIterator[bool]:
    """A session advisory lock on (kind, target), held on its own connection for the run.

    Yields False, without waiting, when another run holds it. The lock key is
    `hashtext(kind || ':' || target)`, computed by PostgreSQL from bound parameters; the
    lock is released when the connection closes, so a killed run cannot leave it behind.
    """
    async with engine.connect() as conn:
        key = func.hashtext(func.concat(kind, ":", target))
        acquired = bool(await conn.scalar(select(func.pg_try_advisory_lock(key))))
        await conn.commit()
        try:
            yield acquired
        finally:
            if acquired:
                await conn.scalar(select(func.pg_advisory_unlock(key)))
                await conn.commit()
