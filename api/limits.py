"""Per-request bounds that are not a single parameter's type: how many ids and collections,
how many vertices in `intersects`, how long `q` is, and the filter's limits (checked by
`catalogue.filters.parse_filter`). Each refusal is a 400 that names the limit and the
`CUBESTAC_API__*` variable that raises it. GET and POST reach the same checks: both go
through `CoreClient._query`.
"""

from __future__ import annotations

import re
from itertools import islice
from typing import Any

import msgspec
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


def page_limit(settings: ApiSettings, limit: int | None, least: int = 1) -> int:
    """`limit` of a page: the default when absent, capped at `max_limit` when above it;
    at least `least` (0 for item search: `limit=0` asks for `numberMatched` alone).

    Capping, not a 400, is what OGC API - Features asks (/rec/core/fc-limit-default-maximum:
    "this SHALL NOT result in an error (instead use the maximum)"), and what stac-fastapi's
    request models already did at 10,000; the next link carries on from the capped page.
    """
    limit = settings.default_limit if limit is None else limit
    if limit < least:
        raise InvalidInputError(f"limit: must be at least {least}")
    return min(limit, settings.max_limit)


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


class _Intersects(msgspec.Struct):
    """The one member of a search body read before the body is parsed; msgspec skips the
    others without building them."""

    intersects: msgspec.Raw = msgspec.Raw(b"null")


# a JSON string (skipped), or the opening of an array whose first element is a number: a
# position, as `count_positions` counts them
_STRING_OR_POSITION = re.compile(rb'"(?:[^"\\]|\\.)*"|\[\s*-?[0-9]')


def check_search_body(settings: ApiSettings, body: bytes) -> None:
    """400 for a search body that would cost more to parse than its limits allow, found
    without parsing it (issue 14: a 13.7 MB `intersects` took 18.8 s to refuse, most of it
    in building 600k positions as models).

    - the positions of `intersects`: only when the body holds more `[` than the vertex
      limit, its `intersects` member is cut out by msgspec (which skips the rest unbuilt)
      and its positions counted over the bytes, up to one past the limit;
    - JSON values, bounded from above by the commas and brackets (strings included).

    A body that is not JSON passes: the endpoint answers it with its own 400.
    """
    brackets = body.count(b"[")
    if brackets > settings.max_geometry_vertices:
        _check_raw_intersects(settings, body)
    values = body.count(b",") + brackets + body.count(b"{")
    _refuse(
        "search body: commas and brackets",
        values,
        settings.max_search_body_values,
        "MAX_SEARCH_BODY_VALUES",
    )


def _check_raw_intersects(settings: ApiSettings, body: bytes) -> None:
    try:
        raw = msgspec.json.decode(body, type=_Intersects).intersects
    except msgspec.DecodeError:
        return
    limit = settings.max_geometry_vertices
    matches = _STRING_OR_POSITION.finditer(bytes(raw))
    positions = (match for match in matches if match[0][:1] == b"[")
    if next(islice(positions, limit, None), None) is not None:
        raise InvalidInputError(
            f"intersects: more than {limit} vertices (limit CUBESTAC_API__MAX_GEOMETRY_VERTICES)"
        )


def check_q(settings: ApiSettings, q: list[str] | str | None) -> None:
    """The whole free-text query, as characters (terms and separators)."""
    if q is None:
        return
    length = len(q) if isinstance(q, str) else sum(len(term) + 1 for term in q) - 1
    _refuse("q: characters", length, settings.max_q_chars, "MAX_Q_CHARS")
