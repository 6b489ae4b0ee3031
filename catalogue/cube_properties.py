"""Cube properties: flat queryables derived from an item's datacube fields, to find cubes.

The datacube extension nests what a user searches for (`cube:variables` is an object keyed
by variable name, `cube:dimensions` one keyed by dimension name), which CQL2 cannot reach.
These names are read from it in SQL, by `cubestac_cube_facts(properties)` (migration 0010),
so served items stay exactly as published:

| queryable | JSON type | what |
| --- | --- | --- |
| `cube:variable_names` | array of strings | the keys of `cube:variables` |
| `cube:variable_units` | array of strings | the variables' `unit`s |
| `cube:dimension_names` | array of strings | the keys of `cube:dimensions` |
| `cube:time_step` | string | `step` of the temporal dimension (ISO 8601 duration, `P1Y`) |
| `cube:resolution` | number | `step` of the spatial `x` dimension, in its CRS's units |

An item with neither `cube:variables` nor `cube:dimensions` has none of them (unknown in a
filter, as a missing property is). A GIN index (jsonb_path_ops) on the facts serves the
array functions (`arrays.relate` writes them as containment of the facts) and equality on
the time step and resolution; a partial B-tree serves resolution ranges (see `number`).
https://github.com/stac-extensions/datacube
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Boolean, ColumnElement, Numeric, cast, func, literal
from sqlalchemy.dialects.postgresql import JSONB

from catalogue.models import ItemRow

items = ItemRow.__table__

FACTS: ColumnElement[Any] = func.cubestac_cube_facts(items.c.properties, type_=JSONB)
"""The facts of an item as one JSONB object (NULL for non-cube items): the indexed value."""

_STRINGS = {"type": "array", "items": {"type": "string"}}
SCHEMAS: dict[str, dict[str, Any]] = {
    "cube:variable_names": {
        "title": "Cube variables",
        "description": "Names of the cube's variables (keys of cube:variables)",
        **_STRINGS,
    },
    "cube:variable_units": {
        "title": "Cube variable units",
        "description": "Units of the cube's variables (their cube:variables unit)",
        **_STRINGS,
    },
    "cube:dimension_names": {
        "title": "Cube dimensions",
        "description": "Names of the cube's dimensions (keys of cube:dimensions)",
        **_STRINGS,
    },
    "cube:time_step": {
        "title": "Cube time step",
        "description": "Step of the temporal dimension, an ISO 8601 duration such as P1Y",
        "type": "string",
    },
    "cube:resolution": {
        "title": "Cube resolution",
        "description": "Step of the x dimension, in units of its reference system",
        "type": "number",
    },
}
NAMES = frozenset(SCHEMAS)
ARRAY_NAMES = frozenset(name for name, schema in SCHEMAS.items() if schema["type"] == "array")
RESOLUTION = "cube:resolution"
SOURCE_PROPERTIES = frozenset({"cube:variables", "cube:dimensions"})
"""An item holding either of these is a cube item, and has the properties above."""

VALUES: dict[str, ColumnElement[Any]] = {
    name: FACTS.op("->", return_type=JSONB)(name) for name in SCHEMAS
}
"""name -> its JSONB value (built once: the array functions recognise them by identity)."""


def facts_key(sql: Any) -> str | None:
    """The name of the cube property whose value `sql` is, if it is one."""
    for name, value in VALUES.items():
        if sql is value:
            return name
    return None


def number(sql: Any) -> ColumnElement[Any] | None:
    """`cube:resolution` read as a number, if `sql` is its value: a plain cast, exact since
    the facts hold only a number there, and strict in the facts, so that a comparison on it
    implies "a cube item" and the partial index `ix_items_cube_resolution` answers it."""
    if facts_key(sql) != RESOLUTION:
        return None
    return cast(sql, Numeric())


def contains(name: str, value: Any) -> ColumnElement[bool]:
    """The facts hold `value` (JSON) under `name`: `FACTS @> {name: value}`, which the GIN
    index answers; for arrays, the same as "the property contains every element"."""
    return FACTS.op("@>", return_type=Boolean())(literal({name: value}, JSONB()))
