"""`DELETE /collections/{collection_id}[?cascade=true]`: the Transaction extension's route
with an explicit opt-in for deleting a collection's items along with it (issue 14).

No `from __future__ import annotations` here: FastAPI reads the request model's field
annotations at run time, and string annotations on an attrs class do not resolve.
"""

from typing import Annotated

import attr
from fastapi import Query
from stac_fastapi.api.models import CollectionUri
from stac_fastapi.api.routes import create_async_endpoint
from stac_fastapi.extensions.transaction import TransactionExtension


@attr.s
class DeleteCollectionUri(CollectionUri):
    """DELETE /collections/{collection_id}[?cascade=true]."""

    cascade: Annotated[
        bool,
        Query(
            description="Also delete the collection's items. Without it, deleting a "
            "collection that still holds items is refused with 409."
        ),
    ] = attr.ib(default=False)


@attr.s
class CascadingTransactionExtension(TransactionExtension):
    """stac-fastapi's Transaction extension with `?cascade=true` on DELETE collection.

    The extension routes DELETE with only the path; this registers the same route with
    `DeleteCollectionUri`, so the opt-in is validated and shown in the OpenAPI document.
    """

    def register_delete_collection(self) -> None:
        self.router.add_api_route(
            name="Delete Collection",
            path="/collections/{collection_id}",
            response_class=self.response_class,
            methods=["DELETE"],
            status_code=204,
            responses={409: {"description": "the collection still holds items"}},
            endpoint=create_async_endpoint(self.client.delete_collection, DeleteCollectionUri),
            dependencies=self.route_dependencies,
        )
