"""The values a CQL2 filter talks about, as typed SQL: properties, literals and functions.

Property mapping: `id`, `collection`, `geometry`, `datetime`, `start_datetime` and
`end_datetime` are columns of `items`; every other name is a key of the `properties` JSONB
(a `properties.` prefix is accepted and stripped; dots after it are part of the key).

Types: a column or a literal has one known type. A property value may have any JSON type,
item by item, so it is read through `cubestac_<type>(jsonb)` (migration 0005) for the type
the other side of the comparison has: the value when it has that type, NULL otherwise.
A mismatch is therefore *unknown*, as a missing property is: never true, and NOT does not
make it true. Timestamps held in properties are RFC 3339 strings; they are read as
timestamps only when compared with a timestamp.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import shapely
from shapely.errors import ShapelyError
from shapely.geometry import box, shape
from sqlalchemy import Boolean, ColumnElement, DateTime, Numeric, Text, cast, func, literal, null
from sqlalchemy.dialects.postgresql import JSONB

from catalogue import cube_properties
from catalogue.errors import InvalidInputError, UnknownPropertyError
from catalogue.filters.parse import show
from catalogue.models import ItemRow
from catalogue.repositories.sorting import property_name, property_value
from catalogue.times import parse_datetime

items = ItemRow.__table__


class Kind(enum.StrEnum):
    """What an operand holds; JSON is a property value whose type varies per item."""

    NULL = "null"
    BOOLEAN = "boolean"
    NUMBER = "number"
    STRING = "string"
    TIMESTAMP = "timestamp"
    INTERVAL = "interval"
    GEOMETRY = "geometry"
    ARRAY = "array"
    JSON = "property value"


COLUMNS: dict[str, tuple[Kind, Any]] = {
    "id": (Kind.STRING, items.c.id),
    "collection": (Kind.STRING, items.c.collection),
    "datetime": (Kind.TIMESTAMP, items.c.datetime),
    "start_datetime": (Kind.TIMESTAMP, items.c.start_datetime),
    "end_datetime": (Kind.TIMESTAMP, items.c.end_datetime),
    "geometry": (Kind.GEOMETRY, items.c.geometry),
}


@dataclass(frozen=True)
class Fields:
    """What the names in a filter mean: `columns` of a table, any other name a key of a JSONB
    document (`document(name)`); `interval` is the (start, end) pair that `datetime` stands
    for in temporal functions."""

    columns: dict[str, tuple[Kind, Any]]
    document: Callable[[str], Any]
    interval: tuple[Any, Any] | None = None


ITEM_FIELDS = Fields(COLUMNS, property_value, (items.c.start_datetime, items.c.end_datetime))
SQL_TYPES: dict[Kind, Any] = {
    Kind.BOOLEAN: Boolean(),
    Kind.NUMBER: Numeric(),
    Kind.STRING: Text(),
    Kind.TIMESTAMP: DateTime(timezone=True),
    Kind.ARRAY: JSONB(),
}
READS = {  # cubestac_<type>(jsonb): the value when it has that JSON type, else NULL
    Kind.BOOLEAN: "cubestac_boolean",
    Kind.NUMBER: "cubestac_number",
    Kind.STRING: "cubestac_text",
    Kind.TIMESTAMP: "cubestac_timestamp",
    Kind.ARRAY: "cubestac_array",
}
GEOJSON_TYPES = frozenset(
    {
        "Point",
        "MultiPoint",
        "LineString",
        "MultiLineString",
        "Polygon",
        "MultiPolygon",
        "GeometryCollection",
    }
)
ONE_DAY = timedelta(days=1)


@dataclass(frozen=True)
class Operand:
    """One value expression: SQL for columns, properties and functions; a Python value for
    literals. `column` names the mapped column; `day` marks a DATE literal."""

    kind: Kind
    node: Any
    sql: Any = None
    value: Any = None
    literal: bool = False
    column: str | None = None
    day: bool = False

    def describe(self) -> str:
        return f"{show(self.node)} ({self.kind})"


def mismatch(operand: Operand, wanted: Kind) -> InvalidInputError:
    return InvalidInputError(f"filter: {operand.describe()} is not a {wanted}")


def typed(operand: Operand, kind: Kind) -> ColumnElement[Any]:
    """The operand as SQL of `kind` (a property is read through its typed function)."""
    if operand.kind is Kind.NULL:
        return cast(null(), SQL_TYPES.get(kind, Text()))
    if operand.kind is Kind.JSON:
        exact = cube_properties.number(operand.sql) if kind is Kind.NUMBER else None
        if exact is not None:
            return exact
        return getattr(func, READS[kind])(operand.sql, type_=SQL_TYPES[kind])
    if operand.literal:
        return literal(literal_value(operand, kind), SQL_TYPES[kind])
    if operand.kind is not kind:
        raise mismatch(operand, kind)
    return operand.sql


def literal_value(operand: Operand, kind: Kind) -> Any:
    """A literal's Python value as `kind`; a string is read as a timestamp when one is due."""
    if operand.kind is kind:
        return operand.value
    if operand.kind is Kind.STRING and kind is Kind.TIMESTAMP:
        return parse_moment(operand.value, show(operand.node))[0]
    raise mismatch(operand, kind)


def parse_moment(text: Any, where: str) -> tuple[datetime, bool]:
    """An RFC 3339 date-time, or a full date as midnight UTC; True when it was a date."""
    if isinstance(text, str) and len(text) == 10:
        try:
            return datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC), True
        except ValueError as error:
            raise InvalidInputError(f"filter: {where}: {text!r} is not a date") from error
    return parse_datetime(text, f"filter: {where}"), False


def day_end(start: datetime) -> datetime:
    """The last microsecond of the day that starts at `start` (PostgreSQL's resolution)."""
    return start + ONE_DAY - timedelta(microseconds=1)


# -- building operands -----------------------------------------------------------------------
def literal_operand(node: Any) -> Operand:
    """A scalar or array literal."""
    if node is None:
        return Operand(Kind.NULL, node, literal=True)
    if isinstance(node, bool):
        return Operand(Kind.BOOLEAN, node, value=node, literal=True)
    if isinstance(node, int | float):
        return Operand(Kind.NUMBER, node, value=Decimal(repr(float(node))), literal=True)
    if isinstance(node, str):
        return Operand(Kind.STRING, node, value=node, literal=True)
    if isinstance(node, list):
        for element in node:
            if isinstance(element, dict):
                raise InvalidInputError(f"filter: array elements must be literals: {show(node)}")
        return Operand(Kind.ARRAY, node, value=node, literal=True)
    raise InvalidInputError(f"filter: {show(node)} is not a value")


def property_operand(
    node: dict[str, Any], known_properties: AbstractSet[str] | None, fields: Fields = ITEM_FIELDS
) -> Operand:
    name = node.get("property")
    if not isinstance(name, str) or not name.strip():
        raise InvalidInputError(f"filter: {show(node)} does not name a property")
    key = property_name(name)
    if key in fields.columns:
        kind, column = fields.columns[key]
        return Operand(kind, node, sql=column, column=key)
    if known_properties is not None and key not in known_properties:
        raise UnknownPropertyError(f"filter: unknown property {name!r} (see /queryables)")
    return Operand(Kind.JSON, node, sql=fields.document(key))


def temporal_literal(node: dict[str, Any]) -> Operand:
    """`{"timestamp": ...}` or `{"date": ...}` (a date is midnight UTC in comparisons)."""
    if "timestamp" in node:
        value = node["timestamp"]
        if not isinstance(value, str) or len(value) <= 10:
            raise InvalidInputError(f"filter: {show(node)} is not an RFC 3339 timestamp")
        moment, _ = parse_moment(value, show(node))
        return Operand(Kind.TIMESTAMP, node, value=moment, literal=True)
    value = node["date"]
    if not isinstance(value, str) or len(value) != 10:
        raise InvalidInputError(f"filter: {show(node)} is not a date (YYYY-MM-DD)")
    moment, _ = parse_moment(value, show(node))
    return Operand(Kind.TIMESTAMP, node, value=moment, literal=True, day=True)


def geometry_literal(node: dict[str, Any]) -> Operand:
    """A GeoJSON geometry or a `{"bbox": [...]}`, checked with shapely, kept 2D."""
    geometry = bbox_geometry(node["bbox"]) if "bbox" in node else _shape(node)
    if geometry.is_empty:
        raise InvalidInputError(f"filter: the geometry {show(node)} is empty")
    if not geometry.is_valid:
        reason = shapely.is_valid_reason(geometry)
        raise InvalidInputError(f"filter: invalid geometry {show(node)}: {reason}")
    return Operand(Kind.GEOMETRY, node, value=shapely.force_2d(geometry), literal=True)


def _shape(node: dict[str, Any]) -> Any:
    try:
        return shape(node)
    except (ShapelyError, ValueError, TypeError, AttributeError, KeyError, IndexError) as error:
        raise InvalidInputError(
            f"filter: {show(node)} is not a valid GeoJSON geometry: {error}"
        ) from error


def bbox_geometry(values: Any) -> Any:
    """West > east crosses the antimeridian: two boxes, as in a bbox search."""
    if not isinstance(values, list) or len(values) not in (4, 6):
        raise InvalidInputError(f"filter: bbox {show(values)} must have 4 or 6 numbers")
    if not all(isinstance(value, int | float) and not isinstance(value, bool) for value in values):
        raise InvalidInputError(f"filter: bbox {show(values)} must have 4 or 6 numbers")
    west, south, east, north = values if len(values) == 4 else [values[i] for i in (0, 1, 3, 4)]
    if south > north or not all(-90 <= lat <= 90 for lat in (south, north)):
        raise InvalidInputError(f"filter: bbox {show(values)}: latitudes out of order or range")
    if not all(-180 <= lon <= 180 for lon in (west, east)):
        raise InvalidInputError(f"filter: bbox {show(values)}: longitudes out of range")
    if west <= east:
        return box(west, south, east, north)
    return shapely.MultiPolygon([box(west, south, 180, north), box(-180, south, east, north)])
