"""Temporal functions T_AFTER ... T_STARTS on instants and intervals (Allen's relations).

Every operand is an interval [start, end]: an instant is [t, t]; a DATE literal is the whole
day [d, d + 1 day - 1 µs]; an open end `..` is PostgreSQL's -infinity/infinity. The
property `datetime` stands for the item's temporal extent [start_datetime, end_datetime]
(an instant item has start = end), `start_datetime`/`end_datetime` for those instants, and
any other property for the RFC 3339 instant it holds (NULL, so unknown, when it holds none).
The definitions are those of the CQL2 standard, Table "Temporal functions":
https://docs.ogc.org/is/21-065r2/21-065r2.html#temporal-functions
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, DateTime, Text, and_, cast, literal, or_

from catalogue.errors import InvalidInputError
from catalogue.filters.comparisons import OPERATORS
from catalogue.filters.operands import (
    Kind,
    Operand,
    day_end,
    parse_moment,
    typed,
)
from catalogue.filters.parse import show
from catalogue.filters.values import Resolver

Bound = ColumnElement[Any]
# (bound of a, comparison (an `OPERATORS` key), bound of b), AND-ed; "s"/"e": start, end.
RELATIONS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "t_after": (("s", ">", "e"),),
    "t_before": (("e", "<", "s"),),
    "t_contains": (("s", "<", "s"), ("e", ">", "e")),
    "t_during": (("s", ">", "s"), ("e", "<", "e")),
    "t_equals": (("s", "=", "s"), ("e", "=", "e")),
    "t_finishedby": (("s", "<", "s"), ("e", "=", "e")),
    "t_finishes": (("s", ">", "s"), ("e", "=", "e")),
    "t_intersects": (("s", "<=", "e"), ("e", ">=", "s")),
    "t_meets": (("e", "=", "s"),),
    "t_metby": (("s", "=", "e"),),
    "t_overlappedby": (("s", ">", "s"), ("s", "<", "e"), ("e", ">", "e")),
    "t_overlaps": (("s", "<", "s"), ("e", ">", "s"), ("e", "<", "e")),
    "t_startedby": (("s", "=", "s"), ("e", ">", "e")),
    "t_starts": (("s", "=", "s"), ("e", "<", "e")),
}
DISJOINT = (("s", ">", "e"), ("e", "<", "s"))  # OR-ed: neither overlaps the other
OPEN = ".."


def _moment(value: datetime) -> Bound:
    return literal(value, DateTime(timezone=True))


def _infinity(start: bool) -> Bound:
    return cast(literal("-infinity" if start else "infinity", Text()), DateTime(timezone=True))


class Temporal:
    """Builds the bounds of temporal operands and the relations between them."""

    def __init__(self, resolver: Resolver) -> None:
        self.resolver = resolver

    def relate(self, op: str, a: Operand, b: Operand) -> ColumnElement[bool]:
        bounds = {"a": self.bounds(op, a), "b": self.bounds(op, b)}
        pick = {"s": 0, "e": 1}
        terms = [
            OPERATORS[compare](bounds["a"][pick[left]], bounds["b"][pick[right]])
            for left, compare, right in (DISJOINT if op == "t_disjoint" else RELATIONS[op])
        ]
        return or_(*terms) if op == "t_disjoint" else and_(*terms)

    def bounds(self, op: str, operand: Operand) -> tuple[Bound, Bound]:
        if operand.kind is Kind.INTERVAL:
            return self.interval(operand)
        if operand.literal and operand.kind in (Kind.TIMESTAMP, Kind.STRING):
            moment, day = (
                (operand.value, operand.day)
                if operand.kind is Kind.TIMESTAMP
                else parse_moment(operand.value, show(operand.node))
            )
            return _moment(moment), _moment(day_end(moment) if day else moment)
        if operand.column == "datetime" and self.resolver.fields.interval is not None:
            return self.resolver.fields.interval
        if operand.kind in (Kind.TIMESTAMP, Kind.JSON) and not operand.literal:
            instant = typed(operand, Kind.TIMESTAMP)
            return instant, instant
        raise InvalidInputError(
            f"filter: {op} needs instants or intervals, not {operand.describe()}"
        )

    def interval(self, operand: Operand) -> tuple[Bound, Bound]:
        """INTERVAL(start, end): each end a date, a timestamp, `..` or a property."""
        ends = operand.value
        if not isinstance(ends, list) or len(ends) != 2:
            raise InvalidInputError(f"filter: {show(operand.node)} needs a start and an end")
        (start, first), (end, last) = self._end(ends[0], True), self._end(ends[1], False)
        if first is not None and last is not None and first > last:
            raise InvalidInputError(f"filter: interval {show(operand.node)} starts after it ends")
        return start, end

    def _end(self, value: Any, start: bool) -> tuple[Bound, datetime | None]:
        """The SQL bound, and its value when it is a literal moment."""
        if value == OPEN:
            return _infinity(start), None
        if isinstance(value, str):
            moment = parse_moment(value, "interval")[0]
            return _moment(moment), moment
        operand = self.resolver.operand(value)
        if operand.literal and operand.kind is Kind.TIMESTAMP:
            return _moment(operand.value), operand.value
        return typed(operand, Kind.TIMESTAMP), None
