"""Run records and per-target advisory locks."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import create_async_engine

from catalogue.repositories.jobs import (
    JobStatus,
    finish_job,
    recent_jobs,
    start_job,
    target_lock,
)


async def test_a_killed_run_is_marked_failed_by_the_next(database) -> None:
    async with database.write() as conn:
        killed = await start_job(conn, "ingest", "src")
        current = await start_job(conn, "ingest", "src")
        await finish_job(conn, current, JobStatus.SUCCEEDED, {"new": 3}, [])
        listed = {job["id"]: job for job in await recent_jobs(conn)}
    assert listed[killed]["status"] == JobStatus.FAILED
    assert "interrupted" in listed[killed]["message"]
    assert listed[current]["status"] == JobStatus.SUCCEEDED
    assert listed[current]["counts"] == {"new": 3}


async def test_a_second_holder_of_a_target_lock_is_refused(session_db_url) -> None:
    engine = create_async_engine(session_db_url)
    try:
        async with target_lock(engine, "ingest", "src") as first:
            async with target_lock(engine, "ingest", "src") as second:
                async with target_lock(engine, "ingest", "other") as other:
                    assert (bool(first), bool(second), bool(other)) == (True, False, True)
                    assert first.pid and second.pid is None
        async with target_lock(engine, "ingest", "src") as again:
            assert again
    finally:
        await engine.dispose()
