"""The cube facts in SQL (migration 0010): what `cubestac_cube_facts` reads from odd
documents, and that cube filters are written so that its GIN index answers them."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from sqlalchemy import URL, func, literal, select, text
from sqlalchemy.dialects import postgresql
from typer.testing import CliRunner

from api import create_app
from catalogue.database import Database, create_engine
from catalogue.filters import filter_clause, parse_filter
from catalogue.models import ItemRow
from catalogue.repositories.collections import upsert_collection
from catalogue.repositories.items import upsert_items
from catalogue.schema import upgrade
from catalogue.serializers import item_to_row
from cubestac.cli import app
from tests.api.cube_items import catalogue_items
from tests.conftest import _admin
from tests.helpers import live_server, make_collection, make_settings

items = ItemRow.__table__


@pytest.mark.parametrize(
    ("properties", "facts"),
    [
        ({"eo:cloud_cover": 3}, None),
        ({"cube:variables": "agb"}, {"cube:variable_names": [], "cube:variable_units": [],
                                     "cube:dimension_names": []}),
        ({"cube:dimensions": {"t": {"type": "temporal", "step": 5},
                              "x": {"type": "spatial", "axis": "x", "step": "30"}}},
         {"cube:variable_names": [], "cube:variable_units": [],
          "cube:dimension_names": ["t", "x"]}),
        ({"cube:variables": {"a": {"unit": None}, "b": {"unit": "K"}, "c": []},
          "cube:dimensions": [1, 2]},
         {"cube:variable_names": ["a", "b", "c"], "cube:variable_units": ["K"],
          "cube:dimension_names": []}),
    ],
)  # fmt: skip
async def test_odd_documents_give_what_they_hold_and_never_fail(
    database, properties: dict[str, Any], facts: dict[str, Any] | None
) -> None:
    """Steps of the wrong type are left out; nothing raises, so no write can fail here."""
    statement = select(func.cubestac_cube_facts(literal(properties, postgresql.JSONB())))
    async with database.read() as conn:
        assert (await conn.execute(statement)).scalar_one() == facts


async def explain_json(conn: Any, statement: Any) -> str:
    """`tests.helpers.explain` with the JSONB values as JSON text (what the driver takes
    once SQLAlchemy's bind processing, which EXPLAIN skips, is left out)."""
    compiled = statement.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    values = compiled.construct_params()
    params = tuple(
        json.dumps(value) if isinstance(value, dict | list) else value
        for value in (values[name] for name in compiled.positiontup or ())
    )
    return "\n".join(row[0] for row in await conn.exec_driver_sql(f"EXPLAIN {compiled}", params))


@pytest.mark.parametrize(
    "text_filter",
    [
        "A_CONTAINS(cube:variable_names, ('agb'))",
        "A_OVERLAPS(cube:variable_units, ('Mg/ha', 't/ha'))",
        "A_EQUALS(cube:dimension_names, ('x', 'y', 'time'))",
        "cube:time_step = 'P1Y'",
        "cube:resolution = 30",
    ],
)
async def test_cube_filters_use_the_facts_index(database, text_filter: str) -> None:
    """On a tiny catalogue the planner may as well walk the (partial, cube-only) resolution
    index and filter; with that one out of the way the facts index must answer."""
    plan = await plan_of(database, text_filter, without="ix_items_cube_resolution")
    assert "ix_items_cube_facts" in plan


@pytest.mark.parametrize(
    "text_filter",
    ["cube:resolution < 1", "cube:resolution BETWEEN 10 AND 100", "NOT cube:resolution > 5"],
)
async def test_resolution_ranges_use_the_resolution_index(database, text_filter: str) -> None:
    assert "ix_items_cube_resolution" in await plan_of(database, text_filter)


async def plan_of(database: Any, text_filter: str, without: str | None = None) -> str:
    """The plan of a search for `text_filter`, with sequential scans off (the test
    catalogue is tiny): whether an index can answer it at all. `without`: an index dropped
    for this plan only, in a transaction that is rolled back."""
    clause = filter_clause(parse_filter(text_filter, "cql2-text"))
    statement = select(items.c.id).where(clause)
    async with database.engine.connect() as conn:
        transaction = await conn.begin()
        try:
            await conn.execute(text("SET LOCAL enable_seqscan = off"))
            if without is not None:
                await conn.execute(text(f"DROP INDEX {without}"))  # a constant of this file
            return await explain_json(conn, statement)
        finally:
            await transaction.rollback()


@pytest.fixture
def catalogue_at_0009(server_url: URL) -> URL:
    """A catalogue migrated to the revision before the cube facts."""
    _admin(
        server_url,
        "DROP DATABASE IF EXISTS cubestac_at_0009 WITH (FORCE)",
        "CREATE DATABASE cubestac_at_0009",
    )
    url = server_url.set(database="cubestac_at_0009", drivername="postgresql+asyncpg")
    _admin(url.set(drivername="postgresql+psycopg"), "CREATE EXTENSION IF NOT EXISTS postgis")
    upgrade(url, "0009")
    return url


async def _seed(url: URL) -> None:
    database = Database(create_engine(make_settings(url)))
    try:
        async with database.write() as conn:
            for collection, found in catalogue_items().items():
                await upsert_collection(conn, make_collection(collection))
                await upsert_items(conn, [item_to_row(item) for item in found])
    finally:
        await database.dispose()


def test_db_upgrade_makes_an_existing_catalogues_cubes_findable(
    catalogue_at_0009: URL, monkeypatch: pytest.MonkeyPatch
) -> None:
    asyncio.run(_seed(catalogue_at_0009))
    monkeypatch.setenv("DATABASE_URL", catalogue_at_0009.render_as_string(hide_password=False))
    assert CliRunner().invoke(app, ["db", "upgrade"]).exit_code == 0
    params = {"filter": "A_CONTAINS(cube:variable_names, ('agb')) AND cube:resolution < 50"}
    with live_server(create_app(make_settings(catalogue_at_0009))) as base:
        response = httpx.get(f"{base}/search", params=params)
    assert response.status_code == 200, response.text
    found = {feature["id"] for feature in response.json()["features"]}
    assert found == {"agb-yearly", "ndvi-monthly"}
