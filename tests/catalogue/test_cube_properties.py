"""The cube facts in SQL (migration 0010): what `cubestac_cube_facts` reads from odd
documents, and that cube filters are written so that its GIN index answers them."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import func, literal, select, text
from sqlalchemy.dialects import postgresql

from catalogue.filters import filter_clause, parse_filter
from catalogue.models import ItemRow

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
    clause = filter_clause(parse_filter(text_filter, "cql2-text"))
    statement = select(items.c.id).where(clause)
    async with database.read() as conn:
        await conn.execute(text("SET LOCAL enable_seqscan = off"))
        explained = await explain_json(conn, statement)
    assert "ix_items_cube_facts" in explained, explained
