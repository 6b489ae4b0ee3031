"""Basic CQL2 and advanced comparisons: = <> < <= > >=, LIKE, BETWEEN, IN, IS NULL.

Both sides are brought to one type first (see `catalogue.filters.operands`): the known type
of a column, literal or function wins, and a property is read as that type. Two properties
compared with each other are compared as numbers, strings or booleans, whichever they both
are (`coalesce` of the three typed comparisons: at most one is not NULL). Known types that
differ (`id = 5`) are a 400, except a string literal against a timestamp, which is read as
one. Strings order by code point (`COLLATE "C"`), whatever the database's locale.
`=` between a scalar cube property and a literal is written as containment of the cube
facts, which their GIN index answers (`catalogue.cube_properties`).
https://docs.ogc.org/is/21-065r2/21-065r2.html#basic-cql2
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import ARRAY, Boolean, ColumnElement, any_, cast, false, func, literal, null, or_
from sqlalchemy import and_ as sql_and
from sqlalchemy import true as sql_true

from catalogue import cube_properties
from catalogue.errors import InvalidInputError
from catalogue.filters.operands import SQL_TYPES, Kind, Operand, literal_value, typed

Predicate = ColumnElement[bool]

OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "=": operator.eq,
    "<>": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
ORDERING = frozenset({"<", "<=", ">", ">="})
COMPARABLE = (Kind.NUMBER, Kind.STRING, Kind.BOOLEAN, Kind.TIMESTAMP)
JSON_KINDS = (Kind.NUMBER, Kind.STRING, Kind.BOOLEAN)  # the JSON scalar types


def unknown() -> Predicate:
    """SQL NULL as a condition: a comparison with a null literal is never true."""
    return cast(null(), Boolean())


def common_kind(op: str, a: Operand, b: Operand) -> Kind | None:
    """The type both sides are compared as; None when both are property values."""
    if a.kind is Kind.JSON and b.kind is Kind.JSON:
        return None
    if a.kind is Kind.JSON or b.kind is Kind.JSON:
        kind = b.kind if a.kind is Kind.JSON else a.kind
    elif a.kind is b.kind:
        kind = a.kind
    elif {a.kind, b.kind} == {Kind.STRING, Kind.TIMESTAMP} and (a.literal or b.literal):
        kind = Kind.TIMESTAMP
    else:
        raise InvalidInputError(f"filter: cannot compare {a.describe()} with {b.describe()}")
    if kind not in COMPARABLE:
        raise InvalidInputError(
            f"filter: {op} does not apply to {kind} values ({a.describe()}); use the "
            "s_*, t_* or a_* functions"
        )
    return kind


def _apply(op: str, left: Any, right: Any, kind: Kind) -> Predicate:
    if kind is Kind.STRING and op in ORDERING:
        left, right = left.collate("C"), right.collate("C")
    return OPERATORS[op](left, right)


def _facts_equal(a: Operand, b: Operand) -> Predicate | None:
    """`a = b` as `facts @> {name: b}` when `a` is a scalar cube property and `b` a literal
    of its type (the same result: JSONB equality of a string or a number)."""
    name = cube_properties.facts_key(a.sql) if a.kind is Kind.JSON else None
    if name is None or not b.literal:
        return None
    wanted = Kind.NUMBER if cube_properties.SCHEMAS[name]["type"] == "number" else Kind.STRING
    if name in cube_properties.ARRAY_NAMES or b.kind is not wanted:
        return None
    return cube_properties.contains(name, b.node)


def compare(op: str, a: Operand, b: Operand) -> Predicate:
    if Kind.NULL in (a.kind, b.kind):
        return unknown()
    if op == "=":
        for left, right in ((a, b), (b, a)):
            indexed = _facts_equal(left, right)
            if indexed is not None:
                return indexed
    kind = common_kind(op, a, b)
    if kind is None:
        typed_comparisons = [_apply(op, typed(a, k), typed(b, k), k) for k in JSON_KINDS]
        return func.coalesce(*typed_comparisons, type_=Boolean())
    return _apply(op, typed(a, kind), typed(b, kind), kind)


def like(a: Operand, pattern: Operand) -> Predicate:
    """Case- and accent-sensitive unless CASEI/ACCENTI wrap it; `%`, `_`, `\\` escapes."""
    if Kind.NULL in (a.kind, pattern.kind):
        return unknown()
    return typed(a, Kind.STRING).like(typed(pattern, Kind.STRING))


def between(a: Operand, low: Operand, high: Operand) -> Predicate:
    return sql_and(compare(">=", a, low), compare("<=", a, high))


def is_null(a: Operand) -> Predicate:
    """Missing and JSON null are both null; columns never are."""
    if a.literal:
        return sql_true() if a.kind is Kind.NULL else false()
    if a.kind is Kind.JSON:
        return func.coalesce(func.jsonb_typeof(a.sql), "null") == "null"
    return a.sql.is_(None)


def in_list(a: Operand, elements: Sequence[Operand]) -> Predicate:
    """`a IN (...)`: literals become one array parameter per type (`= ANY(:values)`)."""
    if not elements:
        raise InvalidInputError("filter: IN needs at least one value")
    if not all(element.literal for element in elements):
        return or_(*(compare("=", a, element) for element in elements))
    values = [element for element in elements if element.kind is not Kind.NULL]
    if a.kind is not Kind.JSON:
        kind = common_kind("in", a, values[0]) if values else None
        if kind is None:
            return unknown()
        return _any(typed(a, kind), [literal_value(value, kind) for value in values], kind)
    by_kind = {kind: [v.value for v in values if v.kind is kind] for kind in JSON_KINDS}
    extra = [v for v in values if v.kind not in JSON_KINDS]
    if extra:
        raise InvalidInputError(f"filter: IN compares with {extra[0].describe()}")
    tests = [_any(typed(a, kind), found, kind) for kind, found in by_kind.items() if found]
    return func.coalesce(*tests, type_=Boolean()) if tests else unknown()


def _any(left: Any, values: list[Any], kind: Kind) -> Predicate:
    return left == any_(literal(values, ARRAY(SQL_TYPES[kind])))
