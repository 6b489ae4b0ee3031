"""`/sortables`, `/collections/{id}/sortables` and `/collections-sortables`: what `sortby`
takes, as JSON Schema derived from the data (like the queryables).

https://github.com/stac-api-extensions/sort#sortables — STAC Browser offers these names in
its sort list (with their `title`) instead of a generic list (Title, Created, Updated)
that most catalogues cannot sort on. Item sortables are the columns and the properties
that hold a string, number or boolean; any other queryable is accepted too (JSONB order),
but is no sensible sort key to offer.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import attr
from fastapi import Request
from stac_fastapi.extensions.sort.client import AsyncBaseSortablesClient

from api.links import base_url
from api.queryables import (
    COLUMN_SCHEMAS,
    JSON_SCHEMA,
    cube_schemas,
    found_properties,
    property_schema,
)
from api.responses import ORJSONResponse
from api.state import app_state
from catalogue.repositories.collection_search import SORTABLE_JSON_TYPES, sortable_fields
from catalogue.repositories.sorting import COLUMN_FIELDS

SORTABLE_COLUMNS = {name: COLUMN_SCHEMAS[name] for name in COLUMN_FIELDS}
COLLECTION_COLUMNS: dict[str, dict[str, Any]] = {
    "id": {"title": "Collection ID", "type": "string"},
}
NOT_COLLECTION_SORT_KEYS = frozenset({"type", "stac_version"})  # the same in every collection


def _schema(schema_id: str, properties: dict[str, Any]) -> ORJSONResponse:
    body = {
        "$schema": JSON_SCHEMA,
        "$id": schema_id,
        "type": "object",
        "title": "Sortables",
        "properties": properties,
        "additionalProperties": False,
    }
    return ORJSONResponse(body, media_type="application/schema+json")


def _scalar_properties(found: dict[str, tuple[set[str], Any]]) -> dict[str, Any]:
    return {
        name: property_schema(types & set(SORTABLE_JSON_TYPES), None)
        for name, (types, _) in found.items()
        if types & set(SORTABLE_JSON_TYPES)
    }


def _given(request: Request | None) -> Request:
    """stac-fastapi always passes the request; its base signature has it optional."""
    if request is None:
        raise TypeError("the sortables endpoints need the request")
    return request


@attr.s
class SortablesClient(AsyncBaseSortablesClient):
    async def get_sortables(self, request: Request | None = None, **kwargs: Any) -> dict[str, Any]:
        """Sort keys for /search: over the whole catalogue."""
        return await self._item_sortables(_given(request), None)  # type: ignore[return-value]  # a ready response skips FastAPI's encoder

    async def get_collection_sortables(
        self, collection_id: str, request: Request | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """Sort keys for /collections/{id}/items: the properties that collection holds."""
        return await self._item_sortables(_given(request), collection_id)  # type: ignore[return-value]  # as above

    async def get_collections_sortables(
        self, request: Request | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """Sort keys for collection search: the top-level scalar fields collections hold."""
        request = _given(request)
        async with app_state(request).database.read() as conn:
            found = await sortable_fields(conn)
        properties = dict(COLLECTION_COLUMNS)
        for name, types in sorted(found.items()):
            if name not in NOT_COLLECTION_SORT_KEYS:
                properties.setdefault(name, property_schema(types, None))
        return _schema(f"{base_url(request)}collections-sortables", properties)  # type: ignore[return-value]  # as above

    async def _item_sortables(self, request: Request, collection_id: str | None) -> ORJSONResponse:
        root = base_url(request)
        found = await found_properties(request, collection_id)
        properties = dict(SORTABLE_COLUMNS) | cube_schemas(found, frozenset(SORTABLE_JSON_TYPES))
        for name, schema in _scalar_properties(found).items():
            properties.setdefault(name, schema)
        schema_id = (
            f"{root}collections/{quote(collection_id, safe='')}/sortables"
            if collection_id is not None
            else f"{root}sortables"
        )
        return _schema(schema_id, properties)
