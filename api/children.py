"""The Children extension: `GET /children`, the landing page's child collections in pages.

https://github.com/stac-api-extensions/children (v1.0.0-rc.2): every child the landing
page links (`rel=child`) is a collection, so `/children` is the collections in id order,
whole documents as `/collections/{id}` serves them, `limit` per page (default
`CUBESTAC_API__MAX_CHILD_LINKS`, the number of `child` links the landing page carries, so
that its first page holds exactly those) and `next` links with a keyset token.

A catalogue with more collections than that cap lists the first ones as `child` links on
the landing page; clients reach the rest through `/children` (`rel=children`) or through
`/collections` (`rel=data`), whose `next` links STAC Browser follows ("load more").
"""

from typing import Annotated, Any

import attr
from fastapi import APIRouter, FastAPI, Query, Request
from stac_fastapi.types.extension import ApiExtension

from api.links import base_url, link, next_get_link, self_href
from api.responses import ORJSONResponse
from api.state import app_state
from catalogue.repositories.collection_search import search_collections
from catalogue.search import CollectionQuery, PageToken
from catalogue.serializers import row_to_collection
from catalogue.settings import ApiSettings

CHILDREN = "https://api.stacspec.org/v1.0.0-rc.2/children"


@attr.s
class ChildrenExtension(ApiExtension):
    """Registers `GET /children`; its conformance class goes to the landing page."""

    settings: ApiSettings = attr.ib(factory=ApiSettings)
    conformance_classes: list[str] = attr.ib(factory=lambda: [CHILDREN])

    def register(self, app: FastAPI) -> None:
        settings = self.settings

        async def children(
            request: Request,
            limit: Annotated[
                int | None,
                Query(ge=1, description="Children per page (default: the landing page's)"),
            ] = None,
            token: Annotated[str | None, Query(description="From a `next` link")] = None,
        ) -> ORJSONResponse:
            """The catalogue's child collections, a page at a time."""
            size = min(limit or settings.max_child_links, settings.max_limit)
            query = CollectionQuery(limit=size, token=PageToken.decode(token) if token else None)
            async with app_state(request).database.read() as conn:
                page = await search_collections(conn, query)
            root = base_url(request)
            links: list[dict[str, Any]] = [link("root", root), link("self", self_href(request))]
            if page.next_token is not None:
                links.append(next_get_link(request, page.next_token.encode(), "application/json"))
            body = {
                "children": [row_to_collection(content, root) for content in page.collections],
                "links": links,
                "numberMatched": page.number_matched,
                "numberReturned": len(page.collections),
            }
            return ORJSONResponse(body)

        router = APIRouter(prefix=app.state.router_prefix)
        router.add_api_route("/children", children, methods=["GET"], name="Children")
        app.include_router(router, tags=["Children Extension"])
