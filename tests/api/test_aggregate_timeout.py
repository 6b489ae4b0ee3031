"""`/aggregate` under `CUBESTAC_API__AGGREGATE_TIMEOUT_MS`: over it the answer is a 504 and
the connection goes back to the pool with the usual statement timeout.

Deterministically over the budget: another transaction holds an ACCESS EXCLUSIVE lock on
the items, so the aggregation waits for it until PostgreSQL cancels it."""

from __future__ import annotations

import httpx
from sqlalchemy import URL, text
from sqlalchemy.ext.asyncio import create_async_engine

from api import create_app
from api.state import state_of
from catalogue.settings import ApiSettings
from tests.helpers import TEST_API_KEY, grid_items, make_collection, make_settings


async def test_an_aggregation_over_its_budget_is_a_504(fresh_db_url: URL) -> None:
    settings = make_settings(fresh_db_url, api=ApiSettings(aggregate_timeout_ms=200))
    app = create_app(settings)
    headers = {"Authorization": f"Bearer {TEST_API_KEY}"}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", headers=headers
        ) as client:
            assert (await client.post("/collections", json=make_collection())).is_success
            body = {"items": {i["id"]: i for i in grid_items(20)}, "method": "insert"}
            response = await client.post("/collections/test-collection/bulk_items", json=body)
            assert response.is_success
            params = {"aggregations": "total_count,datetime_frequency"}
            engine = create_async_engine(fresh_db_url)
            try:
                async with engine.connect() as locker:
                    await locker.execute(text("LOCK TABLE items IN ACCESS EXCLUSIVE MODE"))
                    response = await client.get("/aggregate", params=params)
                    await locker.rollback()
            finally:
                await engine.dispose()
            assert response.status_code == 504, response.text
            assert response.json()["code"] == "DatabaseUnavailable"
            answer = (await client.get("/aggregate", params=params)).json()
            assert answer["aggregations"][0]["value"] == 20
            async with state_of(app).database.read() as conn:  # back in the pool, sound
                timeout = (await conn.execute(text("SHOW statement_timeout"))).scalar_one()
            assert timeout == "15s"
