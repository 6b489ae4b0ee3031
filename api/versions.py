"""`/collections/{collection_id}/items/{item_id}/versions/{snapshot_id}`: one past (or the
current) version of a versioned (Icechunk) cube item, the target of its
`predecessor-version` / `successor-version` links (`catalogue.version_links`).

The catalogue keeps the latest item only; each commit of the cube's repository keeps the
item as built in its metadata (`cubes.icechunk_store`). A version is served when it is on
the history of branch `main` (a commit reset away after a failed publish is not), with
its `version`, its links to the versions before and after, and its Icechunk assets pinned
to the snapshot (asset field `version`, the latest version's too: a version's URL opens
that version for good), so that xpystac or icechunk opens that version.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from api.links import GEOJSON, base_url, self_href
from api.responses import ORJSONResponse
from api.state import app_state
from catalogue.cube_layout import DATA_ASSET
from catalogue.errors import NotFoundError
from catalogue.icechunk_repo import BRANCH, is_icechunk, open_repository
from catalogue.repositories.items import get_item
from catalogue.serializers import row_to_item
from catalogue.version_links import add_version_fields, pin_assets

VERSION_PATH = "/collections/{collection_id}/items/{item_id}/versions/{snapshot_id}"
ITEM_KEY = "item"  # the commit metadata's key of the item as built


def add_version_routes(app: FastAPI) -> None:
    router = APIRouter(tags=["Versioned cubes"])

    @router.get(VERSION_PATH, summary="One version of a versioned cube item")
    async def version(
        request: Request, collection_id: str, item_id: str, snapshot_id: str
    ) -> Response:
        state = app_state(request)
        async with state.database.read() as conn:
            current = await get_item(conn, collection_id, item_id)
        asset = (current.get("assets") or {}).get(DATA_ASSET)
        if not is_icechunk(asset):
            raise NotFoundError(f"item {item_id!r} in {collection_id!r} is not versioned")
        assert isinstance(asset, Mapping)  # is_icechunk says so
        options = dict(asset.get("xarray:storage_options") or {})
        item = await run_in_threadpool(version_item, str(asset["href"]), options, snapshot_id)
        if item is None:
            raise NotFoundError(f"item {item_id!r} has no version {snapshot_id!r}")
        content = row_to_item(item, base_url(request), state.cube_hrefs)
        for link in content["links"]:
            if link.get("rel") == "self":
                link["href"] = self_href(request)
        return ORJSONResponse(content, media_type=GEOJSON)

    app.include_router(router)


def version_item(
    repository: str, options: dict[str, Any], snapshot_id: str
) -> dict[str, Any] | None:
    """The item of version `snapshot_id` of the repository, None when `main`'s history has
    no such version (or its commit kept no item)."""
    history = list(open_repository(repository, options).ancestry(branch=BRANCH))
    index = next((i for i, snap in enumerate(history) if snap.id == snapshot_id), None)
    if index is None or not isinstance(history[index].metadata.get(ITEM_KEY), Mapping):
        return None
    item = copy.deepcopy(dict(history[index].metadata[ITEM_KEY]))
    before = history[index + 1] if index + 1 < len(history) else None
    predecessor = before.id if before is not None and before.parent_id is not None else None
    successor = history[index - 1].id if index > 0 else None
    add_version_fields(item, snapshot_id, predecessor, options, successor)
    return pin_assets(item, snapshot_id)
