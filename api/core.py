"""The core STAC API client: landing page, collections, items and item search.

Responses are returned ready-made rather than as dicts, so that FastAPI's generic encoder
never walks thousands of nested item dicts. Items arrive as the database printed them and
are sent as text with their links spliced in (`catalogue.serializers.item_json_text`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from time import monotonic
from typing import Any
from urllib.parse import quote

import attr
import orjson
from fastapi import Request, Response
from stac_fastapi.extensions.collection_search.client import AsyncBaseCollectionSearchClient
from stac_fastapi.extensions.collection_search.request import BaseCollectionSearchPostRequest
from stac_fastapi.types import stac
from stac_fastapi.types.core import AsyncBaseCoreClient
from stac_fastapi.types.rfc3339 import DateTimeType
from stac_fastapi.types.search import BaseSearchPostRequest
from stac_pydantic.shared import BBox

from api.fields import FieldSelection
from api.limits import check_q, check_search, filter_limits, page_limit
from api.links import GEOJSON, OPENAPI, base_url, link, next_get_link, next_post_link, self_href
from api.responses import ORJSONResponse
from api.state import app_state
from catalogue import json_codec
from catalogue.bbox import parse_bbox
from catalogue.database import Database
from catalogue.errors import InvalidInputError
from catalogue.filters import FilterLimits, parse_filter
from catalogue.filters.parse import CQL2_JSON
from catalogue.query_extension import query_to_cql2
from catalogue.repositories import collections as collection_repo
from catalogue.repositories import items as item_repo
from catalogue.repositories.collection_search import search_collections
from catalogue.search import (
    CollectionQuery,
    ItemQuery,
    PageToken,
    SortKey,
    parse_free_text,
    parse_geometry,
    parse_sortby,
)
from catalogue.search.service import ItemTextPage, SearchRequest
from catalogue.serializers import (
    STAC_VERSION,
    ItemLinksText,
    aggregation_links,
    item_json_text,
    row_to_collection,
)
from catalogue.settings import ApiSettings
from catalogue.times import parse_interval

QUERYABLES = "http://www.opengis.net/def/rel/ogc/1.0/queryables"  # the link relations
SORTABLES = "http://www.opengis.net/def/rel/ogc/1.0/sortables"
SCHEMA_JSON = "application/schema+json"
LANDING_TTL_S = 2.0
LANDING_CACHE_URLS = 16


def _database(request: Request) -> Database:
    return app_state(request).database


def _search(request: Request, search: SearchRequest) -> Awaitable[ItemTextPage]:
    """The one call into the catalogue's item search (`create_app` made its `ItemSearch`).
    Not a coroutine of its own: its caller awaits the service's directly."""
    state = app_state(request)
    return state.search.page(state.database, search)


def _datetime_text(value: DateTimeType | str | None) -> str | None:
    """stac-fastapi hands over either the raw string or parsed datetimes; we want text."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, tuple):
        start, end = value
        return f"{start.isoformat() if start else '..'}/{end.isoformat() if end else '..'}"
    return value.isoformat()


def _get_filter(params: dict[str, Any], limits: FilterLimits) -> dict[str, Any] | bool | None:
    """The Filter extension's GET parameters (`filter`, `filter-lang`, `filter-crs`), parsed."""
    return parse_filter(
        params.get("filter_expr"), params.get("filter_lang"), params.get("filter_crs"), limits
    )


def _post_filter(body: Any, limits: FilterLimits) -> dict[str, Any] | bool | None:
    """The Filter extension's POST fields (`filter`, `filter-lang`, `filter-crs`), parsed;
    a body model without the extension has none of them."""
    return parse_filter(
        getattr(body, "filter_expr", None),
        getattr(body, "filter_lang", None),
        getattr(body, "filter_crs", None),
        limits,
    )


def _with_legacy_query(
    filter_tree: dict[str, Any] | bool | None,
    query: dict[str, Any] | str | None,
    limits: FilterLimits,
) -> dict[str, Any] | bool | None:
    """AND the Query extension's conditions (translated to CQL2-JSON) into the filter."""
    if isinstance(query, str):
        try:
            query = orjson.loads(query) if query else None
        except orjson.JSONDecodeError as error:
            raise InvalidInputError(f"query: not valid JSON: {error}") from error
    translated = query_to_cql2(query)
    if translated is None:
        return filter_tree
    tree = parse_filter(translated, CQL2_JSON, limits=limits)
    return tree if filter_tree is None else {"op": "and", "args": [filter_tree, tree]}


# (rel, token) -> the link to the page the token names: `next` or `prev`
PageLink = Callable[[str, str], dict[str, Any]]


def _get_page_link(request: Request) -> PageLink:
    """Links that repeat this GET request with another token."""

    def page_link(rel: str, token: str) -> dict[str, Any]:
        return next_get_link(request, token, GEOJSON, rel)

    return page_link


@attr.s
class CoreClient(AsyncBaseCoreClient, AsyncBaseCollectionSearchClient):
    """Reads the catalogue through `catalogue.repositories`; writes nothing. Also the
    collection search client (`POST /collections`, `post_all_collections`)."""

    api_settings: ApiSettings = attr.ib(factory=ApiSettings)
    # The landing page's JSON per base URL, with its expiry (monotonic clock).
    _landing: dict[str, tuple[float, bytes]] = attr.ib(factory=dict, init=False)

    # -- landing page and collections -------------------------------------------------------
    async def landing_page(self, **kwargs: Any) -> stac.LandingPage:
        """The landing page, served from a per-process cache for `LANDING_TTL_S` seconds.

        It depends only on the base URL and the list of collection ids, and it is the most
        requested document of an API (clients start there). Serving it from memory saves a
        database round trip and FastAPI's JSON encoding, most of the request's time
        (bench/results/code_figures.md). A new or deleted collection shows
        after at most `LANDING_TTL_S`; every other document is read fresh.
        """
        request: Request = kwargs["request"]
        root = base_url(request)
        now = monotonic()
        cached = self._landing.get(root)
        if cached is None or cached[0] <= now:
            async with _database(request).read() as conn:
                collection_ids = await collection_repo.list_collection_ids(
                    conn, self.api_settings.max_child_links
                )
            body = orjson.dumps(self._landing_document(root, collection_ids))
            if len(self._landing) >= LANDING_CACHE_URLS:  # base URLs come from Host headers
                self._landing.clear()
            cached = self._landing[root] = (now + LANDING_TTL_S, body)
        return Response(cached[1], media_type="application/json")  # type: ignore[return-value]  # see get_collection

    def _landing_document(self, root: str, collection_ids: list[str]) -> stac.LandingPage:
        links = [
            link("self", root),
            link("root", root),
            link("data", f"{root}collections"),
            link("conformance", f"{root}conformance"),
            link("search", f"{root}search", GEOJSON, method="GET"),
            link("search", f"{root}search", GEOJSON, method="POST"),
            link("service-desc", f"{root}api", OPENAPI),
            link("service-doc", f"{root}api.html", "text/html"),
            link(QUERYABLES, f"{root}queryables", SCHEMA_JSON),
            link(SORTABLES, f"{root}sortables", SCHEMA_JSON),
            # the web viewer (api.viewer): an HTML view of the catalogue's cubes
            link("alternate", f"{root}viewer", "text/html", title="Viewer: the cubes on a map"),
            *aggregation_links(root),
            link("children", f"{root}children"),
        ]
        # the first `max_child_links` collections; the rest through /children or /collections
        links += [
            link("child", f"{root}collections/{quote(cid, safe='')}") for cid in collection_ids
        ]
        return stac.LandingPage(
            type="Catalog",
            id=self.api_settings.catalog_id,
            title=self.api_settings.title,
            description=self.api_settings.description,
            stac_version=STAC_VERSION,
            conformsTo=self.conformance_classes(),
            links=links,
        )

    async def all_collections(self, **kwargs: Any) -> stac.Collections:
        """`GET /collections`, with the collection-search parameters when given."""
        request: Request = kwargs["request"]
        query = self._collection_query(
            kwargs, _get_filter(kwargs, filter_limits(self.api_settings))
        )
        fields = FieldSelection.from_get(kwargs.get("fields"), "fields" in request.query_params)
        if not kwargs.get("fields"):
            fields = None
        return await self._collections_page(  # type: ignore[return-value]  # see get_collection
            request,
            query,
            fields,
            lambda token: next_get_link(request, token, "application/json"),
        )

    async def post_all_collections(
        self, search_request: BaseCollectionSearchPostRequest, **kwargs: Any
    ) -> stac.ItemCollection:
        """`POST /collections` as collection search (only when Transactions are off; see
        api.app._collection_search). Paging: `next` repeats the body with the token."""
        request: Request = kwargs["request"]
        params = {
            name: getattr(search_request, name, None)
            for name in ("bbox", "datetime", "limit", "q", "sortby", "token")
        }
        filter_tree = _post_filter(search_request, filter_limits(self.api_settings))
        fields = FieldSelection.from_post(
            getattr(search_request, "fields", None), "fields" in search_request.model_fields_set
        )
        body = search_request.model_dump(mode="json", exclude_unset=True, by_alias=True)
        return await self._collections_page(  # type: ignore[return-value]  # see get_collection
            request,
            self._collection_query(params, filter_tree),
            fields,
            lambda token: next_post_link(request, body, token, "collections", "application/json"),
        )

    async def _collections_page(
        self,
        request: Request,
        query: CollectionQuery,
        fields: FieldSelection | None,
        next_link: Callable[[str], dict[str, Any]],
    ) -> ORJSONResponse:
        root = base_url(request)
        async with _database(request).read() as conn:
            page = await search_collections(conn, query)
        collections = [row_to_collection(content, root) for content in page.collections]
        if fields is not None and (fields.include or fields.exclude):
            collections = [fields.apply(collection) for collection in collections]
        links = [link("self", self_href(request)), link("root", root), link("parent", root)]
        links.append(link(SORTABLES, f"{root}collections-sortables", SCHEMA_JSON))
        if page.next_token:
            links.append(next_link(page.next_token.encode()))
        body = {
            "collections": collections,
            "links": links,
            "numberMatched": page.number_matched,
            "numberReturned": len(collections),
        }
        return ORJSONResponse(body)

    def _collection_query(
        self, params: dict[str, Any], filter_tree: dict[str, Any] | bool | None = None
    ) -> CollectionQuery:
        limit = page_limit(self.api_settings, params.get("limit"))
        token = params.get("token")
        check_q(self.api_settings, params.get("q"))
        return CollectionQuery(
            bbox=parse_bbox(params.get("bbox")),
            interval=parse_interval(_datetime_text(params.get("datetime"))),
            text=parse_free_text(params.get("q")),
            sortby=parse_sortby(params.get("sortby")),
            limit=limit,
            token=PageToken.decode(token) if token else None,
            filter=filter_tree,
        )

    async def get_collection(self, collection_id: str, **kwargs: Any) -> stac.Collection:
        request: Request = kwargs["request"]
        async with _database(request).read() as conn:
            content = await collection_repo.get_collection(conn, collection_id)
        return ORJSONResponse(row_to_collection(content, base_url(request)))  # type: ignore[return-value]  # a ready response skips FastAPI's encoder

    # -- items ------------------------------------------------------------------------------
    async def get_item(self, item_id: str, collection_id: str, **kwargs: Any) -> stac.Item:
        request: Request = kwargs["request"]
        async with _database(request).read() as conn:
            stored = await item_repo.get_item_text(conn, collection_id, item_id)
        body = item_json_text(stored, base_url(request), app_state(request).cube_hrefs)
        return Response(body.encode(), media_type=GEOJSON)  # type: ignore[return-value]  # see get_collection

    async def item_collection(
        self,
        collection_id: str,
        bbox: BBox | None = None,
        datetime: str | None = None,
        limit: int = 10,
        token: str | None = None,
        **kwargs: Any,
    ) -> stac.ItemCollection:
        request: Request = kwargs["request"]
        query = self._query(
            collections=[collection_id],
            bbox=bbox,
            datetime=datetime,
            limit=limit,
            token=token,
            sortby=parse_sortby(kwargs.get("sortby")),
            filter_tree=_get_filter(kwargs, filter_limits(self.api_settings)),
        )
        page = await _search(request, SearchRequest(query, collection=collection_id))
        root = base_url(request)
        collection_url = f"{root}collections/{quote(collection_id, safe='')}"
        extra_links = [
            link("self", self_href(request), GEOJSON),
            link("collection", collection_url),
            link("parent", collection_url),
        ]
        return self._page_response(request, page, _get_page_link(request), extra_links)  # type: ignore[return-value]  # see get_collection

    # -- search -----------------------------------------------------------------------------
    async def get_search(
        self,
        collections: list[str] | None = None,
        ids: list[str] | None = None,
        bbox: BBox | None = None,
        intersects: Any = None,
        datetime: str | None = None,
        limit: int | None = 10,
        **kwargs: Any,
    ) -> stac.ItemCollection:
        request: Request = kwargs["request"]
        query = self._query(
            collections=collections,
            ids=ids,
            bbox=bbox,
            intersects=intersects,
            datetime=datetime,
            limit=limit,
            token=kwargs.get("token"),
            sortby=parse_sortby(kwargs.get("sortby")),
            q=kwargs.get("q"),
            filter_tree=_get_filter(kwargs, filter_limits(self.api_settings)),
            legacy_query=kwargs.get("query"),
        )
        fields = FieldSelection.from_get(kwargs.get("fields"), "fields" in request.query_params)
        paths = self._database_paths(request, fields)
        page = await _search(request, SearchRequest(query, paths))
        self_link = link("self", self_href(request), GEOJSON)
        return self._page_response(  # type: ignore[return-value]  # see get_collection
            request, page, _get_page_link(request), [self_link], fields, paths
        )

    async def post_search(
        self, search_request: BaseSearchPostRequest, **kwargs: Any
    ) -> stac.ItemCollection:
        request: Request = kwargs["request"]
        intersects = search_request.intersects
        query = self._query(
            collections=search_request.collections,
            ids=search_request.ids,
            bbox=search_request.bbox,
            intersects=intersects.model_dump(exclude_none=True) if intersects else None,
            datetime=search_request.datetime,
            limit=search_request.limit,
            token=getattr(search_request, "token", None),
            sortby=parse_sortby(getattr(search_request, "sortby", None)),
            q=getattr(search_request, "q", None),
            legacy_query=getattr(search_request, "query", None),
            filter_tree=_post_filter(search_request, filter_limits(self.api_settings)),
        )
        fields = FieldSelection.from_post(
            getattr(search_request, "fields", None), "fields" in search_request.model_fields_set
        )
        paths = self._database_paths(request, fields)
        page = await _search(request, SearchRequest(query, paths))
        body = search_request.model_dump(mode="json", exclude_unset=True, by_alias=True)

        def page_link(rel: str, token: str) -> dict[str, Any]:
            return next_post_link(request, body, token, rel=rel)

        return self._page_response(request, page, page_link, fields=fields, paths=paths)  # type: ignore[return-value]  # see get_collection

    # -- helpers ----------------------------------------------------------------------------
    @staticmethod
    def _database_paths(
        request: Request, fields: FieldSelection | None
    ) -> tuple[tuple[str, ...], ...] | None:
        """What of each item a Fields selection has the database select (None: whole
        items). Whole items when assets are asked for and cube hrefs may need rewriting."""
        paths = fields.database_paths() if fields is not None else None
        rewritten = app_state(request).cube_hrefs is not None
        if paths and rewritten and any(path[0] == "assets" for path in paths):
            return None
        return paths

    def _query(
        self,
        *,
        collections: list[str] | None = None,
        ids: list[str] | None = None,
        bbox: Any = None,
        intersects: Any = None,
        datetime: Any = None,
        limit: int | None = None,
        token: str | None = None,
        sortby: tuple[SortKey, ...] = (),
        q: list[str] | str | None = None,
        filter_tree: dict[str, Any] | bool | None = None,
        legacy_query: dict[str, Any] | str | None = None,
    ) -> ItemQuery:
        """Check every parameter and build the repository's query (400 on anything wrong).
        `limit` may be 0: no items, `numberMatched` alone (catalogue.search.service)."""
        limit = page_limit(self.api_settings, limit, least=0)
        check_search(
            self.api_settings, ids=ids, collections=collections, intersects=intersects, q=q
        )
        if bbox is not None and intersects is not None:
            raise InvalidInputError("bbox and intersects are mutually exclusive")
        return ItemQuery(
            collections=tuple(collections or ()),
            ids=tuple(ids or ()),
            bbox=parse_bbox(bbox),
            intersects=parse_geometry(intersects),
            interval=parse_interval(_datetime_text(datetime)),
            limit=limit,
            token=PageToken.decode(token) if token else None,
            sortby=sortby,
            text=parse_free_text(q),
            filter=_with_legacy_query(filter_tree, legacy_query, filter_limits(self.api_settings)),
        )

    # the checked query of a search's parameters, for `/aggregate` too (api.aggregation)
    item_query = _query

    def _page_response(
        self,
        request: Request,
        page: ItemTextPage,
        page_link: PageLink,
        extra_links: list[dict[str, Any]] | None = None,
        fields: FieldSelection | None = None,
        paths: tuple[tuple[str, ...], ...] | None = None,
    ) -> Response:
        """The FeatureCollection, assembled as text around the items' JSON texts; its `next`
        and `prev` links made by `page_link` from the page's tokens.

        With `paths` the database sent just what they select of each item, without links;
        only a `fields` selection it could not make whole (an exclude) parses the items."""
        root = base_url(request)
        links: list[dict[str, Any]] = [link("root", root), *(extra_links or [])]
        if page.next_token:
            links.append(page_link("next", page.next_token.encode()))
        if page.prev_token:
            links.append(page_link("prev", page.prev_token.encode()))
        if paths is not None:
            features = [stored.body for stored in page.items]
        else:
            hrefs = app_state(request).cube_hrefs
            links_text = ItemLinksText(root)
            features = [item_json_text(stored, root, hrefs, links_text) for stored in page.items]
        if fields is not None and not (paths is not None and fields.exact_in_database):
            selected = [fields.apply(json_codec.loads(feature)) for feature in features]
            features = [json_codec.dumps(feature) for feature in selected]
        tail: dict[str, Any] = {"links": links, "numberReturned": len(page.items)}
        if page.number_matched is not None:
            tail["numberMatched"] = page.number_matched
        body = (
            '{"type":"FeatureCollection","features":['
            + ",".join(features)
            + "],"
            + orjson.dumps(tail).decode()[1:]
        )
        return Response(body.encode(), media_type=GEOJSON)
