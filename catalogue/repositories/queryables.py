"""Queryables derived from the data: which properties items carry, their types, low-cardinality
values. Written with every item write, read by `/queryables`, filters and sortby."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from catalogue import cube_properties
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


# The Python types JSON parsers produce, by JSON type (others go through `_json_type`).
_TYPE_NAMES = {
    type(None): "null", bool: "boolean", int: "number", float: "number", str: "string",
    list: "array", dict: "object",
}  # fmt: skip


class _Observed:
    """Types and (while few and short) string values of one property."""

    def __init__(self, types: Iterable[str] = (), values: Iterable[Any] | None = ()) -> None:
        self.types = set(types)
        self.values: set[Any] | None = None if values is None else set(values)

    @classmethod
    def of(cls, values: list[Any]) -> _Observed:
        """What a list of values shows: all its types; its distinct strings while they make
        an enum (null values do not count, any other non-string closes it)."""
        seen = cls()
        kinds = set(map(type, values))
        for kind in kinds:
            name = _TYPE_NAMES.get(kind)
            if name is None:  # a subclass (another JSON parser's): judge one of its values
                name = _json_type(next(value for value in values if type(value) is kind))
            seen.types.add(name)
        if not kinds <= {str, type(None)}:
            seen.values = None
            return seen
        distinct = set(values)
        distinct.discard(None)
        too_long = any(len(value) > MAX_ENUM_LENGTH for value in distinct)
        seen.values = None if too_long or len(distinct) > MAX_ENUM_VALUES else distinct
        return seen

    def merge(self, other: _Observed) -> None:
        self.types |= other.types
        if self.values is None or other.values is None:
            self.values = None
        else:
            self.values |= other.values
            if len(self.values) > MAX_ENUM_VALUES:
                self.values = None

    def covers(self, other: _Observed) -> bool:
        """Whether merging `other` into this would change nothing."""
        if not other.types <= self.types:
            return False
        if self.values is None:
            return True
        return other.values is not None and other.values <= self.values


def observe(rows: Iterable[dict[str, Any]]) -> dict[tuple[str, str], _Observed]:
    """(collection, property) -> what `rows` show of it. This runs on every write, so the
    values are gathered column-wise: items of a collection mostly carry the same property
    names in the same order, and such a group is transposed at once (zip), not value by
    value; each property is then judged once over all its values."""
    groups: dict[tuple[str, tuple[str, ...]], list[Iterable[Any]]] = {}
    for row in rows:
        properties = row["properties"]
        key = (row["collection"], tuple(properties))
        group = groups.get(key)
        if group is None:
            groups[key] = [properties.values()]
        else:
            group.append(properties.values())
    gathered: dict[tuple[str, str], list[Any]] = {}
    for (collection, names), group in groups.items():
        for name, column in zip(names, zip(*group, strict=True), strict=True):
            bucket = gathered.get((collection, name))
            if bucket is None:
                gathered[(collection, name)] = list(column)
            else:
                bucket.extend(column)
    return {key: _Observed.of(values) for key, values in gathered.items()}


# The merge of a stored row with a newly observed one, done by PostgreSQL under the row's
# lock (ON CONFLICT DO UPDATE sees the latest committed row): concurrent writers of the
# same property (two harvest writers, an API write) cannot lose each other's types or values.
_MERGED_TYPES = text(
    "(SELECT jsonb_agg(DISTINCT kind ORDER BY kind) "
    "FROM jsonb_array_elements(queryables.json_types || excluded.json_types) AS kind)"
)
_MERGED_VALUES = text(
    # a closed enum is stored as JSON null (what the JSONB type makes of None)
    "CASE WHEN jsonb_typeof(queryables.enum_values) IS DISTINCT FROM 'array' "
    "OR jsonb_typeof(excluded.enum_values) IS DISTINCT FROM 'array' THEN 'null'::jsonb "
    "ELSE (SELECT CASE WHEN count(*) > :max_values THEN 'null'::jsonb "
    "ELSE jsonb_agg(value ORDER BY value) END "
    "FROM (SELECT DISTINCT value FROM jsonb_array_elements("
    "queryables.enum_values || excluded.enum_values) AS value) AS distinct_values) END"
).bindparams(max_values=MAX_ENUM_VALUES)


async def record_properties(conn: AsyncConnection, rows: Iterable[dict[str, Any]]) -> None:
    """Merge what `rows` show into the stored queryables (types only grow; enums may close).

    Only properties that show something new are written, so the usual bulk write (a harvest
    whose items look like the ones before) reads a few rows and writes and locks none:
    concurrent writers do not queue behind each other here. The rows that are written are
    merged in SQL, in key order (no deadlock between two writers).
    """
    observed = observe(rows)
    if not observed:
        return
    collections = sorted({collection for collection, _ in observed})
    stored = await conn.execute(select(queryables).where(queryables.c.collection.in_(collections)))
    for row in stored:
        key = (row.collection, row.name)
        if key in observed and _Observed(row.json_types, row.enum_values).covers(observed[key]):
            del observed[key]
    if not observed:
        return
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
            set_={"json_types": _MERGED_TYPES, "enum_values": _MERGED_VALUES},
        )
    )


async def property_names(conn: AsyncConnection, collections: Iterable[str] = ()) -> set[str]:
    """Every property name known in these collections (all collections when empty), and
    the cube properties, which are always accepted (they are unknown on other items)."""
    statement = select(queryables.c.name).distinct()
    wanted = list(collections)
    if wanted:
        statement = statement.where(queryables.c.collection.in_(wanted))
    names = {row.name for row in await conn.execute(statement)}
    return names | set(COLUMN_QUERYABLES) | cube_properties.NAMES


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
