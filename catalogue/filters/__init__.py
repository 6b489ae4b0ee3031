"""CQL2 filters for item search (STAC API Filter extension, OGC CQL2 1.0).

`parse_filter` turns cql2-text or cql2-json into a normalised CQL2-JSON tree (400 with the
position or the offending node when it is not valid); `filter_clause` turns that tree into
one SQLAlchemy condition over `items`, with bound parameters only. The split lets the API
check a filter before it opens a connection, and keeps the tree in `ItemQuery` as data.

Modules: `parse` (text/JSON, limits), `operands` and `values` (typed values, property
mapping), `comparisons`, `spatial`, `temporal`, `arrays` (the operator classes) and
`translate` (the dispatch).
https://github.com/stac-api-extensions/filter, https://docs.ogc.org/is/21-065r2/21-065r2.html
"""

from catalogue.filters.parse import CRS84, FilterLimits, parse_filter
from catalogue.filters.translate import filter_clause

__all__ = ["CRS84", "FilterLimits", "filter_clause", "parse_filter"]
