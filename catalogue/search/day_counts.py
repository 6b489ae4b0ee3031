"""Counting from `item_day_counts` (migration 0011): when it applies, and the counts.

A search constrained only by collections and/or datetime (no ids, bbox, intersects, free
text or filter) is counted without reading its items: the whole UTC days inside its
interval are sums of the table's rows, and only what lies outside them (the partial days at
the interval's ends, and items of other days whose time ranges reach into it) is counted
from `items`, through the (collection, datetime) index, with the search's own conditions
(`catalogue.repositories.day_counts`). The day of an item is the one `datetime_frequency`
buckets it in (its `datetime`, the start of an interval item, in UTC), so the same split
answers `/aggregate`'s `total_count`, `datetime_min`/`datetime_max`, `datetime_frequency`
(intervals of whole days) and `collection_frequency`.

It does not apply (`applies` is False, the caller takes its usual path) when a whole day of
the interval holds an odd item (its `datetime` outside its own range: the day says nothing
about whether it matches), or when a collection's spans are unknown (the windows at the
ends would have no bound).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Integer, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from catalogue.repositories import day_counts as sql
from catalogue.repositories.aggregation import Frequencies, Stats
from catalogue.repositories.search import where_clauses, within_budget
from catalogue.repositories.search_shape import SearchShape
from catalogue.search.query import ItemQuery

# `datetime_frequency` intervals made of whole days (an hour's bucket is not)
DAY_UNITS = frozenset({"year", "quarter", "month", "week", "day"})


def by_days(query: ItemQuery) -> bool:
    """Whether only collections and the datetime interval constrain the search."""
    return (
        not query.ids
        and query.bbox is None
        and query.intersects is None
        and not query.text
        and query.filter is None
    )


def _first_whole_day(moment: datetime) -> date:
    utc = moment.astimezone(UTC)
    return utc.date() if utc.time() == time(0) else utc.date() + timedelta(days=1)


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


@dataclass(frozen=True)
class DaySplit:
    """A search split into its whole days (`days`, None when the interval holds none: then
    the whole interval is one window) and the windows before and after them."""

    days: sql.Days | None
    before: bool = False
    after: bool = False
    collections: tuple[str, ...] = ()

    @classmethod
    def of(cls, query: ItemQuery) -> DaySplit:
        interval, named = query.interval, query.collections
        if interval is None:
            return cls(sql.Days(named, None, None), collections=named)
        first = None if interval.start is None else _first_whole_day(interval.start)
        end = None if interval.end is None else interval.end.astimezone(UTC).date()
        if first is not None and end is not None and first >= end:
            return cls(None, collections=named)
        days = sql.Days(named, first, end)
        return cls(days, first is not None, end is not None, named)

    def windows(self) -> list[sql.Window]:
        """The windows counted from `items`, in time order."""
        if self.days is None:
            return [[]]
        chosen = ((sql.before_days(), self.before), (sql.after_days(), self.after))
        return [window for window, wanted in chosen if wanted]

    def parameters(self) -> dict[str, Any]:
        days = self.days or sql.Days(self.collections, None, None)
        parameters = days.parameters()
        if days.first is not None:
            parameters["day_first_at"] = _midnight(days.first)
        if days.end is not None:
            parameters["day_end_at"] = _midnight(days.end)
        return parameters

    def spans_needed(self) -> sql.Days:
        """The days whose totals are read (none when there are no whole days: only the
        collections' spans are wanted then)."""
        if self.days is not None:
            return self.days
        return sql.Days(self.collections, date(2000, 1, 1), date(2000, 1, 1))


@dataclass(frozen=True)
class Split:
    """A search that counts by days: its split, the search's own conditions (for the
    windows) and every parameter both need."""

    days: DaySplit
    search: list[Any]
    parameters: dict[str, Any]
    whole_days: int  # items on the whole days

    def moment(self, last: bool) -> Any:
        """The earliest (`last`: latest) matching `datetime`, a scalar expression."""
        parts = []
        windows = self.days.windows()
        if self.days.days is None:
            parts = [sql.moment_in_window(self.search, windows[0], last)]
        else:
            inner = sql.moment_in_days(self.days.days, last)
            before = [sql.moment_in_window(self.search, sql.before_days(), last)]
            after = [sql.moment_in_window(self.search, sql.after_days(), last)]
            parts = [
                *(before if self.days.before else []),
                inner,
                *(after if self.days.after else []),
            ]
        ordered = list(reversed(parts)) if last else parts
        return func.coalesce(*ordered) if len(ordered) > 1 else ordered[0]

    def keyed(self, table_key: Any, item_key: Any) -> Any:
        """Per key, the whole days' rows and the windows' items, as one subquery (`k`, `n`)
        to group again (a key may come from both)."""
        parts = [sql.window_keys(self.search, window, item_key) for window in self.days.windows()]
        if self.days.days is not None:
            parts.insert(0, sql.per_key(table_key, self.days.days))
        union = parts[0].union_all(*parts[1:]) if len(parts) > 1 else parts[0]
        return union.subquery("keyed")


async def split(
    conn: AsyncConnection, query: ItemQuery, parameters: dict[str, Any]
) -> Split | None:
    """The search split by days with its whole days' total, or None when counting by days
    does not apply (see the module docstring). `parameters`: the search's own."""
    if not by_days(query):
        return None
    days = DaySplit.of(query)
    totals = await sql.day_totals(conn, days.spans_needed())
    if totals.odd or (days.windows() and not totals.spans_known):
        return None
    search = where_clauses(SearchShape.of(query).counted)
    return Split(days, search, {**parameters, **days.parameters()}, totals.n)


NOT_BY_DAYS = -1


async def count(
    conn: AsyncConnection, query: ItemQuery, parameters: dict[str, Any], budget_ms: int
) -> int | None:
    """The search's count from the days and its windows; `NOT_BY_DAYS` when counting by
    days does not apply, None when it ran over `budget_ms` (all of it under the budget, as
    `within_budget`: `conn` in a transaction of its own)."""

    async def run() -> int:
        found = await split(conn, query, parameters)
        if found is None:
            return NOT_BY_DAYS
        windows = found.days.windows()
        if not windows:
            return found.whole_days
        statement = sql.windows_count(found.search, windows)
        outside = (await conn.execute(statement, found.parameters)).scalar_one()
        return found.whole_days + int(outside)

    return await within_budget(conn, budget_ms, run)


async def stats(conn: AsyncConnection, found: Split) -> Stats:
    """`total_count`, `datetime_min`, `datetime_max`, in one statement."""
    statement = select(
        sql.windows_count(found.search, found.days.windows()).scalar_subquery(),
        found.moment(last=False),
        found.moment(last=True),
    )
    outside, earliest, latest = (await conn.execute(statement, found.parameters)).one()
    return Stats(found.whole_days + int(outside), earliest, latest)


async def frequencies(
    conn: AsyncConnection,
    found: Split,
    table_key: Any,
    item_key: Any,
    parameters: dict[str, Any],
    size: int,
    by_key: bool,
) -> Frequencies:
    """The `size` first buckets (by frequency then key, or by key when `by_key`) and how
    many items have a key, as `catalogue.repositories.aggregation.frequencies` gives them
    (in the same order: sorted by PostgreSQL), from the whole days' rows and the windows'
    items. `parameters`: the aggregation's own (`agg_interval`)."""
    keyed = found.keyed(table_key, item_key)
    frequency = func.sum(keyed.c.n).label("n")
    order = [keyed.c.k] if by_key else [frequency.desc(), keyed.c.k]
    statement = (
        select(keyed.c.k, frequency, func.sum(func.sum(keyed.c.n)).over().label("total"))
        .where(keyed.c.k.is_not(None))
        .group_by(keyed.c.k)
        .order_by(*order)
        .limit(bindparam("agg_size", type_=Integer))
    )
    values = {**found.parameters, **parameters, "agg_size": size}
    rows = (await conn.execute(statement, values)).all()
    total = int(rows[0].total) if rows else 0
    return Frequencies([(row.k, int(row.n)) for row in rows], total)
