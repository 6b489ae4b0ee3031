"""Validate cube items offline: STAC core (shipped with pystac) and the extension schemas and
PROJJSON (which the datacube and projection schemas reference) from the mirror in
tests/data/schemas (`<host>/<path>` for `https://<host>/<path>`). No fetch leaves the machine."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pystac import STACObjectType
from pystac.validation import JsonSchemaSTACValidator, validate_dict

from tests.stac_schemas import offline_schemas

MIRROR = Path(__file__).parents[1] / "data" / "schemas"

PROJJSON = "https://proj.org/schemas/v0.7/projjson.schema.json"
EXTENSIONS = [
    "https://stac-extensions.github.io/datacube/v2.3.0/schema.json",
    "https://stac-extensions.github.io/projection/v2.0.0/schema.json",
    "https://stac-extensions.github.io/zarr/v1.1.0/schema.json",
    "https://stac-extensions.github.io/xarray-assets/v1.0.0/schema.json",
]
OPTIONAL_EXTENSIONS = [  # declared by cubes whose inputs state classes
    "https://stac-extensions.github.io/classification/v2.0.0/schema.json",
]
ITEM_SCHEMA = "https://schemas.stacspec.org/v1.1.0/item-spec/json-schema/item.json"


def mirrored(url: str) -> dict[str, Any]:
    parts = urlsplit(url)
    return json.loads((MIRROR / parts.netloc / parts.path.lstrip("/")).read_text())


def _validator() -> JsonSchemaSTACValidator:
    validator = JsonSchemaSTACValidator()
    for url in [*EXTENSIONS, *OPTIONAL_EXTENSIONS, PROJJSON]:
        validator.schema_cache[url] = mirrored(url)
    return validator


def validate(stac: dict[str, Any], kind: STACObjectType = STACObjectType.ITEM) -> list[str]:
    """Raises pystac.errors.STACValidationError; returns the schemas validated against."""
    with offline_schemas() as log:
        validated = validate_dict(json.loads(json.dumps(stac)), kind, validator=_validator())
    assert log.refused == [], f"fetches refused: {log.refused}"
    return [str(uri) for uri in validated if uri]
