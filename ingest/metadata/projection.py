"""The `proj:` fields of harvested items, written so that today's readers all find the CRS.

Projection v2.0.0 names the CRS `proj:code` ("EPSG:3035") and drops `proj:epsg`; its schema
rejects `proj:epsg`. The readers most people run still look for `proj:epsg` only: GDAL 3.6's
STACIT driver (it also wants a projection extension URI in `stac_extensions`) and stackstac
0.5.1. odc-stac 0.5.3 and pystac 1.12+ read `proj:code`. Projection v1.2.0 is the version
that defines both fields, so harvested items declare v1.2.0 and carry both, with the same
CRS; a CRS without an EPSG code is given as `proj:wkt2` with both codes null.
(https://github.com/stac-extensions/projection/blob/v1.2.0/README.md)

Completing an upstream item (`ingest.metadata.completion`) keeps the version it declares:
`proj:epsg` is only added under v1.x, since the v2.0.0 schema rejects it.
"""

from __future__ import annotations

from typing import Any

PROJECTION_EXTENSION = "https://stac-extensions.github.io/projection/v1.2.0/schema.json"
PROJECTION_PREFIX = "https://stac-extensions.github.io/projection/"
PROJECTION_V2_PREFIX = PROJECTION_PREFIX + "v2."
CRS_NAMES = frozenset({"proj:epsg", "proj:code", "proj:wkt2", "proj:projjson"})


def crs_fields(epsg: int | None, wkt2: str | None) -> dict[str, Any]:
    """`proj:epsg` and `proj:code` of an EPSG CRS, else `proj:wkt2` with null codes."""
    if epsg:
        return {"proj:epsg": int(epsg), "proj:code": f"EPSG:{int(epsg)}"}
    return {"proj:epsg": None, "proj:code": None, "proj:wkt2": wkt2}


def declared_projection(extensions: list[str]) -> str | None:
    """The projection extension URI an item declares, if any."""
    return next((uri for uri in extensions if uri.startswith(PROJECTION_PREFIX)), None)
