"""The queryable names a filter or sortby may use, cached per process.

Every search with a filter or a sortby checks its property names against the queryables
(an unknown name is a 400). The names are the whole catalogue's, whatever collections the
search names: a property that some collection holds is a valid name everywhere, and where
items lack it, it simply matches nothing (or sorts as missing). So STAC Browser's sort
list and stac-api-validator's filters, built from `/queryables`, work in every collection.

Reading them is a database round trip per request, a visible share of a filtered search's
API time (bench/results/code_figures.md). Names are only ever added (ingest records new
ones), so a cached set can only lack a new name, never hold a wrong one: a search that fails
on an unknown name with a cached set is retried once with a fresh read
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


class KnownPropertiesCache:
    """The catalogue's property names and their expiry."""

    def __init__(self) -> None:
        self._entry: tuple[float, frozenset[str]] | None = None

    def get(self) -> frozenset[str] | None:
        entry = self._entry
        if entry is None or entry[0] <= monotonic():
            return None
        return entry[1]

    async def read(self, conn: AsyncConnection) -> frozenset[str]:
        """Frozen: the set is part of the key of the filtered-statement cache
        (`catalogue.repositories.search`), and a frozenset hashes once."""
        names = frozenset(await property_names(conn))
        self._entry = (monotonic() + TTL_S, names)
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
    cached = cache.get()
    if cached is not None:
        try:
            return await search_item_texts(conn, query, cached, paths)
        except UnknownPropertyError:
            pass  # perhaps added since it was cached: read the names again
    names = await cache.read(conn)
    return await search_item_texts(conn, query, names, paths)
