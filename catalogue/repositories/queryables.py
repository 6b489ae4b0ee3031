"""Queryables derived from the data: which properties items carry, their types, low-cardinality
values. Written with every item write, read by `/queryables`, filters and sortby."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from catalogue.models import QueryableRow

queryables = QueryableRow.__table__
MAX_ENUM_VALUES = 20
MAX_ENUM_LENGTH = 100
COLUMN_QUERYABLES = ("id", "collection", "geometry", "datetime", "start_datetime", "end_datetime")


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


class _Observed:
    """Types and (while few and short) string values of one property."""

    def __init__(self, types: Iterable[str] = (), values: Iterable[Any] | None = ()) -> None:
        self.types = set(types)
        self.values: set[Any] | None = None if values is None else set(values)

    def add(self, value: Any) -> None:
        self.types.add(_json_type(value))
        if self.values is None or value is None:
            return
        if not isinstance(value, str) or len(value) > MAX_ENUM_LENGTH:
            self.values = None  # only short strings make an enum
            return
        self.values.add(value)
        if len(self.values) > MAX_ENUM_VALUES:
            self.values = None

    def merge(self, other: _Observed) -> None:
        self.types |= other.types
        if self.values is None or other.values is None:
            self.values = None
        else:
            self.values |= other.values
            if len(self.values) > MAX_ENUM_VALUES:
                self.values = None


def observe(rows: Iterable[dict[str, Any]]) -> dict[tuple[str, str], _Observed]:
    observed: dict[tuple[str, str], _Observed] = {}
    for row in rows:
        for name, value in row["properties"].items():
            key = (row["collection"], name)
            if key not in observed:
                observed[key] = _Observed()
            observed[key].add(value)
    return observed


async def record_properties(conn: AsyncConnection, rows: Iterable[dict[str, Any]]) -> None:
    """Merge what `rows` show into the stored queryables (types only grow; enums may close)."""
    observed = observe(rows)
    if not observed:
        return
    collections = sorted({collection for collection, _ in observed})
    stored = await conn.execute(select(queryables).where(queryables.c.collection.in_(collections)))
    for row in stored:
        key = (row.collection, row.name)
        if key in observed:
            previous = _Observed(row.json_types, row.enum_values)
            previous.merge(observed[key])
            observed[key] = previous
    values = [
        {
            "collection": collection,
            "name": name,
            "json_types": sorted(seen.types),
            "enum_values": None if seen.values is None else sorted(seen.values),
        }
        for (collection, name), seen in sorted(observed.items())
    ]
    statement = pg_insert(queryables).values(values)
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=[queryables.c.collection, queryables.c.name],
            set_={
                "json_types": statement.excluded.json_types,
                "enum_values": statement.excluded.enum_values,
            },
        )
    )


async def property_names(conn: AsyncConnection, collections: Iterable[str] = ()) -> set[str]:
    """Every property name known in these collections (all collections when empty)."""
    statement = select(queryables.c.name).distinct()
    wanted = list(collections)
    if wanted:
        statement = statement.where(queryables.c.collection.in_(wanted))
    return {row.name for row in await conn.execute(statement)} | set(COLUMN_QUERYABLES)


async def list_queryables(
    conn: AsyncConnection, collection: str | None = None
) -> dict[str, tuple[set[str], set[Any] | None]]:
    """name -> (JSON types, enum values or None), merged over the collection(s)."""
    statement = select(queryables)
    if collection is not None:
        statement = statement.where(queryables.c.collection == collection)
    merged: dict[str, _Observed] = {}
    for row in await conn.execute(statement.order_by(queryables.c.name)):
        seen = _Observed(row.json_types, row.enum_values)
        if row.name in merged:
            merged[row.name].merge(seen)
        else:
            merged[row.name] = seen
    return {name: (seen.types, seen.values) for name, seen in merged.items()}
