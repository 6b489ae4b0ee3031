"""The planner's estimate of how many rows a statement returns: `EXPLAIN (FORMAT JSON)`.

An exact count of a broad search at 10M items is a scan of millions of index entries; the
planner's estimate of the same search costs a plan, a millisecond. `catalogue.search.service`
asks for it before counting, and counts only when the estimate is small. `Explain` is a
statement of its own (SQLAlchemy's compiler extension), so the explained statement keeps its
bound parameters: nothing is formatted into the SQL.
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import literal_column
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement, Executable


class Explain(Executable, ClauseElement):
    """`EXPLAIN (FORMAT JSON) <statement>`."""

    # not cached: a cached EXPLAIN would need result columns SQLAlchemy cannot know; it
    # compiles its statement anew each time (a fraction of a millisecond)
    inherit_cache = False

    def __init__(self, statement: Any) -> None:
        self.statement = statement


@compiles(Explain, "postgresql")
def _explain(element: Explain, compiler: SQLCompiler, **kwargs: Any) -> str:
    return "EXPLAIN (FORMAT JSON) " + compiler.process(element.statement, **kwargs)


def rows_of(count_statement: Any) -> Any:
    """The rows a `SELECT count(*) ... WHERE` counts, as `SELECT 1 ... WHERE`: the plan's top
    node then estimates them (a count's top node is its one row)."""
    return count_statement.with_only_columns(literal_column("1"))


async def estimated_rows(
    conn: AsyncConnection, count_statement: Any, parameters: dict[str, Any]
) -> float:
    """The planner's estimate of the rows `count_statement` (a `SELECT count(*)` built by
    `catalogue.repositories.search.count_statement`) counts."""
    plan = (await conn.execute(Explain(rows_of(count_statement)), parameters)).scalar_one()
    if isinstance(plan, str):  # asyncpg hands `json` over as text
        plan = orjson.loads(plan)
    return float(plan[0]["Plan"]["Plan Rows"])
