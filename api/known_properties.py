"""The queryable names a filter or sortby may use, cached per process.

Every search with a filter or a sortby checks its property names against the queryables
(an unknown name is a 400). Reading them is a database round trip per request, 7 % of a
filtered search's API time at 1M items. Names are only ever added (ingest records new
ones), so a cached set can only lack a new name, never hold a wrong one: a search that
fails on an unknown name with a cached set is retried once with a fresh read
(`search_with_known_properties`), and a name added a moment ago is accepted at once.
"""

from __future__ import annotations

from time import monotonic

from sqlalchemy.ext.asyncio import AsyncConnection

from catalogue.errors import UnknownPropertyError
from catalogue.repositories.queryables import property_names
from catalogue.repositories.search import ItemTextPage, search_item_texts
from catalogue.search import ItemQuery

TTL_S = 60.0
MAX_ENTRIES = 256  # keys are collection lists chosen by clients


class KnownPropertiesCache:
    """collection ids -> (expiry, names); cleared whole when full."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, ...], tuple[float, frozenset[str]]] = {}

    def get(self, collections: tuple[str, ...]) -> frozenset[str] | None:
        entry = self._entries.get(collections)
        if entry is None or entry[0] <= monotonic():
            return None
        return entry[1]

    async def read(self, conn: AsyncConnection, collections: tuple[str, ...]) -> frozenset[str]:
        """Frozen: the set is part of the key of the filtered-statement cache
        (`catalogue.repositories.search`), and a frozenset hashes once."""
        names = frozenset(await property_names(conn, collections))
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()
        self._entries[collections] = (monotonic() + TTL_S, names)
        return names


async def search_with_known_properties(
    conn: AsyncConnection,
    query: ItemQuery,
    cache: KnownPropertiesCache,
    paths: tuple[tuple[str, ...], ...] | None = None,
) -> ItemTextPage:
    """`search_item_texts`, guarded by the queryables when the query names properties."""
    if query.filter is None and not query.sortby:
        return await search_item_texts(conn, query, paths=paths)
    cached = cache.get(query.collections)
    if cached is not None:
        try:
            return await search_item_texts(conn, query, cached, paths)
        except UnknownPropertyError:
            pass  # perhaps added since it was cached: read the names again
    names = await cache.read(conn, query.collections)
    return await search_item_texts(conn, query, names, paths)
