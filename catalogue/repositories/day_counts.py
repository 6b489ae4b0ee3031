"""The SQL of counting by days: `item_day_counts` (migration 0011) for whole UTC days, `items`
for the partial days at a datetime interval's ends.

A search constrained only by collections and datetime matches, on every whole day inside
its interval, every item whose `datetime` falls on that day (an item's range holds its
`datetime`, unless the day's `odd` count says otherwise), so those days are sums of the
table's rows. What lies outside the whole days (the partial first and last days, and items
of other days whose ranges reach into the interval) is counted from `items` with the
search's own conditions plus `datetime < first whole day` or `datetime >= end of the whole
days`: the search's redundant bound on `datetime` (`datetime_bound`) closes those windows
on the other side, so each is a short range of the (collection, datetime) index.
`catalogue.search.day_counts` decides when this applies and puts the pieces together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import (
    ARRAY,
    Date,
    DateTime,
    Integer,
    String,
    any_,
    bindparam,
    cast,
    func,
    literal,
    select,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from catalogue.models import CollectionRow, ItemDayCountRow, ItemRow

counts = ItemDayCountRow.__table__
items = ItemRow.__table__
collections = CollectionRow.__table__

FIRST_DAY = bindparam("day_first", type_=Date)
END_DAY = bindparam("day_end", type_=Date)  # exclusive
FIRST_MOMENT = bindparam("day_first_at", type_=DateTime(timezone=True))
END_MOMENT = bindparam("day_end_at", type_=DateTime(timezone=True))
NAMED = bindparam("day_collections", type_=ARRAY(String))


@dataclass(frozen=True)
class Days:
    """The whole UTC days [first, end) of a search (None: unbounded on that side), and its
    collections (empty: all)."""

    collections: tuple[str, ...]
    first: date | None
    end: date | None

    def parameters(self) -> dict[str, Any]:
        return {
            "day_collections": list(self.collections),
            "day_first": self.first,
            "day_end": self.end,
        }


def _day_rows(days: Days) -> list[Any]:
    """The table's rows of the days' collections and days."""
    clauses: list[Any] = []
    if days.collections:
        clauses.append(counts.c.collection == any_(NAMED))
    if days.first is not None:
        clauses.append(counts.c.day >= FIRST_DAY)
    if days.end is not None:
        clauses.append(counts.c.day < END_DAY)
    return clauses


@dataclass(frozen=True)
class DayTotals:
    """The whole days' items, how many of them are odd, and whether the collections' spans
    (`max_datetime_minus_start`, `max_end_minus_datetime`) are known (else the windows at
    the ends have no bound and are not counted this way)."""

    n: int
    odd: int
    spans_known: bool


async def day_totals(conn: AsyncConnection, days: Days) -> DayTotals:
    """One statement: the sums over the whole days, and whether the spans are known."""
    known = select(func.coalesce(func.bool_and(
        collections.c.max_datetime_minus_start.is_not(None)
        & collections.c.max_end_minus_datetime.is_not(None)
    ), True))  # fmt: skip
    if days.collections:
        known = known.where(collections.c.id == any_(NAMED))
    statement = select(
        func.coalesce(func.sum(counts.c.n), 0),
        func.coalesce(func.sum(counts.c.odd), 0),
        known.scalar_subquery(),
    ).where(*_day_rows(days))
    n, odd, spans_known = (await conn.execute(statement, days.parameters())).one()
    return DayTotals(int(n), int(odd), bool(spans_known))


def before_days() -> list[Any]:
    """The window before the first whole day."""
    return [items.c.datetime < FIRST_MOMENT]


def after_days() -> list[Any]:
    """The window from the end of the whole days on."""
    return [items.c.datetime >= END_MOMENT]


Window = Sequence[Any]  # the clauses that, with the search's, select a window's items


def windows_count(search: Sequence[Any], windows: Sequence[Window]) -> Any:
    """`count(*)` of the items the search's conditions `search` match in the `windows`:
    one scalar subquery per window, summed in one statement."""
    parts = [
        select(func.count()).select_from(items).where(*search, *window).scalar_subquery()
        for window in windows
    ]
    total: Any = literal(0, Integer)
    for part in parts:
        total = total + part
    return select(total)


def day_start(column: Any) -> Any:
    """A day's first moment in UTC as a timestamp without time zone: what the aggregation's
    `date_trunc(unit, timezone('UTC', datetime))` keys are made of."""
    return cast(column, DateTime(timezone=False))


def day_key(unit: Any) -> Any:
    """The `unit` (year, month ... day) bucket a table row falls in."""
    return func.date_trunc(unit, day_start(counts.c.day))


def item_day() -> Any:
    """The UTC day of an item's `datetime`, as the triggers compute it."""
    return cast(func.timezone(literal("UTC", String), items.c.datetime), Date)


def per_key(key: Any, days: Days) -> Any:
    """Sums of the whole days' rows per `key` (of `counts`), rows of 0 left out."""
    total = func.sum(counts.c.n)
    return (
        select(key.label("k"), total.label("n"))
        .where(*_day_rows(days))
        .group_by(key)
        .having(total > 0)
    )


def edge_day(days: Days, last: bool) -> Any:
    """The first (or `last`) whole day holding an item, as a scalar subquery."""
    picked = func.max(counts.c.day) if last else func.min(counts.c.day)
    return select(picked).where(*_day_rows(days), counts.c.n > 0).scalar_subquery()


def _utc(day: Any) -> Any:
    """The first moment of `day` (a date) in UTC, whatever the session's time zone."""
    return func.timezone(literal("UTC", String), day_start(day))


def on_day(days: Days, day: Any) -> list[Any]:
    """The items of `day` in the days' collections (every one matches the search)."""
    clauses = [items.c.datetime >= _utc(day), items.c.datetime < _utc(day + 1)]
    if days.collections:
        clauses.append(items.c.collection == any_(NAMED))
    return clauses


def moment_in_window(search: Sequence[Any], window: Window, last: bool) -> Any:
    """The earliest (or `last`) `datetime` of the window's matches, a scalar subquery."""
    picked = func.max(items.c.datetime) if last else func.min(items.c.datetime)
    return select(picked).where(*search, *window).scalar_subquery()


def moment_in_days(days: Days, last: bool) -> Any:
    """The earliest (or `last`) `datetime` on the whole days: that of the first (last) day
    holding items, read from that one day's items, a scalar subquery."""
    picked = func.max(items.c.datetime) if last else func.min(items.c.datetime)
    return select(picked).where(*on_day(days, edge_day(days, last))).scalar_subquery()


def window_keys(search: Sequence[Any], window: Window, key: Any) -> Any:
    """`key` (an expression of `items`) and its count over the window's matches."""
    keyed = select(key.label("k")).select_from(items).where(*search, *window).subquery("w")
    return select(keyed.c.k, func.count().label("n")).group_by(keyed.c.k)
