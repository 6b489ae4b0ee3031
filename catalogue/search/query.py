"""What an item search asks for, parsed and checked before any SQL is built.

The API turns its request models into an `ItemQuery`; the repository turns an `ItemQuery`
into one SQL statement. Parsing lives here so that `ingest` and `cubes` can search too.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import shapely
from shapely.errors import GEOSException
from shapely.geometry import shape

from catalogue.errors import InvalidInputError
from catalogue.times import Interval


@dataclass(frozen=True)
class SortKey:
    """One `sortby` key: a queryable name (`id`, `datetime`, `properties.gsd` ...)."""

    field: str
    descending: bool = False


DEFAULT_SORT = (SortKey("datetime", True), SortKey("id", True), SortKey("collection", True))


def parse_sortby(values: list[Any] | None) -> tuple[SortKey, ...]:
    """GET `-properties.gsd,+id` strings or POST `{"field", "direction"}` objects."""
    keys: list[SortKey] = []
    for value in values or []:
        if isinstance(value, str):
            text = value.strip()
            descending = text.startswith("-")
            field_name = text.lstrip("+-").strip()
        else:
            field_name = str(getattr(value, "field", None) or value.get("field", ""))
            direction = getattr(value, "direction", None) or value.get("direction", "asc")
            descending = str(getattr(direction, "value", direction)).lower() == "desc"
        if not field_name:
            raise InvalidInputError(f"sortby: {value!r} names no field")
        keys.append(SortKey(field_name, descending))
    return tuple(keys)


def _encode_value(value: Any) -> Any:
    return {"$dt": value.isoformat()} if isinstance(value, datetime) else value


def _decode_value(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"$dt"}:
        return datetime.fromisoformat(value["$dt"])
    return value


BACKWARD = "prev"  # the third member of a token that pages backwards


@dataclass(frozen=True)
class PageToken:
    """A keyset position in a search's order: the values of every sort key of one row.

    A `next` token (`backward` false) asks for the rows after that position (it is the last
    row of a page); a `prev` token (`backward` true) for the rows before it (the first row
    of a page). `signature` names the sort order the values belong to, so a token cannot be
    replayed against another `sortby` (which would silently skip or repeat items).
    """

    values: tuple[Any, ...]
    signature: str
    backward: bool = False

    def encode(self) -> str:
        encoded: list[Any] = [self.signature, [_encode_value(value) for value in self.values]]
        if self.backward:
            encoded.append(BACKWARD)
        return base64.urlsafe_b64encode(orjson.dumps(encoded)).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> PageToken:
        try:
            padded = token + "=" * (-len(token) % 4)
            signature, values, *direction = orjson.loads(base64.urlsafe_b64decode(padded))
            if not isinstance(signature, str) or not isinstance(values, list):
                raise ValueError("malformed token")
            if direction not in ([], [BACKWARD]):
                raise ValueError("malformed direction")
            values = tuple(_decode_value(value) for value in values)
            return cls(values, signature, backward=bool(direction))
        except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError) as error:
            raise InvalidInputError(f"token: {token[:64]!r} is not a valid paging token") from error


@dataclass(frozen=True)
class ItemQuery:
    """A search over items; every field is optional and they combine with AND."""

    collections: tuple[str, ...] = ()
    ids: tuple[str, ...] = ()
    bbox: tuple[float, float, float, float] | None = None
    intersects: dict[str, Any] | None = None
    interval: Interval | None = None
    limit: int = 10
    token: PageToken | None = None
    sortby: tuple[SortKey, ...] = ()
    text: tuple[str, ...] = ()
    filter: dict[str, Any] | bool | None = None  # CQL2-JSON from catalogue.filters.parse_filter


@dataclass(frozen=True)
class CollectionQuery:
    """Collection search: bbox and datetime against the extent, free text, CQL2 filter,
    order, paging."""

    bbox: tuple[float, float, float, float] | None = None
    interval: Interval | None = None
    text: tuple[str, ...] = ()
    sortby: tuple[SortKey, ...] = ()
    limit: int = 10
    token: PageToken | None = None
    filter: dict[str, Any] | bool | None = None  # CQL2-JSON over collection fields


MAX_FREE_TEXT_TERMS = 50


def parse_free_text(value: list[str] | str | None) -> tuple[str, ...]:
    """Free-text `q`: a list (or comma-separated string) of terms or quoted phrases, OR-ed.

    https://github.com/stac-api-extensions/freetext-search (basic): `q=sentinel,"sea ice"`.
    """
    if value is None:
        return ()
    terms = value.split(",") if isinstance(value, str) else list(value)
    cleaned = tuple(term.strip() for term in terms if term and term.strip())
    if len(cleaned) > MAX_FREE_TEXT_TERMS:
        raise InvalidInputError(f"q: at most {MAX_FREE_TEXT_TERMS} terms")
    if any(len(term) > 200 for term in cleaned):
        raise InvalidInputError("q: a term may be at most 200 characters")
    return cleaned


def parse_geometry(value: Any) -> dict[str, Any] | None:
    """A GeoJSON geometry for `intersects`, checked with shapely before it reaches SQL."""
    if value is None:
        return None
    geometry = value if isinstance(value, dict) else _loads_geometry(value)
    try:
        parsed = shape(geometry)
    except (ValueError, TypeError, AttributeError, KeyError, IndexError, GEOSException) as error:
        raise InvalidInputError(f"intersects: not a valid GeoJSON geometry: {error}") from error
    if parsed.is_empty:
        raise InvalidInputError("intersects: the geometry is empty")
    if not parsed.is_valid:
        raise InvalidInputError(f"intersects: invalid geometry: {shapely.is_valid_reason(parsed)}")
    return geometry


def _loads_geometry(value: Any) -> dict[str, Any]:
    try:
        loaded = orjson.loads(value)
    except (orjson.JSONDecodeError, TypeError) as error:
        raise InvalidInputError("intersects: not a JSON GeoJSON geometry") from error
    if not isinstance(loaded, dict):
        raise InvalidInputError("intersects: a GeoJSON geometry must be an object")
    return loaded
