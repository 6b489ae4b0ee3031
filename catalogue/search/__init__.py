"""Item search, the one place: what a search asks for, and the call that answers it.

- `query`: `ItemQuery` (and `CollectionQuery`), parsed and checked before any SQL is built:
  geometry, free text, sortby, paging tokens (bbox and datetime are read by
  `catalogue.bbox` and `catalogue.times`). `cubes` searches with the same types.
- `service`: `ItemSearch.page(database, SearchRequest)`, the one call the API makes. It owns
  the caches (the catalogue's property names, the built statements, the memory of slow
  counts), the "unknown name: read the names once more, then retry or refuse" policy and
  the `numberMatched` budget.

The SQL lives in `catalogue.repositories.search` (statements, paging, the count) with
`search_shape`, `sorting` and `item_text`; CQL2 in `catalogue.filters`. The package
re-exports `query`'s names only: the repositories import `query`, and `service` imports
the repositories, so import it as `catalogue.search.service`.
"""

from catalogue.search.query import (
    DEFAULT_SORT,
    CollectionQuery,
    ItemQuery,
    PageToken,
    SortKey,
    parse_free_text,
    parse_geometry,
    parse_sortby,
)

__all__ = [
    "DEFAULT_SORT",
    "CollectionQuery",
    "ItemQuery",
    "PageToken",
    "SortKey",
    "parse_free_text",
    "parse_geometry",
    "parse_sortby",
]
