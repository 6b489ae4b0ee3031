"""Array functions A_EQUALS, A_CONTAINS, A_CONTAINEDBY, A_OVERLAPS on JSONB arrays.

Arrays are compared as sets of JSON values (order and repetition do not count), as the
cql2 library's own evaluator does: A_EQUALS is containment both ways. A property that does
not hold an array (or is missing) makes the function unknown. A scalar literal stands for
the one-element array.
https://docs.ogc.org/is/21-065r2/21-065r2.html#array-functions
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Boolean, ColumnElement, and_, case, func, literal, null, select
from sqlalchemy.dialects.postgresql import JSONB

from catalogue.errors import InvalidInputError
from catalogue.filters.operands import Kind, Operand, items, typed

Sql = ColumnElement[Any]
SCALARS = (Kind.NUMBER, Kind.STRING, Kind.BOOLEAN)


def array_sql(op: str, operand: Operand) -> Sql:
    if operand.kind is Kind.JSON:
        return typed(operand, Kind.ARRAY)
    if operand.literal and operand.kind is Kind.ARRAY:
        return literal(operand.node, JSONB())
    if operand.literal and operand.kind in SCALARS:
        return literal([operand.node], JSONB())
    raise InvalidInputError(f"filter: {op} compares arrays; {operand.describe()} is not one")


def _contains(a: Sql, b: Sql) -> ColumnElement[bool]:
    return a.op("@>", return_type=Boolean())(b)


def _overlaps(a: Sql, b: Sql) -> ColumnElement[bool]:
    """Some element of b is in a; unknown when either is not an array."""
    element = func.jsonb_array_elements(b).table_valued("value").alias("element")
    shared = (
        select(element.c.value)
        .where(_contains(a, func.jsonb_build_array(element.c.value)))
        .correlate(items)
    )
    return case((and_(a.is_not(None), b.is_not(None)), shared.exists()), else_=null())


def relate(op: str, a: Operand, b: Operand) -> ColumnElement[bool]:
    left, right = array_sql(op, a), array_sql(op, b)
    if op == "a_equals":
        return and_(_contains(left, right), _contains(right, left))
    if op == "a_contains":
        return _contains(left, right)
    if op == "a_containedby":
        return _contains(right, left)
    return _overlaps(left, right)
