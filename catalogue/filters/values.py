"""Any CQL2 value expression to an `Operand`: literals, properties, CASEI/ACCENTI, arithmetic.

CASEI is `lower()`, ACCENTI is PostgreSQL's `unaccent` (through the immutable
`cubestac_unaccent` of migration 0005), applied in SQL to both sides so that they fold the
same way. Arithmetic is on numbers (`numeric`); a division or modulo by zero is NULL
(unknown), not an error.
https://docs.ogc.org/is/21-065r2/21-065r2.html#case-insensitive-comparison
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Numeric, Text, func

from catalogue.errors import InvalidInputError
from catalogue.filters.operands import (
    GEOJSON_TYPES,
    ITEM_FIELDS,
    Fields,
    Kind,
    Operand,
    geometry_literal,
    literal_operand,
    property_operand,
    temporal_literal,
    typed,
)
from catalogue.filters.parse import show

Sql = ColumnElement[Any]


def _divide(op: str) -> Callable[[Sql, Sql], Sql]:
    return lambda a, b: a.op(op, return_type=Numeric())(func.nullif(b, 0))


ARITHMETIC: dict[str, Callable[[Sql, Sql], Sql]] = {
    "+": lambda a, b: a.op("+", return_type=Numeric())(b),
    "-": lambda a, b: a.op("-", return_type=Numeric())(b),
    "*": lambda a, b: a.op("*", return_type=Numeric())(b),
    "/": _divide("/"),
    "%": _divide("%"),
    "div": lambda a, b: func.div(a, func.nullif(b, 0), type_=Numeric()),
    "^": lambda a, b: func.power(a, b, type_=Numeric()),
}
TEXT_FOLDS: dict[str, Callable[[Sql], Sql]] = {
    "casei": lambda value: func.lower(value, type_=Text()),
    "accenti": lambda value: func.cubestac_unaccent(value, type_=Text()),
}


def arguments(node: dict[str, Any], count: int) -> list[Any]:
    """The `args` of an operator node, which must be `count` of them."""
    args = node.get("args")
    if not isinstance(args, list) or len(args) != count:
        raise InvalidInputError(f"filter: {node.get('op')} takes {count} argument(s): {show(node)}")
    return args


@dataclass(frozen=True)
class Resolver:
    """Turns value nodes into operands; `known_properties` (the queryables) is the set of
    property names a filter may use, or None to accept any name; `fields` maps names to SQL
    (item columns and properties by default)."""

    known_properties: AbstractSet[str] | None = None
    fields: Fields = ITEM_FIELDS

    def operand(self, node: Any) -> Operand:
        if not isinstance(node, dict):
            return literal_operand(node)
        if "property" in node:
            return property_operand(node, self.known_properties, self.fields)
        if "timestamp" in node or "date" in node:
            return temporal_literal(node)
        if "interval" in node:
            return Operand(Kind.INTERVAL, node, value=node["interval"], literal=True)
        if "bbox" in node or node.get("type") in GEOJSON_TYPES:
            return geometry_literal(node)
        if isinstance(node.get("op"), str):
            return self.function(node)
        raise InvalidInputError(f"filter: {show(node)} is not a value")

    def function(self, node: dict[str, Any]) -> Operand:
        name = node["op"].lower()
        if name in TEXT_FOLDS:
            (arg,) = arguments(node, 1)
            folded = TEXT_FOLDS[name](typed(self.operand(arg), Kind.STRING))
            return Operand(Kind.STRING, node, sql=folded)
        if name in ARITHMETIC:
            left, right = (typed(self.operand(arg), Kind.NUMBER) for arg in arguments(node, 2))
            return Operand(Kind.NUMBER, node, sql=ARITHMETIC[name](left, right))
        raise InvalidInputError(f"filter: unsupported function or operator {node['op']!r}")
