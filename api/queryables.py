"""`/queryables` and `/collections/{id}/queryables`: JSON Schema derived from the data.

https://github.com/stac-api-extensions/filter#queryables — the types are the JSON types
seen in the items' properties; short string properties with few distinct values get an
`enum`, which STAC Browser turns into a drop-down. Where items hold `cube:variables` or
`cube:dimensions`, the cube properties derived from them (`catalogue.cube_properties`:
variable names and units, dimension names, time step, resolution) are listed too.
"""

from __future__ import annotations

from typing import Any

import attr
from fastapi import Request
from stac_fastapi.extensions.filter.client import AsyncBaseFiltersClient

from api.links import base_url
from api.responses import ORJSONResponse
from api.state import app_state
from catalogue import cube_properties
from catalogue.repositories import collections as collection_repo
from catalogue.repositories.queryables import list_queryables

JSON_SCHEMA = "https://json-schema.org/draft/2019-09/schema"
COLUMN_SCHEMAS: dict[str, dict[str, Any]] = {
    "id": {"title": "Item ID", "type": "string"},
    "collection": {"title": "Collection ID", "type": "string"},
    "geometry": {"title": "Footprint", "$ref": "https://geojson.org/schema/Geometry.json"},
    "datetime": {"title": "Acquired", "type": "string", "format": "date-time"},
    "start_datetime": {"title": "Start", "type": "string", "format": "date-time"},
    "end_datetime": {"title": "End", "type": "string", "format": "date-time"},
}


def cube_schemas(found: dict[str, Any], types: frozenset[str] | None = None) -> dict[str, Any]:
    """The cube properties' schemas when `found` shows cube items (of `types` only, if given:
    the sortables offer the scalar ones)."""
    if not cube_properties.SOURCE_PROPERTIES & found.keys():
        return {}
    return {
        name: schema
        for name, schema in cube_properties.SCHEMAS.items()
        if types is None or schema["type"] in types
    }


def property_schema(types: set[str], values: set[Any] | None) -> dict[str, Any]:
    concrete = sorted(types - {"null"}) or ["null"]
    schema: dict[str, Any] = {"type": concrete[0] if len(concrete) == 1 else concrete}
    if values and concrete == ["string"]:
        schema["enum"] = sorted(values)
    return schema


async def found_properties(
    request: Request, collection_id: str | None
) -> dict[str, tuple[set[str], set[Any] | None]]:
    """The properties the items hold (of one collection, or all), with their JSON types and
    enum values: what queryables and item sortables are derived from. An unknown
    collection is a 404, not an empty schema."""
    async with app_state(request).database.read() as conn:
        if collection_id is not None:
            await collection_repo.get_collection(conn, collection_id)
        return await list_queryables(conn, collection_id)


@attr.s
class QueryablesClient(AsyncBaseFiltersClient):
    async def get_queryables(
        self, collection_id: str | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        request: Request = kwargs["request"]
        root = base_url(request)
        found = await found_properties(request, collection_id)
        properties = dict(COLUMN_SCHEMAS) | cube_schemas(found)
        for name, (types, values) in found.items():
            if name not in properties:
                properties[name] = property_schema(types, values)
        schema_id = (
            f"{root}collections/{collection_id}/queryables"
            if collection_id
            else f"{root}queryables"
        )
        body = {
            "$schema": JSON_SCHEMA,
            "$id": schema_id,
            "type": "object",
            "title": "Queryables",
            "properties": properties,
            "additionalProperties": False,
        }
        return ORJSONResponse(body, media_type="application/schema+json")  # type: ignore[return-value]  # a ready response skips FastAPI's encoder
