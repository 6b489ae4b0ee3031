"""A parsed CQL2 filter (CQL2-JSON) to one SQLAlchemy condition over `items`.

Every value in the filter, property names included, reaches SQL as a bound parameter; the
only SQL text comes from this package and the typed functions of migration 0005. Logic is
SQL's three-valued logic: a comparison that cannot be decided (missing property, JSON
null, a value of another type) is unknown, so neither it nor its negation matches.
https://docs.ogc.org/is/21-065r2/21-065r2.html
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Set as AbstractSet
from typing import Any

from sqlalchemy import ColumnElement, and_, false, not_, or_, true

from catalogue.errors import InvalidInputError
from catalogue.filters import arrays, comparisons, spatial
from catalogue.filters.operands import ITEM_FIELDS, Fields, Kind, Operand, typed
from catalogue.filters.parse import show
from catalogue.filters.temporal import RELATIONS as TEMPORAL_RELATIONS
from catalogue.filters.temporal import Temporal
from catalogue.filters.values import Resolver, arguments

Predicate = ColumnElement[bool]
TEMPORAL = frozenset({*TEMPORAL_RELATIONS, "t_disjoint"})
ARRAYS = frozenset({"a_equals", "a_contains", "a_containedby", "a_overlaps"})


def filter_clause(
    tree: Any, known_properties: AbstractSet[str] | None = None, fields: Fields = ITEM_FIELDS
) -> Predicate:
    """The condition for `tree` (from `catalogue.filters.parse_filter`).

    `known_properties` is the hook for the queryables: names a filter may use besides the
    columns; a filter naming any other property is refused (400). None accepts any name.
    `fields` says what names mean: items by default, collections in collection search.
    """
    return Translator(Resolver(known_properties, fields)).predicate(tree)


class Translator:
    def __init__(self, resolver: Resolver) -> None:
        self.resolver = resolver
        self.temporal = Temporal(resolver)
        self.handlers: dict[str, Callable[[str, dict[str, Any]], Predicate]] = {
            "and": self._logical,
            "or": self._logical,
            "not": self._not,
            "like": self._like,
            "between": self._between,
            "in": self._in,
            "isnull": self._is_null,
            **dict.fromkeys(comparisons.OPERATORS, self._compare),
            **dict.fromkeys(spatial.FUNCTIONS, self._spatial),
            **dict.fromkeys(TEMPORAL, self._temporal),
            **dict.fromkeys(ARRAYS, self._array),
        }

    def predicate(self, node: Any) -> Predicate:
        if isinstance(node, bool):
            return true() if node else false()
        if isinstance(node, dict) and "property" in node:
            return self._boolean(self.resolver.operand(node))
        if not isinstance(node, dict) or not isinstance(node.get("op"), str):
            raise InvalidInputError(f"filter: {show(node)} is not a condition")
        op = node["op"].lower()
        if op not in self.handlers:
            raise InvalidInputError(f"filter: {node['op']!r} is not a condition operator")
        return self.handlers[op](op, node)

    def _operands(self, node: dict[str, Any], count: int) -> list[Operand]:
        return [self.resolver.operand(arg) for arg in arguments(node, count)]

    def _boolean(self, operand: Operand) -> Predicate:
        """A property (or literal) used as a condition must be a boolean."""
        if operand.literal and operand.kind is Kind.BOOLEAN:
            return true() if operand.value else false()
        if operand.kind is not Kind.JSON:
            raise InvalidInputError(f"filter: {operand.describe()} is not a condition")
        return typed(operand, Kind.BOOLEAN)

    def _logical(self, op: str, node: dict[str, Any]) -> Predicate:
        """AND/OR of one or more conditions. CQL2 asks for two, but one is what a UI sends
        for a single condition (STAC Browser's "additional filters"), and pgstac takes it:
        it means that condition."""
        args = node.get("args")
        if not isinstance(args, list) or not args:
            raise InvalidInputError(f"filter: {op} takes one or more conditions: {show(node)}")
        parts = [self.predicate(arg) for arg in args]
        return and_(*parts) if op == "and" else or_(*parts)

    def _not(self, op: str, node: dict[str, Any]) -> Predicate:
        (arg,) = arguments(node, 1)
        return not_(self.predicate(arg))

    def _compare(self, op: str, node: dict[str, Any]) -> Predicate:
        return comparisons.compare(op, *self._operands(node, 2))

    def _like(self, op: str, node: dict[str, Any]) -> Predicate:
        return comparisons.like(*self._operands(node, 2))

    def _between(self, op: str, node: dict[str, Any]) -> Predicate:
        args = node.get("args")
        if isinstance(args, list) and len(args) == 2 and isinstance(args[1], list):
            node = {"op": op, "args": [args[0], *args[1]]}  # pre-1.0 form: [value, [low, high]]
        return comparisons.between(*self._operands(node, 3))

    def _in(self, op: str, node: dict[str, Any]) -> Predicate:
        value, elements = arguments(node, 2)
        if not isinstance(elements, list):
            raise InvalidInputError(f"filter: in needs a list of values: {show(node)}")
        operands = [self.resolver.operand(element) for element in elements]
        return comparisons.in_list(self.resolver.operand(value), operands)

    def _is_null(self, op: str, node: dict[str, Any]) -> Predicate:
        return comparisons.is_null(*self._operands(node, 1))

    def _spatial(self, op: str, node: dict[str, Any]) -> Predicate:
        return spatial.relate(op, *self._operands(node, 2))

    def _temporal(self, op: str, node: dict[str, Any]) -> Predicate:
        return self.temporal.relate(op, *self._operands(node, 2))

    def _array(self, op: str, node: dict[str, Any]) -> Predicate:
        return arrays.relate(op, *self._operands(node, 2))
