"""`POST /collections/{collection_id}/bulk_items`, with its path parameter declared.

stac-fastapi's `BulkTransactionExtension` (7.0) registers the route with a request model
that has only the body, so the OpenAPI document names `{collection_id}` in the path but
declares no such parameter, and openapi-spec-validator refuses `/api`. The route here is
the extension's own, with a request model that adds the collection id from the path (the
same `CollectionUri` the Transactions extension uses); the client reads it from `kwargs`.
"""

from __future__ import annotations

from typing import Annotated

import attr
from fastapi import APIRouter, Body, FastAPI
from stac_fastapi.api.models import CollectionUri
from stac_fastapi.api.routes import create_async_endpoint
from stac_fastapi.extensions.bulk_transactions import BulkTransactionExtension, Items
from stac_fastapi.extensions.bulk_transactions.bulk_transactions import BulkTransactionModel

from api.responses import ORJSONResponse


@attr.s
class BulkItemsRequest(CollectionUri):
    """The collection id from the path and the bulk body (`items`, `method`)."""

    items: Annotated[Items, Body()] = attr.ib()


@attr.s
class BulkItemsExtension(BulkTransactionExtension):
    """The bulk transactions extension, its route declaring every path parameter."""

    def register(self, app: FastAPI) -> None:
        router = APIRouter(prefix=app.state.router_prefix)
        router.add_api_route(
            name="Bulk Create Item",
            path="/collections/{collection_id}/bulk_items",
            response_model=BulkTransactionModel,
            responses={200: {"content": {"application/json": {}}, "model": BulkTransactionModel}},
            response_class=ORJSONResponse,
            response_model_exclude_unset=False,
            methods=["POST"],
            endpoint=create_async_endpoint(self.client.bulk_item_insert, BulkItemsRequest),
            dependencies=self.route_dependencies,
        )
        app.include_router(router, tags=["Bulk Transaction Extension"])
