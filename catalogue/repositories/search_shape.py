"""What decides the SQL of an item search, apart from its values.

Building a SELECT with SQLAlchemy costs more than PostgreSQL spends answering a simple
search (a third of the API's CPU for a bbox + month page at 1M items). Two searches with the
same `SearchShape` differ only in their values, so `catalogue.repositories.search` builds
one statement per shape, with named parameters, and runs it with `search_parameters`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import orjson

from catalogue.repositories.sorting import token_parameters
from catalogue.search.query import ItemQuery, SortKey

NONE, ONE, SEVERAL = 0, 1, 2
PLAIN_BBOX, ANTIMERIDIAN_BBOX = 1, 2


def _how_many(values: tuple[str, ...]) -> int:
    return NONE if not values else ONE if len(values) == 1 else SEVERAL


@dataclass(frozen=True)
class SearchShape:
    """A search with its values taken out (hashable: the key of the statement cache)."""

    collections: int = NONE  # NONE, ONE (an equality) or SEVERAL (`= ANY(array)`)
    ids: int = NONE
    bbox: int = NONE  # NONE, PLAIN_BBOX or ANTIMERIDIAN_BBOX (split in two)
    intersects: bool = False
    interval: bool = False
    has_start: bool = False
    has_end: bool = False
    text_terms: int = 0
    token_nulls: tuple[bool, ...] | None = None  # where the page token holds NULLs
    backward: bool = False  # a `prev` token: the rows before it, in the reversed order
    sortby: tuple[SortKey, ...] = ()
    as_text: bool = False
    paths: tuple[tuple[str, ...], ...] | None = None  # a Fields selection made in SQL
    count: bool = False  # `SELECT count(*)` of every match instead of a page

    @property
    def counted(self) -> SearchShape:
        """The shape of this search's count: its conditions, no token, order or selection."""
        return replace(
            self, token_nulls=None, backward=False, sortby=(), as_text=False, paths=None, count=True
        )

    @property
    def spatial(self) -> bool:
        return self.bbox != NONE or self.intersects

    @classmethod
    def of(
        cls,
        query: ItemQuery,
        as_text: bool = False,
        paths: tuple[tuple[str, ...], ...] | None = None,
    ) -> SearchShape:
        bbox = NONE
        if query.bbox is not None:
            bbox = PLAIN_BBOX if query.bbox[0] <= query.bbox[2] else ANTIMERIDIAN_BBOX
        interval = query.interval
        return cls(
            collections=_how_many(query.collections),
            ids=_how_many(query.ids),
            bbox=bbox,
            intersects=query.intersects is not None,
            interval=interval is not None,
            has_start=interval is not None and interval.start is not None,
            has_end=interval is not None and interval.end is not None,
            text_terms=len(query.text),
            token_nulls=None
            if query.token is None
            else tuple(value is None for value in query.token.values),
            backward=query.token is not None and query.token.backward,
            sortby=query.sortby,
            as_text=as_text,
            paths=paths,
        )


def _one_or_array(values: tuple[str, ...]) -> Any:
    return values[0] if len(values) == 1 else list(values)


def search_parameters(query: ItemQuery) -> dict[str, Any]:
    """The values of the named parameters of the statement of `SearchShape.of(query)`."""
    parameters: dict[str, Any] = {"limit": query.limit + 1}
    if query.collections:
        parameters["collections"] = _one_or_array(query.collections)
    if query.ids:
        parameters["ids"] = _one_or_array(query.ids)
    if query.bbox is not None:
        west, south, east, north = query.bbox
        parameters.update(west=west, south=south, east=east, north=north)
    if query.intersects is not None:
        parameters["intersects"] = orjson.dumps(query.intersects).decode()
    if query.interval is not None:
        parameters.update(start=query.interval.start, end=query.interval.end)
    for index, term in enumerate(query.text):
        parameters[f"text_{index}"] = term
    if query.token is not None:
        parameters.update(token_parameters(query.token))
    return parameters
