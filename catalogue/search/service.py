"""Item search as one call: `ItemSearch.page`, with every cache and policy it needs.

The API builds a `SearchRequest` (a checked `ItemQuery`, the Fields paths the database may
select, and for `/collections/{id}/items` the collection) and makes one call; the page
comes back with its items as the database printed them, its `next`/`prev` tokens and,
when known within the budget, `numberMatched`. What happens in between belongs here:

1. **Names.** A filter or sortby may name any property the catalogue holds (the
   queryables of every collection, whatever collections the search names: where items
   lack it, it matches nothing or sorts as missing), so STAC Browser's sort list and
   stac-api-validator's filters, built from `/queryables`, work in every collection.
   Reading the names is a database round trip, so they are kept for `NAMES_TTL_S`.
   Names are only ever added (ingest records new ones), so a kept set can only lack a
   name, never hold a wrong one: a search refused for an unknown name with a kept set
   reads the names once more and runs again, and a name added a moment ago is accepted
   at once; a name still unknown is refused (`UnknownPropertyError`, which the API
   answers with a 400).
2. **Statements.** Building a SELECT costs more than PostgreSQL spends answering a simple
   search, so each `SearchShape` has its statement built once (`Statements`); a filtered
   one also per filter and names (translating a filter is a large share of a filtered
   search's API time). The SQL itself is `catalogue.repositories.search`'s. Figures:
   bench/results/code_figures.md.
3. **The count.** A page that does not show its own total (a first page with a next one,
   or a later page) is counted after it, in one of two ways. A search constrained only by
   collections and/or datetime is counted from the per-day counts
   (`catalogue.search.day_counts`): exact, and cheap at any size. Any other search asks
   the planner first (`EXPLAIN`, about a millisecond): estimated above
   `count_estimate_max` rows, it is not counted at all (a count of millions of rows could
   not end within the budget, and trying would cost the whole budget); below, it is
   counted exactly under `count_budget_ms`. A search whose count ran over is remembered
   for `SLOW_TTL_S` (`SlowSearches`) so that paging through it does not spend the budget
   on every page.

One `ItemSearch` per application (`api.app.create_app`), so two apps in one process (the
tests, `bench/count_cost.py`) keep their own caches.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from functools import lru_cache
from time import monotonic
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from catalogue.database import Database
from catalogue.errors import UnknownPropertyError
from catalogue.repositories.collections import get_collection
from catalogue.repositories.estimate import estimated_rows
from catalogue.repositories.item_text import stored_item_text
from catalogue.repositories.queryables import property_names
from catalogue.repositories.search import (
    PreparedSearch,
    Rows,
    build_statement,
    read_rows,
    within_budget,
)
from catalogue.repositories.search_shape import SearchShape, search_parameters
from catalogue.repositories.sorting import check_sort_fields
from catalogue.search import day_counts
from catalogue.search.query import ItemQuery, PageToken
from catalogue.serializers import StoredItemText

NAMES_TTL_S = 60.0
# Distinct shapes (and, apart, filtered searches) kept built: a few hundred bytes of
# SQLAlchemy objects each; SQLAlchemy's own compiled cache holds 500 by default.
STATEMENT_CACHE_SIZE = 256
MAX_CACHED_FILTER_CHARS = 8_192  # longer filters (as the repr of their CQL2-JSON) are not kept
SLOW_TTL_S = 60.0
SLOW_ENTRIES = 1_024  # keys come from clients' searches: bounded, oldest dropped first
# Searches the planner expects to match more rows are not counted (see the module doc):
# an index-only count reads about 3 million entries a second on a quiet core, so 100,000
# fits the default 100 ms budget with room for a tenfold error of the estimate downwards.
COUNT_ESTIMATE_MAX = 100_000
OVER_ESTIMATE = -1  # what counting gives when the estimate said not to

Paths = tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class SearchRequest:
    """What the API asks of one search.

    `paths`: a Fields selection's include paths, for the database to select just those
    (no links); None for whole items. `collection`: the search is that collection's items
    (`/collections/{id}/items`), which must exist (`NotFoundError` otherwise).
    """

    query: ItemQuery
    paths: Paths | None = None
    collection: str | None = None


@dataclass(frozen=True)
class ItemPage:
    """One page of items as dicts; `number_matched` only when it was free to know (a
    first page that holds every match). `prev_token` is None on the first page."""

    items: list[dict[str, Any]]
    next_token: PageToken | None
    number_matched: int | None
    prev_token: PageToken | None = None


@dataclass(frozen=True)
class ItemTextPage:
    """One page as the database prints its items (for the API, see `item_json_text`);
    `number_matched` also when the count ended within the budget."""

    items: list[StoredItemText]
    next_token: PageToken | None
    number_matched: int | None
    prev_token: PageToken | None = None


class KnownNames:
    """The catalogue's property names (and the columns), kept until they expire."""

    def __init__(self, ttl_s: float = NAMES_TTL_S) -> None:
        self.ttl_s = ttl_s
        self._entry: tuple[float, frozenset[str]] | None = None

    def kept(self) -> frozenset[str] | None:
        entry = self._entry
        if entry is None or entry[0] <= monotonic():
            return None
        return entry[1]

    async def read(self, conn: AsyncConnection) -> frozenset[str]:
        """Frozen: the set is part of the key of filtered statements, and a frozenset
        hashes once (and the same object compares by identity)."""
        names = frozenset(await property_names(conn))
        self._entry = (monotonic() + self.ttl_s, names)
        return names


class Statements:
    """Built statements, the least recently used dropped first: per shape, and for a
    filtered search per shape, filter and names.

    A filter's SQL holds its values, so the filter is part of the key, as its repr: exact
    for CQL2-JSON values (1 and 1.0, inf and null, True and 1 all differ), where a JSON
    encoding would merge some. The names are part of it too: a kept statement has passed
    the unknown-property check against those names, and a refusal is never kept.
    """

    def __init__(self, size: int = STATEMENT_CACHE_SIZE) -> None:
        self.size = size
        # shape -> statement: an lru_cache of this instance's own (hashing in C); a filter
        # (nested dicts) is not hashable, so (shape, repr of the filter, names) -> statement
        # is an OrderedDict, least recently used first
        self._plain = lru_cache(maxsize=size)(build_statement)
        self._filtered: OrderedDict[tuple[Any, ...], PreparedSearch] = OrderedDict()

    def get(self, shape: SearchShape, tree: Any, names: AbstractSet[str] | None) -> PreparedSearch:
        """The statement of `shape` with the filter `tree` (None: no filter), built when
        not kept; a filter naming a property outside `names` is refused (any name when
        None), and the refusal is not kept."""
        if tree is None:
            return self._plain(shape)
        filter_repr = repr(tree)
        known = None if names is None else frozenset(names)
        key = (shape, filter_repr, known)
        prepared = self._filtered.get(key)
        if prepared is not None:
            self._filtered.move_to_end(key)
            return prepared
        prepared = build_statement(shape, tree, known)
        if len(filter_repr) <= MAX_CACHED_FILTER_CHARS:
            self._filtered[key] = prepared
            if len(self._filtered) > self.size:
                self._filtered.popitem(last=False)
        return prepared


class SlowSearches:
    """Searches whose count ran over its budget, with when to try counting them again."""

    def __init__(self, ttl_s: float = SLOW_TTL_S, entries: int = SLOW_ENTRIES) -> None:
        self.ttl_s = ttl_s
        self.entries = entries
        self._retry_at: OrderedDict[tuple[Any, ...], float] = OrderedDict()

    @staticmethod
    def key(shape: SearchShape, query: ItemQuery, parameters: dict[str, Any]) -> tuple[Any, ...]:
        """What a count depends on: the conditions and their values, not the page's limit,
        token or order. Values are taken by repr (lists and dicts are not hashable)."""
        values = sorted(
            (name, repr(value))
            for name, value in parameters.items()
            if name != "limit" and not name.startswith("token_")
        )
        return (shape, repr(query.filter), tuple(values))

    def __contains__(self, key: tuple[Any, ...]) -> bool:
        retry_at = self._retry_at.get(key)
        if retry_at is None:
            return False
        if retry_at <= monotonic():
            del self._retry_at[key]
            return False
        return True

    def remember(self, key: tuple[Any, ...]) -> None:
        self._retry_at[key] = monotonic() + self.ttl_s
        self._retry_at.move_to_end(key)
        if len(self._retry_at) > self.entries:
            self._retry_at.popitem(last=False)

    def clear(self) -> None:
        self._retry_at.clear()


class ItemSearch:
    """The catalogue's item search and its caches (see the module docstring)."""

    def __init__(
        self,
        count_budget_ms: int = 0,
        count_estimate_max: int = COUNT_ESTIMATE_MAX,
        day_counts: bool = True,
    ) -> None:
        self.count_budget_ms = count_budget_ms  # 0: never count beyond what a page shows
        self.count_estimate_max = count_estimate_max
        self.day_counts = day_counts  # False: never count from the per-day counts
        self.names = KnownNames()
        self.statements = Statements()
        self.slow = SlowSearches()

    async def page(self, database: Database, request: SearchRequest) -> ItemTextPage:
        """The page the API serves: names checked against the catalogue's, items as text,
        `numberMatched` when free or counted within the budget (on a connection in a
        transaction of its own, after the page: the budget is transaction-local)."""
        query = request.query
        parameters = search_parameters(query)  # the page's, and the count's
        async with database.read() as conn:
            if request.collection is not None:
                await get_collection(conn, request.collection)  # NotFoundError: a 404
            rows = await self._checked_rows(conn, query, parameters, request.paths)
        matched = rows.number_matched
        if matched is None and self.count_budget_ms > 0:
            async with database.read_in_transaction() as conn:
                matched = await self.count(conn, query, self.count_budget_ms, parameters)
        texts = [stored_item_text(row) for row in rows.page]
        return ItemTextPage(texts, rows.next_token, matched, rows.prev_token)

    async def items(
        self, conn: AsyncConnection, query: ItemQuery, names: AbstractSet[str] | None = None
    ) -> ItemPage:
        """One page of whole items as dicts on `conn`, with no count; a filter or sortby
        may name only `names` (any name when None). For `cubes` and the tests."""
        parameters = search_parameters(query)
        rows = await self._rows(conn, query, parameters, names, as_text=False, paths=None)
        contents = [row.content for row in rows.page]
        return ItemPage(contents, rows.next_token, rows.number_matched, rows.prev_token)

    async def count(
        self,
        conn: AsyncConnection,
        query: ItemQuery,
        budget_ms: int,
        parameters: dict[str, Any] | None = None,
    ) -> int | None:
        """Every item the query matches, or None when the planner expects more than
        `count_estimate_max` or counting takes over `budget_ms` (or did within
        `SLOW_TTL_S`); from the per-day counts when they apply. `conn` must be in a
        transaction of its own that the caller rolls back. `parameters`: the query's
        `search_parameters` when at hand (the count's statement takes what it names of
        them). Names were checked by the page's search: the filter is translated here
        without them."""
        shape = SearchShape.of(query).counted
        if parameters is None:
            parameters = search_parameters(query)
        key = self.slow.key(shape, query, parameters)
        if key in self.slow:
            return None
        if self.day_counts and day_counts.by_days(query):
            by_days = await day_counts.count(conn, query, parameters, budget_ms)
            if by_days is None:
                self.slow.remember(key)
            if by_days != day_counts.NOT_BY_DAYS:
                return by_days
        statement = self.statements.get(shape, query.filter, None).statement

        async def estimate_then_count() -> int:
            """The count, or OVER_ESTIMATE without counting (both under the budget: a
            plan waits for locks as a count does)."""
            if await estimated_rows(conn, statement, parameters) > self.count_estimate_max:
                return OVER_ESTIMATE
            return int((await conn.execute(statement, parameters)).scalar_one())

        matched = await within_budget(conn, budget_ms, estimate_then_count)
        if matched is None:
            self.slow.remember(key)
        return None if matched == OVER_ESTIMATE else matched

    async def _checked_rows(
        self,
        conn: AsyncConnection,
        query: ItemQuery,
        parameters: dict[str, Any],
        paths: Paths | None,
    ) -> Rows:
        """The rows, with the names a filter or sortby uses checked: against the kept
        names, and once more against freshly read ones when those refused one."""
        if query.filter is None and not query.sortby:
            return await self._rows(conn, query, parameters, None, as_text=True, paths=paths)
        kept = self.names.kept()
        if kept is not None:
            try:
                return await self._rows(conn, query, parameters, kept, as_text=True, paths=paths)
            except UnknownPropertyError:
                pass  # perhaps added since they were read: read them again
        names = await self.names.read(conn)
        return await self._rows(conn, query, parameters, names, as_text=True, paths=paths)

    async def _rows(
        self,
        conn: AsyncConnection,
        query: ItemQuery,
        parameters: dict[str, Any],
        names: AbstractSet[str] | None,
        as_text: bool,
        paths: Paths | None,
    ) -> Rows:
        check_sort_fields(query.sortby, names)
        prepared = self.statements.get(SearchShape.of(query, as_text, paths), query.filter, names)
        return await read_rows(conn, prepared, query, parameters)
