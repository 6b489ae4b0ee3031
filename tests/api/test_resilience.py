"""The API under database trouble: slow statements, an exhausted pool, a restarted server.

Each case answers with a clear 503/504 instead of hanging a worker, and recovers by itself.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from api import create_app
from api.state import state_of
from catalogue.embedded import EmbeddedCluster
from catalogue.schema import upgrade
from catalogue.settings import DatabasePoolSettings
from tests.helpers import live_server, make_settings
from tests.waiting import until

pytestmark = pytest.mark.slow


async def _hold_lock_on_items(url, release: asyncio.Event, held: asyncio.Event) -> None:
    engine = create_async_engine(url)
    async with engine.connect() as conn:
        await conn.execute(text("LOCK TABLE items IN ACCESS EXCLUSIVE MODE"))
        held.set()
        await release.wait()
        await conn.rollback()
    await engine.dispose()


async def _waiting_on_a_lock(url) -> bool:
    """Whether one of the API's connections is inside a statement, blocked on a lock."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            waiting = await conn.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE application_name = 'cubestac' AND wait_event_type = 'Lock'"
                )
            )
    finally:
        await engine.dispose()
    return bool(waiting)


async def test_a_statement_over_the_timeout_answers_504(fresh_db_url) -> None:
    pool = DatabasePoolSettings(statement_timeout_ms=300)
    app = create_app(make_settings(fresh_db_url, pool=pool))
    release, held = asyncio.Event(), asyncio.Event()
    locker = asyncio.create_task(_hold_lock_on_items(fresh_db_url, release, held))
    await held.wait()
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as http:
            response = await http.get("/search")
        assert response.status_code == 504
        assert "timeout" in response.json()["description"]
    finally:
        release.set()
        await locker
        await state_of(app).database.dispose()


async def test_an_exhausted_pool_answers_503(fresh_db_url) -> None:
    pool = DatabasePoolSettings(
        pool_size=1, max_overflow=0, pool_timeout_s=0.3, statement_timeout_ms=3000
    )
    app = create_app(make_settings(fresh_db_url, pool=pool))
    release, held = asyncio.Event(), asyncio.Event()
    locker = asyncio.create_task(_hold_lock_on_items(fresh_db_url, release, held))
    await held.wait()
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as http:
            slow = asyncio.create_task(http.get("/search"))  # takes the only connection
            await until(
                lambda: _waiting_on_a_lock(fresh_db_url), "the first search to wait on the lock"
            )
            refused = await http.get("/search")
            assert refused.status_code == 503
            assert refused.headers["retry-after"]
            release.set()
            assert (await slow).status_code == 200
            assert (await http.get("/search")).status_code == 200
    finally:
        release.set()
        await locker
        await state_of(app).database.dispose()


def test_the_api_recovers_after_a_database_restart(own_cluster: EmbeddedCluster) -> None:
    url = own_cluster.url()
    upgrade(url)
    with live_server(create_app(make_settings(url))) as base:
        assert httpx.get(f"{base}/search").status_code == 200
        own_cluster.stop()
        down = httpx.get(f"{base}/search", timeout=30)
        assert down.status_code == 503
        assert down.json()["code"] == "DatabaseUnavailable"
        own_cluster.start()
        assert httpx.get(f"{base}/search", timeout=30).status_code == 200
