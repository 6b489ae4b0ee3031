"""The Filter extension's POST bodies, taking cql2-text as well as cql2-json.

stac-fastapi's POST model types `filter` as an object and `filter-lang` as `cql2-json`
only, so `{"filter": "eo:cloud_cover < 10", "filter-lang": "cql2-text"}` was a 400. The
Filter extension allows either language in a POST body, and clients send text:
rustac's `search --filter` and pystac-client's `filter_lang="cql2-text"`. The parsing
itself is `catalogue.filters.parse_filter`'s, which takes both.
https://github.com/stac-api-extensions/filter#http-post
"""

from __future__ import annotations

from typing import Any

import attr
from pydantic import BaseModel, Field
from stac_fastapi.extensions.filter import (
    CollectionSearchFilterExtension,
    SearchFilterExtension,
)
from stac_fastapi.extensions.filter.request import FilterExtensionPostRequest, FilterLang


class FilterPostRequest(FilterExtensionPostRequest):
    """`filter` as a CQL2-JSON object or a cql2-text string; `filter-lang` either language.

    Unset, the language follows the filter: an object is cql2-json (the POST default the
    spec names), a string is read as cql2-text.
    """

    filter_expr: dict[str, Any] | str | None = Field(  # type: ignore[assignment]  # widened on purpose: cql2-text is a string
        None,
        alias="filter",
        description="A CQL2 filter: a CQL2-JSON object, or a cql2-text string.",
    )
    filter_lang: FilterLang | None = Field(  # type: ignore[assignment]  # widened on purpose, as above
        None,
        alias="filter-lang",
        description="`cql2-json` or `cql2-text`; by default, that of the `filter` given.",
    )


@attr.s
class SearchFilter(SearchFilterExtension):
    """`filter` on /search, with `FilterPostRequest` as its POST body."""

    POST: type[BaseModel] = FilterPostRequest


@attr.s
class CollectionSearchFilter(CollectionSearchFilterExtension):
    """`filter` on collection search, with `FilterPostRequest` as its POST body."""

    POST: type[BaseModel] = FilterPostRequest
