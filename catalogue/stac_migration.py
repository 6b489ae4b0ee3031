"""Real-world STAC documents made into the STAC the catalogue serves, before they are stored.

Public catalogs publish documents of older STAC versions (0.9, 1.0.0-beta.x, -rc.x), with
extensions named by short names ("eo", "projection") instead of schema URIs, numbers given
as strings, and collections whose first ("overall") bbox does not contain the others. Each
of these is valid under the JSON schemas of its own STAC version (or harmless), but served
as it came it breaks readers: pystac and pystac-client read an old collection badly enough
that `Client.get_collections()` fails for the whole catalogue. So every write path (the
transactions API and every harvester) passes documents through `normalise_item` /
`normalise_collection`:

* a document of a STAC version older than the one served (`STAC_VERSION`), or naming
  extensions by short names, is migrated to `STAC_VERSION` by pystac's own migration
  (`pystac.serialization.migrate_to_latest`): core changes, short extension names expanded
  to schema URIs, extension fields moved to their latest version the way pystac reads them
  (projection v1 `proj:epsg` gains the `proj:code` of v2; such a document stays at
  projection v1.2.0 with both, since GDAL 3.6 and stackstac read only `proj:epsg`:
  `catalogue.projection`);
* a short extension name that pystac does not know (no schema URI can be given for it) is
  dropped from `stac_extensions`; the fields themselves are kept;
* a bbox value or a well-known numeric field (`gsd`, `eo:cloud_cover`, ...) given as a
  numeric string becomes the number its schema requires;
* a collection whose first bbox does not contain the others gets, as its first bbox, the
  union of all of them (STAC 1.1.0 collection spec, "Spatial Extent Object": the first box
  is the overall extent); the boxes it had are kept after it. A lone sub-bbox inside the
  overall one is dropped: the 1.1.0 schema allows one bbox or at least three.

Each change is reported as a warning (a short sentence without values, so that a harvest
of a million items can count them by sentence); what cannot be migrated raises
InvalidInputError naming the problem. A document of the served version goes through
untouched (the same object), which is the common case and costs a few dict lookups.
"""

from __future__ import annotations

import math
import re
from typing import Any, NamedTuple

from pystac import STACObjectType
from pystac.serialization import identify_stac_object, migrate_to_latest
from pystac.serialization.identify import STACVersionID

from catalogue.errors import InvalidInputError
from catalogue.projection import as_projection_v1_2, declares_projection_v1
from catalogue.serializers import STAC_VERSION

SERVED = STACVersionID(STAC_VERSION)
TYPE_INTRODUCED = STACVersionID("1.0.0-rc.1")
VERSION = re.compile(r"\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?")  # what STAC versions look like
URI_PREFIXES = ("https://", "http://")
# Fields whose schemas (core common metadata and the extensions public catalogs use most)
# require a number; a numeric string there is a publisher's slip, not a different meaning.
NUMERIC_PROPERTIES = frozenset(
    {
        "gsd",
        "eo:cloud_cover",
        "eo:snow_cover",
        "view:off_nadir",
        "view:incidence_angle",
        "view:azimuth",
        "view:sun_azimuth",
        "view:sun_elevation",
        "sat:relative_orbit",
        "sat:absolute_orbit",
        "proj:epsg",
    }
)
INTEGER_PROPERTIES = frozenset({"sat:relative_orbit", "sat:absolute_orbit", "proj:epsg"})
# pystac's identification and migration walk documents that may hold anything; whatever
# they raise on one (STACTypeError, KeyError, TypeError ...) means it cannot be migrated
MIGRATION_ERRORS = (Exception,)


class Normalised(NamedTuple):
    """A document as the catalogue stores it and what was changed to get there (a tuple:
    one is made per harvested item)."""

    document: Any
    warnings: tuple[str, ...] = ()


def normalise_item(item: Any) -> Normalised:
    """The item in the served STAC version; anything that is not a JSON object is handed
    back untouched, for the caller's own checks to refuse with their message."""
    return _normalise(item, STACObjectType.ITEM)


def normalise_collection(collection: Any) -> Normalised:
    """The collection in the served STAC version, its overall bbox containing the others."""
    normalised = _normalise(collection, STACObjectType.COLLECTION)
    if not isinstance(normalised.document, dict):
        return normalised
    document, repaired = _with_overall_bbox(normalised.document)
    return Normalised(document, normalised.warnings + repaired)


def stac_type(document: Any) -> str | None:
    """The `type` a STAC document has or, for one older than 1.0.0-rc.1 (catalogs and
    collections had none then), the one pystac identifies: "Catalog", "Collection" or
    "Feature"; None when it is not a STAC document."""
    if not isinstance(document, dict):
        return None
    declared = document.get("type")
    if declared is not None or not isinstance(document.get("stac_version"), str):
        return declared if isinstance(declared, str) else None
    try:
        return str(identify_stac_object(document).object_type.value)
    except MIGRATION_ERRORS:
        return None


def _normalise(document: Any, kind: STACObjectType) -> Normalised:
    if not isinstance(document, dict):
        return Normalised(document)
    warnings: list[str] = []
    if _needs_migration(document):
        projection_v1 = declares_projection_v1(document)
        document = _migrated(document, kind, warnings)
        document = _without_unknown_extensions(document, warnings)
        if projection_v1:
            document = as_projection_v1_2(document)
    document = _with_numbers(document, warnings)
    return Normalised(document, tuple(warnings))


def _needs_migration(document: dict[str, Any]) -> bool:
    version = document.get("stac_version")
    extensions = document.get("stac_extensions")
    if isinstance(extensions, list) and not all(map(_is_uri, extensions)):
        return True
    if not isinstance(version, str) or version == STAC_VERSION:
        return False  # a missing or non-string version is the caller's to refuse or default
    if not VERSION.fullmatch(version):
        raise InvalidInputError(
            f"stac_version {version!r} is not a STAC version (e.g. {STAC_VERSION})"
        )
    return STACVersionID(version) < SERVED


def _typed_too_early(document: dict[str, Any]) -> bool:
    """A collection with a `type` from before 1.0.0-rc.1, which introduced the field."""
    version = document.get("stac_version")
    return (
        document.get("type") == "Collection"
        and isinstance(version, str)
        and VERSION.fullmatch(version) is not None
        and STACVersionID(version) < TYPE_INTRODUCED
    )


def _is_uri(name: Any) -> bool:
    return isinstance(name, str) and name.startswith(URI_PREFIXES)


def _migrated(document: dict[str, Any], kind: STACObjectType, warnings: list[str]) -> dict:
    """pystac's migration of `document` to `STAC_VERSION` (a new dict)."""
    what = "item" if kind is STACObjectType.ITEM else "collection"
    version = document.get("stac_version")
    if kind is STACObjectType.COLLECTION and _typed_too_early(document):
        # pystac would not identify a pre-rc.1 collection that has one; migration sets it
        document = {key: value for key, value in document.items() if key != "type"}
    try:
        info = identify_stac_object(document)
    except MIGRATION_ERRORS as error:
        raise InvalidInputError(
            f"{what} {document.get('id')!r} (STAC {version}) cannot be migrated: {error}"
        ) from error
    if info.object_type != kind:
        raise InvalidInputError(
            f"{what} {document.get('id')!r} (STAC {version}) cannot be migrated: it reads "
            f"as a STAC {info.object_type.lower()}"
        )
    try:
        migrated = migrate_to_latest(document, info)
    except MIGRATION_ERRORS as error:
        raise InvalidInputError(
            f"{what} {document.get('id')!r} (STAC {version}) cannot be migrated: "
            f"{type(error).__name__}: {error}"
        ) from error
    if migrated.get("stac_version") != version:
        warnings.append(f"migrated from STAC {version} to {migrated.get('stac_version')}")
    return migrated


def _without_unknown_extensions(document: dict[str, Any], warnings: list[str]) -> dict:
    extensions = document.get("stac_extensions")
    if not isinstance(extensions, list) or all(_is_uri(name) for name in extensions):
        return document
    for name in extensions:
        if not _is_uri(name):
            warnings.append(
                f"stac_extensions: {name!r} is neither a schema URI nor an extension "
                "pystac knows; dropped (its fields are kept)"
            )
    return {**document, "stac_extensions": [name for name in extensions if _is_uri(name)]}


def _with_numbers(document: dict[str, Any], warnings: list[str]) -> dict:
    """Numeric strings in `bbox` and in the NUMERIC_PROPERTIES made numbers."""
    bbox = document.get("bbox")
    if isinstance(bbox, list) and str in map(type, bbox):
        numbers = _numbers(bbox)
        if numbers is not None:
            document = {**document, "bbox": numbers}
            warnings.append("bbox: numbers given as strings, stored as numbers")
    properties = document.get("properties")
    if not isinstance(properties, dict):
        return document
    found = properties.keys() & NUMERIC_PROPERTIES  # iterates the smaller of the two
    if not found:
        return document
    fixed = {}
    for key in sorted(found):
        value = properties[key]
        if isinstance(value, str) and (number := _number(value, key)) is not None:
            fixed[key] = number
            warnings.append(f"properties.{key}: a number given as a string, stored as a number")
    if fixed:
        document = {**document, "properties": {**properties, **fixed}}
    return document


def _number(text: str, key: str = "") -> int | float | None:
    """The finite number `text` spells, an int for integer fields; None when it spells none."""
    try:
        value = float(text)
    except ValueError:
        return None
    if not math.isfinite(value):
        return None
    if key in INTEGER_PROPERTIES:
        return int(value) if value.is_integer() else None
    return int(value) if value.is_integer() and "." not in text and "e" not in text else value


def _numbers(values: list[Any]) -> list[int | float] | None:
    """`values` as numbers (numeric strings converted), or None when one is not a number."""
    numbers: list[int | float] = []
    for value in values:
        number = _number(value) if isinstance(value, str) else value
        if isinstance(number, bool) or not isinstance(number, int | float):
            return None
        numbers.append(number)
    return numbers


def _with_overall_bbox(collection: dict[str, Any]) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The collection with numeric bboxes and a first bbox that contains the others."""
    try:
        boxes = collection["extent"]["spatial"]["bbox"]
    except (KeyError, TypeError):
        return collection, ()
    if not isinstance(boxes, list) or not boxes or not all(isinstance(b, list) for b in boxes):
        return collection, ()
    parsed = [_numbers(box) for box in boxes]
    numeric = [box for box in parsed if box is not None and len(box) in (4, 6)]
    if len(numeric) != len(parsed):
        return collection, ()  # malformed: left for the validation to report as it is
    warnings = []
    if numeric != boxes:
        warnings.append("extent.spatial.bbox: numbers given as strings, stored as numbers")
    overall, others = numeric[0], numeric[1:]
    if not all(_contains(overall, box) for box in others):
        numeric = [_union(numeric), *numeric]
        warnings.append(
            "extent.spatial.bbox: the first (overall) bbox did not contain the others; "
            "their union was put first"
        )
    elif len(numeric) == 2:
        numeric = [overall]
        warnings.append(
            "extent.spatial.bbox: a single sub-bbox inside the overall one was dropped "
            "(STAC 1.1.0 allows none or at least two)"
        )
    if not warnings:
        return collection, ()
    extent = collection["extent"]
    spatial = {**extent["spatial"], "bbox": numeric}
    return {**collection, "extent": {**extent, "spatial": spatial}}, tuple(warnings)


def _corners(box: list[int | float]) -> tuple[float, float, float, float]:
    """West, south, east, north of a 2D or 3D bbox."""
    if len(box) == 6:
        return box[0], box[1], box[3], box[4]
    return box[0], box[1], box[2], box[3]


def _spans(west: float, east: float) -> list[tuple[float, float]]:
    """The longitude intervals of a box; one that crosses the antimeridian has two."""
    return [(west, east)] if west <= east else [(west, 180.0), (-180.0, east)]


def _contains(outer: list[int | float], inner: list[int | float]) -> bool:
    west, south, east, north = _corners(outer)
    inner_west, inner_south, inner_east, inner_north = _corners(inner)
    if inner_south < south or inner_north > north:
        return False
    outer_spans = _spans(west, east)
    return all(
        any(low <= start and end <= high for low, high in outer_spans)
        for start, end in _spans(inner_west, inner_east)
    )


def _union(boxes: list[list[int | float]]) -> list[int | float]:
    """The smallest box of the first box's dimensions that contains every box (the whole
    longitude range when one crosses the antimeridian: a safe overall extent)."""
    corners = [_corners(box) for box in boxes]
    south = min(c[1] for c in corners)
    north = max(c[3] for c in corners)
    if any(c[0] > c[2] for c in corners):
        west, east = -180.0, 180.0
    else:
        west, east = min(c[0] for c in corners), max(c[2] for c in corners)
    if len(boxes[0]) == 4:
        return [west, south, east, north]
    heights = [value for box in boxes if len(box) == 6 for value in (box[2], box[5])]
    return [west, south, min(heights), east, north, max(heights)]
