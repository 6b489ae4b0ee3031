"""The free-text match shared by item search and collection search, so that `q` means the
same in both: any of the terms (each may be a quoted phrase, `websearch_to_tsquery`
syntax) against a text-search document of title, description and keywords."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, func, literal_column

from catalogue.models import TEXT_SEARCH_CONFIG


def matches_any(document: ColumnElement[Any], terms: Sequence[Any]) -> ColumnElement[bool]:
    """`document @@ (q1 || q2 ..)`: OR-ing the parsed queries keeps one `@@` (for items, one
    scan of the GIN index on the document). `terms` are strings or bound parameters, never
    inlined SQL; there is at least one."""
    config: ColumnElement[Any] = literal_column(f"'{TEXT_SEARCH_CONFIG}'::regconfig")
    queries = [func.websearch_to_tsquery(config, term) for term in terms]
    combined: ColumnElement[Any] = queries[0]
    for extra in queries[1:]:
        combined = combined.op("||")(extra)
    return document.op("@@")(combined)
