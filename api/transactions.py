"""Transactions and bulk transactions: enabled only when `CUBESTAC_API_KEY` is set."""

from __future__ import annotations

from typing import Any

import attr
from fastapi import Request
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection
from stac_fastapi.extensions.bulk_transactions import (
    AsyncBaseBulkTransactionsClient,
    BulkTransactionMethod,
    Items,
)
from stac_fastapi.extensions.transaction import AsyncBaseTransactionsClient
from stac_fastapi.extensions.transaction.request import (
    PartialCollection,
    PartialItem,
    PatchOperation,
)
from stac_fastapi.types import stac
from stac_pydantic import Collection, Item, ItemCollection
from starlette.responses import Response

from api.links import base_url
from api.patching import apply_patch
from api.responses import GeoJSONResponse, ORJSONResponse
from api.stac_documents import (
    Warned,
    normalised_collection,
    normalised_item,
    warning_texts,
    with_warnings,
)
from api.state import app_state
from catalogue.database import Database
from catalogue.errors import CollectionNotEmptyError, ConflictError, InvalidInputError
from catalogue.repositories import collections as collection_repo
from catalogue.repositories import items as item_repo
from catalogue.serializers import item_to_row, row_to_collection, row_to_item


def _database(request: Request) -> Database:
    """The catalogue; every write goes through `Database.transaction` (retried on a
    deadlock or serialization failure)."""
    return app_state(request).database


def _json(model: Any) -> dict[str, Any]:
    if model is None:  # a JSON `null` body passes FastAPI's optional body
        raise InvalidInputError("request body: a JSON object is required")
    return model.model_dump(mode="json", exclude_unset=True, by_alias=True)


def _checked_item(item: dict[str, Any], collection_id: str, item_id: str | None = None) -> dict:
    """The row for `item`, refusing an id or collection that contradicts the URL."""
    if item.get("collection") not in (None, collection_id):
        raise InvalidInputError(
            f"item collection {item.get('collection')!r} does not match the URL's {collection_id!r}"
        )
    if item_id is not None and item.get("id") != item_id:
        raise InvalidInputError(f"item id {item.get('id')!r} does not match the URL's {item_id!r}")
    return item_to_row(item, collection_id)


def _validate_stac_item(key: str, item: dict[str, Any]) -> None:
    """Bulk bodies arrive as plain dicts; hold each to the same stac-pydantic model as POST."""
    _validate(Item, item, f"bulk item {key!r} is not a valid STAC item")


def _validate(model: type[Item] | type[Collection], document: dict[str, Any], what: str) -> None:
    """Plain dicts (bulk items, patched documents) held to the same model as a POST body."""
    try:
        model.model_validate(document)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc'])}: {problem['msg']}"
            for problem in error.errors()[:5]
        )
        raise InvalidInputError(f"{what}: {problems}") from error


@attr.s
class TransactionsClient(AsyncBaseTransactionsClient):
    """Create, replace, patch and delete collections and items."""

    async def create_item(
        self, collection_id: str, item: Item | ItemCollection, **kwargs: Any
    ) -> stac.Item | Response | None:
        request: Request = kwargs["request"]
        if isinstance(item, ItemCollection):
            rows = [_checked_item(_json(feature), collection_id) for feature in item.features]
            inserted = await _database(request).transaction(
                lambda conn: item_repo.insert_items(conn, rows)
            )
            counts = {"received": len(rows), "success": inserted, "skipped": 0, "errors": []}
            return ORJSONResponse(  # a JSON body, as the route documents (not an empty 201)
                {**counts, "message": f"inserted {inserted} items"}, status_code=201
            )
        row = _checked_item(_json(item), collection_id)
        await _database(request).transaction(lambda conn: item_repo.create_item(conn, row))
        return _item_response(request, row["content"], status_code=201)

    async def update_item(
        self, collection_id: str, item_id: str, item: Item, **kwargs: Any
    ) -> stac.Item | Response | None:
        request: Request = kwargs["request"]
        row = _checked_item(_json(item), collection_id, item_id)
        await _database(request).transaction(lambda conn: item_repo.replace_item(conn, row))
        return _item_response(request, row["content"])

    async def patch_item(
        self,
        collection_id: str,
        item_id: str,
        patch: PartialItem | list[PatchOperation],
        **kwargs: Any,
    ) -> stac.Item | Response | None:
        request: Request = kwargs["request"]
        warned: list[Warned] = []

        async def patched_item(conn: AsyncConnection) -> dict[str, Any]:
            warned.clear()  # a retried transaction patches again
            current = await item_repo.get_item(conn, collection_id, item_id)
            patched = normalised_item(apply_patch(current, patch), warned)
            _validate(Item, patched, "the patched item is not a valid STAC item")
            row = _checked_item(patched, collection_id, item_id)
            await item_repo.replace_item(conn, row)
            return row

        row = await _database(request).transaction(patched_item)
        return with_warnings(_item_response(request, row["content"]), warned)

    async def delete_item(
        self, item_id: str, collection_id: str, **kwargs: Any
    ) -> stac.Item | Response | None:
        request: Request = kwargs["request"]
        await _database(request).transaction(
            lambda conn: item_repo.delete_item(conn, collection_id, item_id)
        )
        return Response(status_code=204)

    async def create_collection(
        self, collection: Collection, **kwargs: Any
    ) -> stac.Collection | Response | None:
        request: Request = kwargs["request"]
        body = _json(collection)
        content = await _database(request).transaction(
            lambda conn: collection_repo.create_collection(conn, body)
        )
        return ORJSONResponse(row_to_collection(content, base_url(request)), status_code=201)

    async def update_collection(
        self, collection_id: str, collection: Collection, **kwargs: Any
    ) -> stac.Collection | Response | None:
        request: Request = kwargs["request"]
        body = _json(collection)
        if body.get("id") != collection_id:
            raise InvalidInputError(
                f"collection id {body.get('id')!r} does not match the URL's {collection_id!r}"
            )
        content = await _database(request).transaction(
            lambda conn: collection_repo.replace_collection(conn, collection_id, body)
        )
        return ORJSONResponse(row_to_collection(content, base_url(request)))

    async def patch_collection(
        self,
        collection_id: str,
        patch: PartialCollection | list[PatchOperation],
        **kwargs: Any,
    ) -> stac.Collection | Response | None:
        request: Request = kwargs["request"]
        warned: list[Warned] = []

        async def patched_collection(conn: AsyncConnection) -> dict[str, Any]:
            warned.clear()  # a retried transaction patches again
            current = await collection_repo.get_collection(conn, collection_id)
            patched = normalised_collection(apply_patch(current, patch), warned)
            if patched.get("id") != collection_id:
                raise InvalidInputError("a patch may not change the collection id")
            _validate(Collection, patched, "the patched collection is not a valid STAC collection")
            return await collection_repo.replace_collection(conn, collection_id, patched)

        content = await _database(request).transaction(patched_collection)
        return with_warnings(ORJSONResponse(row_to_collection(content, base_url(request))), warned)

    async def delete_collection(
        self, collection_id: str, **kwargs: Any
    ) -> stac.Collection | Response | None:
        request: Request = kwargs["request"]
        try:
            await _database(request).transaction(
                lambda conn: collection_repo.delete_collection(
                    conn, collection_id, cascade=kwargs.get("cascade", False)
                )
            )
        except CollectionNotEmptyError as error:
            raise ConflictError(
                f"{error}: delete the items first, or send DELETE {request.url.path}"
                "?cascade=true to delete the collection with its items"
            ) from error
        return Response(status_code=204)


@attr.s
class BulkTransactionsClient(AsyncBaseBulkTransactionsClient):
    """`POST /collections/{id}/bulk_items`: insert (all new) or upsert, in one transaction."""

    async def bulk_item_insert(self, items: Items, **kwargs: Any) -> Any:
        request: Request = kwargs["request"]
        collection_id = request.path_params["collection_id"]
        rows: list[dict[str, Any]] = []
        warned: list[Warned] = []  # what was changed to make the items current STAC
        for key, item in items.items.items():
            if not isinstance(item, dict) or item.get("id") != key:
                raise InvalidInputError(f"bulk item {key!r}: the key must equal the item's id")
            current = normalised_item(item, warned)  # made current STAC before validation
            _validate_stac_item(key, current)
            rows.append(_checked_item(current, collection_id))
        if items.method == BulkTransactionMethod.UPSERT:
            counts = await _database(request).transaction(
                lambda conn: item_repo.upsert_items(conn, rows)
            )
            message = (
                f"upserted {len(rows)} items: {counts.inserted} new, {counts.updated} "
                f"changed, {counts.unchanged} unchanged"
            )
        else:
            inserted = await _database(request).transaction(
                lambda conn: item_repo.insert_items(conn, rows)
            )
            message = f"inserted {inserted} items"
        # the fields of stac-fastapi's BulkTransactionModel (the documented response); all
        # or nothing, so every received item succeeded
        body = {"received": len(rows), "success": len(rows), "skipped": 0, "errors": []}
        if warned:
            body["warnings"] = warning_texts(warned)
        return with_warnings(ORJSONResponse({**body, "message": message}), warned)


def _item_response(request: Request, content: dict[str, Any], status_code: int = 200) -> Response:
    """The written item as reads return it: links under this base URL and cube asset hrefs
    rewritten the same way (a `/cubes` URL or the public base, never the stored local path)."""
    item = row_to_item(content, base_url(request), app_state(request).cube_hrefs)
    return GeoJSONResponse(item, status_code=status_code)
