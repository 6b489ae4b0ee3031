"""Array functions A_EQUALS, A_CONTAINS, A_CONTAINEDBY, A_OVERLAPS on JSONB arrays.

Arrays are compared as sets of JSON values (order and repetition do not count), as the
cql2 library's own evaluator does: A_EQUALS is containment both ways. A property that does
not hold an array (or is missing) makes the function unknown. A scalar literal stands for
the one-element array.

On the cube properties (`catalogue.cube_properties`) with a literal array, A_CONTAINS,
A_EQUALS and A_OVERLAPS are written as containment of the item's cube facts, which the GIN
index of migration 0010 answers (same results: the facts hold those names as arrays).
https://docs.ogc.org/is/21-065r2/21-065r2.html#array-functions
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Boolean, ColumnElement, and_, case, func, literal, null, or_, select
from sqlalchemy.dialects.postgresql import JSONB

from catalogue import cube_properties
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


def _indexed(op: str, a: Operand, b: Operand) -> ColumnElement[bool] | None:
    """`op` as containment of the cube facts, when `a` is a cube array and `b` a literal
    (either way round for the symmetric functions); None otherwise."""
    name = cube_properties.facts_key(a.sql) if a.kind is Kind.JSON else None
    arrays = cube_properties.ARRAY_NAMES
    if name is None or name not in arrays or not b.literal or b.kind not in (Kind.ARRAY, *SCALARS):
        if op in ("a_equals", "a_overlaps") and a.literal and b.kind is Kind.JSON:
            return _indexed(op, b, a)
        return None
    elements = b.node if b.kind is Kind.ARRAY else [b.node]
    if op == "a_contains":
        return cube_properties.contains(name, elements)
    if op == "a_equals":
        return and_(cube_properties.contains(name, elements), _contains(array_sql(op, b), a.sql))
    if op == "a_overlaps" and elements:
        return or_(*(cube_properties.contains(name, [element]) for element in elements))
    return None


def relate(op: str, a: Operand, b: Operand) -> ColumnElement[bool]:
    indexed = _indexed(op, a, b)
    if indexed is not None:
        return indexed
    left, right = array_sql(op, a), array_sql(op, b)
    if op == "a_equals":
        return and_(_contains(left, right), _contains(right, left))
    if op == "a_contains":
        return _contains(left, right)
    if op == "a_containedby":
        return _contains(right, left)
    return _overlaps(left, right)
