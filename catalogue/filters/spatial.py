"""Spatial functions: S_INTERSECTS ... S_CONTAINS on `geometry` and geometry literals.

Literals (GeoJSON or WKT in the filter, `BBOX(...)`) were checked with shapely; they reach
PostGIS as WKB in one bound parameter, in CRS84 (SRID 4326, longitude first). The relations
are PostGIS's DE-9IM predicates, so `S_INTERSECTS(geometry, ...)` uses the GiST index.
https://docs.ogc.org/is/21-065r2/21-065r2.html#spatial-functions
"""

from __future__ import annotations

from typing import Any

import shapely
from sqlalchemy import ColumnElement, LargeBinary, func, literal

from catalogue.errors import InvalidInputError
from catalogue.filters.operands import Kind, Operand

FUNCTIONS = {
    "s_intersects": "ST_Intersects",
    "s_equals": "ST_Equals",
    "s_disjoint": "ST_Disjoint",
    "s_touches": "ST_Touches",
    "s_within": "ST_Within",
    "s_overlaps": "ST_Overlaps",
    "s_crosses": "ST_Crosses",
    "s_contains": "ST_Contains",
}
SRID = 4326


def geometry_sql(op: str, operand: Operand) -> ColumnElement[Any]:
    if operand.kind is not Kind.GEOMETRY:
        raise InvalidInputError(
            f"filter: {op} compares geometries; {operand.describe()} is not one "
            "(the spatial property is `geometry`)"
        )
    if not operand.literal:
        return operand.sql
    wkb = literal(shapely.to_wkb(operand.value), LargeBinary())
    return func.ST_GeomFromWKB(wkb, SRID)


def relate(op: str, a: Operand, b: Operand) -> ColumnElement[bool]:
    return getattr(func, FUNCTIONS[op])(geometry_sql(op, a), geometry_sql(op, b))
