"""Reading the query parameters of the EDR position and area queries, refusing what is not
acceptable with a message that names the parameter and the problem.

OGC API - EDR 1.1, section 8.2 ("Parameters"): `coords` is Well Known Text in WGS 84
longitude/latitude (CRS84), `parameter-name` a comma-separated list of the collection's
parameters, `datetime` an instant or an interval with `..` for an open end, `f` the output
format. https://docs.ogc.org/is/19-086r6/19-086r6.html#_6b6ea4c1-bf5c-4af1-a8c1-4b8d8f4f2e1f
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Sequence

import shapely
from shapely.errors import ShapelyError
from shapely.geometry.base import BaseGeometry

from catalogue.errors import InvalidInputError
from catalogue.times import Interval, parse_interval


class OutputFormat(enum.StrEnum):
    COVERAGE_JSON = "CoverageJSON"
    CSV = "csv"


COVERAGE_JSON_MEDIA_TYPE = "application/prs.coverage+json"
CSV_MEDIA_TYPE = "text/csv"
FORMAT_NAMES = {
    "coveragejson": OutputFormat.COVERAGE_JSON,
    "covjson": OutputFormat.COVERAGE_JSON,
    "json": OutputFormat.COVERAGE_JSON,
    "csv": OutputFormat.CSV,
}


def parse_coords(text: str, kinds: Sequence[str], max_vertices: int) -> BaseGeometry:
    """The WKT geometry of `coords`, of one of `kinds` (shapely geometry type names), in
    longitude/latitude range, with at most `max_vertices` vertices, and valid."""
    try:
        geometry = shapely.from_wkt(text)
    except (ShapelyError, ValueError) as error:
        raise InvalidInputError(
            f"coords: {_shorten(text)!r} is not Well Known Text ({error})"
        ) from error
    if geometry is None or geometry.is_empty:
        raise InvalidInputError(f"coords: {_shorten(text)!r} is an empty geometry")
    if geometry.geom_type not in kinds:
        wanted = " or ".join(kind.upper() for kind in kinds)
        raise InvalidInputError(
            f"coords: expected a {wanted} here, got a {geometry.geom_type.upper()}"
        )
    vertices = int(shapely.get_num_coordinates(geometry))
    if vertices > max_vertices:
        raise InvalidInputError(
            f"coords: the geometry has {vertices} vertices, more than the limit of "
            f"{max_vertices} (CUBESTAC_EDR__MAX_VERTICES)"
        )
    west, south, east, north = geometry.bounds
    if west < -180 or east > 180 or south < -90 or north > 90:
        raise InvalidInputError(
            "coords: longitudes must be within [-180, 180] and latitudes within [-90, 90] "
            "(WGS 84, longitude first)"
        )
    if not geometry.is_valid:
        reason = shapely.is_valid_reason(geometry)
        raise InvalidInputError(f"coords: the geometry is not valid ({reason})")
    return geometry


def parse_parameters(text: str | None, variables: Collection[str]) -> list[str]:
    """The variables `parameter-name` names, in its order without repeats; every variable
    of the cube when it is absent."""
    if text is None or not text.strip():
        return sorted(variables)
    names = list(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))
    unknown = [name for name in names if name not in variables]
    if unknown:
        raise InvalidInputError(
            f"parameter-name: unknown {', '.join(repr(n) for n in unknown)}; this cube has "
            f"{', '.join(sorted(variables))}"
        )
    return names


def parse_datetime(text: str | None) -> Interval | None:
    """An instant, `a/b`, `../b` or `a/..` (RFC 3339 timestamps, or whole days)."""
    return parse_interval(text, "datetime", dates=True)


def parse_format(f: str | None, accept: str | None) -> OutputFormat:
    """`f` when given (CoverageJSON or csv, any case); else CSV when the Accept header asks
    for `text/csv` before any JSON type; else CoverageJSON."""
    if f is not None:
        output = FORMAT_NAMES.get(f.strip().lower())
        if output is None:
            raise InvalidInputError(f"f: unknown format {f!r}; use CoverageJSON or csv")
        return output
    for media in (accept or "").split(","):
        media_type = media.split(";")[0].strip().lower()
        if media_type == CSV_MEDIA_TYPE:
            return OutputFormat.CSV
        if "json" in media_type:
            break
    return OutputFormat.COVERAGE_JSON


CRS84_NAMES = frozenset(
    {"crs84", "ogc:crs84", "http://www.opengis.net/def/crs/ogc/1.3/crs84", "[ogc:crs84]"}
)


def check_crs(crs: str | None) -> None:
    """`crs` may only name WGS 84 longitude/latitude (CRS84), the one `coords` is read in."""
    if crs is not None and crs.strip().lower() not in CRS84_NAMES:
        raise InvalidInputError(
            f"crs: {crs!r} is not supported; coords are WGS 84 longitude/latitude "
            "(http://www.opengis.net/def/crs/OGC/1.3/CRS84)"
        )


def _shorten(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else f"{text[:limit]}..."
