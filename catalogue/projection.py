"""The `proj:` fields of stored items, written so that today's readers all find the CRS.

Projection v2.0.0 names the CRS `proj:code` ("EPSG:3035") and drops `proj:epsg`; its schema
rejects `proj:epsg`. The readers most people run still look for `proj:epsg` only: GDAL 3.6's
STACIT driver (it also wants a projection extension URI in `stac_extensions`) and stackstac
0.5.1. odc-stac 0.5.3 and pystac 1.12+ read `proj:code`. Projection v1.2.0 is the version
that defines both fields, so harvested items declare v1.2.0 and carry both, with the same
CRS; a CRS without an EPSG code is given as `proj:wkt2` with both codes null.
(https://github.com/stac-extensions/projection/blob/v1.2.0/README.md)

Completing an upstream item (`ingest.metadata.completion`) keeps the version it declares:
`proj:epsg` is only added under v1.x, since the v2.0.0 schema rejects it. An older document
that used projection v1 (`catalogue.stac_migration`) is kept at v1.2.0 with both fields
rather than moved to v2.0.0 as pystac's migration does, for the same readers.
"""

from __future__ import annotations

from typing import Any

PROJECTION_EXTENSION = "https://stac-extensions.github.io/projection/v1.2.0/schema.json"
PROJECTION_PREFIX = "https://stac-extensions.github.io/projection/"
PROJECTION_V2_PREFIX = PROJECTION_PREFIX + "v2."
# What cube items declare: written by this project, they carry `proj:code` only.
PROJECTION_V2_EXTENSION = PROJECTION_PREFIX + "v2.0.0/schema.json"
CRS_NAMES = frozenset({"proj:epsg", "proj:code", "proj:wkt2", "proj:projjson"})


def crs_fields(epsg: int | None, wkt2: str | None) -> dict[str, Any]:
    """`proj:epsg` and `proj:code` of an EPSG CRS, else `proj:wkt2` with null codes."""
    if epsg:
        return {"proj:epsg": int(epsg), "proj:code": f"EPSG:{int(epsg)}"}
    return {"proj:epsg": None, "proj:code": None, "proj:wkt2": wkt2}


def stated_crs(fields: dict[str, Any]) -> Any:
    """The CRS that an item's or asset's `proj:` fields state, as PROJ takes it: `proj:code`,
    `proj:wkt2`, `proj:projjson` (a dict), else `proj:epsg` as `EPSG:n`; None when none."""
    for name in ("proj:code", "proj:wkt2", "proj:projjson"):
        if fields.get(name):
            return fields[name]
    epsg = fields.get("proj:epsg")
    return f"EPSG:{epsg}" if epsg else None


def declared_projection(extensions: list[str]) -> str | None:
    """The projection extension URI an item declares, if any."""
    return next((uri for uri in extensions if uri.startswith(PROJECTION_PREFIX)), None)


def _epsg_of(code: Any) -> int | None:
    if isinstance(code, str) and code.upper().startswith("EPSG:") and code[5:].isdigit():
        return int(code[5:])
    return None


def _with_epsg(fields: Any) -> Any:
    """`fields` (properties, an asset, ...) with `proj:epsg` beside an EPSG `proj:code`."""
    if not isinstance(fields, dict) or "proj:epsg" in fields:
        return fields
    epsg = _epsg_of(fields.get("proj:code"))
    return fields if epsg is None else {**fields, "proj:epsg": epsg}


def declares_projection_v1(document: dict[str, Any]) -> bool:
    """Whether a (pre-migration) document uses projection v1: a v1.x URI, the short name
    older STAC versions used, or `proj:epsg` in its properties."""
    extensions = document.get("stac_extensions")
    names = extensions if isinstance(extensions, list) else []
    if "projection" in names or any(
        isinstance(uri, str) and uri.startswith(PROJECTION_PREFIX + "v1.") for uri in names
    ):
        return True
    properties = document.get("properties")
    return isinstance(properties, dict) and "proj:epsg" in properties


def as_projection_v1_2(document: dict[str, Any]) -> dict[str, Any]:
    """A migrated item or collection that pystac moved to projection v2.0.0 (which drops
    `proj:epsg`) given back as v1.2.0 with `proj:epsg` beside every EPSG `proj:code`, in
    its properties, assets and item_assets, so the readers above still find the CRS."""
    extensions = document.get("stac_extensions")
    if not isinstance(extensions, list):
        return document
    v2 = [
        uri for uri in extensions if isinstance(uri, str) and uri.startswith(PROJECTION_V2_PREFIX)
    ]
    if not v2:
        return document
    result = dict(document)
    result["stac_extensions"] = [PROJECTION_EXTENSION if uri in v2 else uri for uri in extensions]
    if "properties" in result:
        result["properties"] = _with_epsg(result["properties"])
    for member in ("assets", "item_assets"):
        if isinstance(result.get(member), dict):
            result[member] = {key: _with_epsg(value) for key, value in result[member].items()}
    return result
