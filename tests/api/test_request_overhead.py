"""What the per-request savings must not break: the cached landing page still lists new
collections after its time-to-live and links to the host that asked; a pooled connection
that died while idle is replaced before use (the job `pool_pre_ping` did on every request).
"""

from __future__ import annotations

import asyncio

import fastapi.dependencies.utils
import httpx
import pytest
from sqlalchemy import text

import api.core
import catalogue.database
from api import create_app
from catalogue.database import create_engine
from tests.helpers import make_collection, make_item, make_settings


def _children(landing: dict) -> list[str]:
    return [link["href"] for link in landing["links"] if link["rel"] == "child"]


async def test_landing_page_is_cached_for_its_ttl_then_refreshed(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [1000.0]
    monkeypatch.setattr(api.core, "monotonic", lambda: clock[0])
    await client.post("/collections", json=make_collection("alpha"))
    first = (await client.get("/")).json()
    await client.post("/collections", json=make_collection("beta"))
    clock[0] += api.core.LANDING_TTL_S / 2
    cached = (await client.get("/")).json()
    assert cached == first
    assert _children(cached) == ["http://testserver/collections/alpha"]

    clock[0] += api.core.LANDING_TTL_S
    refreshed = (await client.get("/")).json()
    assert _children(refreshed) == [
        "http://testserver/collections/alpha",
        "http://testserver/collections/beta",
    ]


async def test_cached_landing_page_links_to_the_host_that_asked(
    client: httpx.AsyncClient,
) -> None:
    await client.post("/collections", json=make_collection("alpha"))
    mine = (await client.get("/")).json()
    other = (await client.get("/", headers={"Host": "other.example:8080"})).json()
    assert _children(mine) == ["http://testserver/collections/alpha"]
    assert _children(other) == ["http://other.example:8080/collections/alpha"]
    assert {link["href"].split("/")[2] for link in other["links"]} == {"other.example:8080"}


async def test_a_connection_killed_while_idle_is_replaced_before_use(
    fresh_db_url, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(catalogue.database, "IDLE_PING_S", 0.05)
    settings = make_settings(fresh_db_url)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            assert (await http.get("/collections")).status_code == 200
            killer = create_engine(settings)
            async with killer.connect() as conn:
                killed = await conn.scalar(
                    text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                        "AND application_name = 'cubestac'"
                    )
                )
            await killer.dispose()
            assert killed >= 1
            await asyncio.sleep(0.2)
            for _ in range(3):
                assert (await http.get("/collections")).status_code == 200


async def test_request_models_are_built_without_a_thread_and_still_validate(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """api.routing: FastAPI would build stac-fastapi's request models (attrs classes) in its
    thread pool; they are built on the event loop, from the same parameters, with the same
    checks."""
    hops: list[object] = []
    original = fastapi.dependencies.utils.run_in_threadpool

    async def counting(function, *args, **kwargs):
        hops.append(function)
        return await original(function, *args, **kwargs)

    monkeypatch.setattr(fastapi.dependencies.utils, "run_in_threadpool", counting)
    await client.post("/collections", json=make_collection("alpha"))
    await client.post("/collections/alpha/items", json=make_item("a-1", "alpha"))
    for path, params in [
        ("/", None),
        ("/conformance", None),
        ("/queryables", None),
        ("/collections", {"limit": "5"}),
        ("/collections/alpha", None),
        ("/collections/alpha/items", {"limit": "1"}),
        ("/collections/alpha/items/a-1", None),
        ("/search", {"collections": "alpha", "bbox": "-180,-90,180,90", "limit": "3"}),
    ]:
        response = await client.get(path, params=params)
        assert response.status_code == 200, (path, response.text)
    found = (await client.get("/search", params={"ids": "a-1", "fields": "id"})).json()
    assert [feature["id"] for feature in found["features"]] == ["a-1"]
    bad = await client.get("/search", params={"bbox": "1,2"})
    assert bad.status_code == 400 and "4 or 6 values" in bad.json()["description"]
    assert hops == []
