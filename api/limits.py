"""Per-request bounds that are not a single parameter's type: how many ids and collections,
how many vertices in `intersects`, how long `q` is, and the filter's limits (checked by
`catalogue.filters.parse_filter`). Each refusal is a 400 that names the limit and the
`CUBESTAC_API__*` variable that raises it. GET and POST reach the same checks: both go
through `CoreClient._query`.
"""

from __future__ import annotations

from typing import Any

import orjson

from catalogue.errors import InvalidInputError
from catalogue.filters import FilterLimits
from catalogue.filters.parse import count_positions
from catalogue.settings import ApiSettings


def filter_limits(settings: ApiSettings) -> FilterLimits:
    return FilterLimits(
        text_chars=settings.max_filter_text_chars,
        json_chars=settings.max_filter_json_chars,
        depth=settings.max_filter_depth,
        nodes=settings.max_filter_nodes,
        vertices=settings.max_geometry_vertices,
    )


def _refuse(what: str, given: int, limit: int, setting: str) -> None:
    if given > limit:
        raise InvalidInputError(
            f"{what}: {given} given, at most {limit} (limit CUBESTAC_API__{setting})"
        )


def check_search(
    settings: ApiSettings,
    *,
    ids: list[str] | None = None,
    collections: list[str] | None = None,
    intersects: Any = None,
    q: list[str] | str | None = None,
) -> None:
    """400 when a search asks for more than the configured bounds."""
    _refuse("ids", len(ids or ()), settings.max_ids, "MAX_IDS")
    _refuse("collections", len(collections or ()), settings.max_collections, "MAX_COLLECTIONS")
    if isinstance(intersects, str | bytes):  # GET: JSON text; bad JSON is parse_geometry's
        try:
            intersects = orjson.loads(intersects)
        except orjson.JSONDecodeError:
            intersects = None
    if isinstance(intersects, dict):
        check_vertices(settings, intersects)
    check_q(settings, q)


def check_vertices(settings: ApiSettings, geometry: dict[str, Any]) -> None:
    """The positions of a GeoJSON geometry (a GeometryCollection's members together)."""
    total = 0
    stack = [geometry]
    while stack:
        node = stack.pop()
        if not isinstance(node, dict):
            continue
        total += count_positions(node.get("coordinates"))
        members = node.get("geometries")
        if isinstance(members, list):
            stack.extend(members)
    _refuse("intersects: vertices", total, settings.max_geometry_vertices, "MAX_GEOMETRY_VERTICES")


def check_q(settings: ApiSettings, q: list[str] | str | None) -> None:
    """The whole free-text query, as characters (terms and separators)."""
    if q is None:
        return
    length = len(q) if isinstance(q, str) else sum(len(term) + 1 for term in q) - 1
    _refuse("q: characters", length, settings.max_q_chars, "MAX_Q_CHARS")
