"""`create_app(settings)`: the stac-fastapi application on the catalogue.

The transactions extensions are registered only when `CUBESTAC_API_KEY` is set, and then
every write route requires `Authorization: Bearer <key>`. Reads are public and CORS-open
(GET, HEAD and POST for search) so that STAC Browser works from any origin.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import cast

from brotli_asgi import BrotliMiddleware
from fastapi import APIRouter, FastAPI, params
from fastapi.exceptions import RequestValidationError
from stac_fastapi.api.app import StacApi
from stac_fastapi.api.errors import DEFAULT_STATUS_CODES
from stac_fastapi.api.middleware import ProxyHeaderMiddleware
from stac_fastapi.api.models import (
    JSONSchemaResponse,
    create_get_request_model,
    create_post_request_model,
    create_request_model,
)
from stac_fastapi.api.routes import Scope
from stac_fastapi.extensions import (
    CollectionSearchExtension,
    CollectionSearchPostExtension,
    FieldsExtension,
    FreeTextExtension,
    QueryExtension,
    SortExtension,
    TokenPaginationExtension,
)
from stac_fastapi.extensions.fields.fields import FieldsConformanceClasses
from stac_fastapi.extensions.filter import FilterConformanceClasses, ItemCollectionFilterExtension
from stac_fastapi.extensions.free_text.free_text import FreeTextConformanceClasses
from stac_fastapi.extensions.sort.sort import SortConformanceClasses
from stac_fastapi.types.config import ApiSettings as StacFastApiSettings
from stac_fastapi.types.conformance import BASE_CONFORMANCE_CLASSES
from stac_fastapi.types.extension import ApiExtension
from stac_fastapi.types.search import APIRequest
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request

from api.aggregation import aggregation_extension
from api.auth import WriteKeyGuard, require_api_key
from api.bulk_route import BulkItemsExtension
from api.children import ChildrenExtension
from api.collection_delete import CascadingTransactionExtension
from api.core import CoreClient
from api.cube_files import CubeFiles, cube_hrefs, local_cube_root
from api.docs_page import add_docs_page
from api.edr.routes import add_edr_routes
from api.errors import add_error_handlers
from api.filter_extension import CollectionSearchFilter, SearchFilter
from api.health import health_endpoint
from api.maps.routes import add_map_routes
from api.metrics import ApiMetrics, add_metrics_route
from api.middleware import BodySizeLimitMiddleware, HtmlSecurityHeadersMiddleware
from api.observability import ObservabilityMiddleware
from api.openapi_document import serve_openapi_as_declared
from api.queryables import QueryablesClient
from api.requests import SearchPostRequest
from api.responses import ORJSONResponse
from api.routing import AwaitedRequestModelRoute
from api.search_guard import SearchBodyGuardMiddleware
from api.search_models import ItemsGetRequest, SearchGetRequest
from api.sortables import SortablesClient
from api.stac_documents import NormalisedBodyRoute
from api.state import AppState, attach_state
from api.transactions import BulkTransactionsClient, TransactionsClient
from api.versions import add_version_routes
from api.viewer import add_viewer
from catalogue.database import Database, create_engine
from catalogue.schema import ensure_migrated
from catalogue.search.service import ItemSearch
from catalogue.settings import Settings

logger = logging.getLogger(__name__)

BROWSEABLE = "https://api.stacspec.org/v1.0.0/browseable"
# map tiles are PNG/WebP, compressed already
TILE_PATHS = "^/collections/[^/]+/items/[^/]+/tiles/"
WRITE_ROUTES: list[Scope] = [
    {"path": "/collections", "method": "POST"},
    {"path": "/collections/{collection_id}", "method": "PUT"},
    {"path": "/collections/{collection_id}", "method": "PATCH"},
    {"path": "/collections/{collection_id}", "method": "DELETE"},
    {"path": "/collections/{collection_id}/items", "method": "POST"},
    {"path": "/collections/{collection_id}/items/{item_id}", "method": "PUT"},
    {"path": "/collections/{collection_id}/items/{item_id}", "method": "PATCH"},
    {"path": "/collections/{collection_id}/items/{item_id}", "method": "DELETE"},
    {"path": "/collections/{collection_id}/bulk_items", "method": "POST"},
]


def _stac_fastapi_settings(settings: Settings) -> StacFastApiSettings:
    return StacFastApiSettings(
        stac_fastapi_title=settings.api.title,
        stac_fastapi_description=settings.api.description,
        stac_fastapi_landing_id=settings.api.catalog_id,
        stac_fastapi_version="0.1.0",
        enable_direct_response=True,
        openapi_url="/api",
        docs_url="/api.html",
    )


# CQL2 classes that `catalogue.filters` implements in full (custom functions it does not).
CQL2_CLASSES = [
    FilterConformanceClasses.FILTER,
    FilterConformanceClasses.CQL2_TEXT,
    FilterConformanceClasses.CQL2_JSON,
    FilterConformanceClasses.BASIC_CQL2,
    FilterConformanceClasses.ADVANCED_COMPARISON_OPERATORS,
    FilterConformanceClasses.CASE_INSENSITIVE_COMPARISON,
    FilterConformanceClasses.ACCENT_INSENSITIVE_COMPARISON,
    FilterConformanceClasses.BASIC_SPATIAL_FUNCTIONS,
    FilterConformanceClasses.BASIC_SPATIAL_FUNCTIONS_PLUS,
    FilterConformanceClasses.SPATIAL_FUNCTIONS,
    FilterConformanceClasses.TEMPORAL_FUNCTIONS,
    FilterConformanceClasses.ARRAY_FUNCTIONS,
    FilterConformanceClasses.PROPERTY_PROPERTY,
    FilterConformanceClasses.ARITHMETIC,
]


# Sort conformance: the v1.1.0 URIs stac-fastapi declares and the v1.0.0 ones clients look
# for (pystac-client 0.9 matches `v1.0.*/item-search#sort`; without it, it warns on every
# `sortby` that the API does not support sorting). /search, /collections/{id}/items and
# the three sortables documents (`SortablesClient`); collection search's own `sortby` is
# declared in `_collection_search`.
SORT_CLASSES = [
    "https://api.stacspec.org/v1.0.0/item-search#sort",
    SortConformanceClasses.ITEM_SEARCH_SORT,
    "https://api.stacspec.org/v1.0.0/item-search#sortables",
    SortConformanceClasses.ITEM_SEARCH_SORTABLES,
    "https://api.stacspec.org/v1.0.0/ogcapi-features#sort",
    SortConformanceClasses.FEATURES_SORT,
    SortConformanceClasses.FEATURES_SORTABLES,
    "https://api.stacspec.org/v1.0.0-rc.1/collection-search#sortables",
    SortConformanceClasses.COLLECTION_SEARCH_SORTABLES,
]
COLLECTION_SORT_CLASSES = [
    "https://api.stacspec.org/v1.0.0-rc.1/collection-search#sort",
    SortConformanceClasses.COLLECTION_SEARCH_SORT,
]


def _router() -> APIRouter:
    """A router for stac-fastapi's routes: request models built without a thread hop."""
    return APIRouter(route_class=AwaitedRequestModelRoute)


def _filter_extensions() -> tuple[SearchFilter, ItemCollectionFilterExtension]:
    """CQL2 `filter` on /search (and `/queryables`) and on /collections/{id}/items."""
    return (
        SearchFilter(
            client=QueryablesClient(),
            conformance_classes=[FilterConformanceClasses.SEARCH, *CQL2_CLASSES],
            router=_router(),
        ),
        ItemCollectionFilterExtension(
            client=QueryablesClient(),
            conformance_classes=[FilterConformanceClasses.ITEMS, *CQL2_CLASSES],
            router=_router(),
        ),
    )


def _extensions(settings: Settings, api_settings: StacFastApiSettings) -> list[ApiExtension]:
    extensions: list[ApiExtension] = [
        TokenPaginationExtension(),
        # `/sortables`, `/collections/{id}/sortables` and `/collections-sortables`
        SortExtension(
            client=SortablesClient(),
            conformance_classes=SORT_CLASSES,
            router=APIRouter(
                route_class=AwaitedRequestModelRoute, default_response_class=JSONSchemaResponse
            ),
        ),
        FieldsExtension(),
        FreeTextExtension(),
        QueryExtension(),
    ]
    if settings.api_key is not None:
        extensions += [
            CascadingTransactionExtension(
                client=TransactionsClient(),
                settings=api_settings,
                response_class=ORJSONResponse,
                # bodies made current STAC before stac-pydantic validates them
                router=APIRouter(route_class=NormalisedBodyRoute),
            ),
            BulkItemsExtension(client=BulkTransactionsClient()),
        ]
    return extensions


def _collection_search(
    settings: Settings, api_settings: StacFastApiSettings, client: CoreClient
) -> CollectionSearchExtension:
    """`GET /collections` with bbox, datetime, q, filter, sortby, fields, limit and token
    paging; `POST /collections` with the same as a JSON body when Transactions are off.

    With Transactions on (an API key is set), `POST /collections` is "create collection",
    and one path cannot mean both: collection search is then GET only. stac-fastapi's own
    `CollectionSearchPostExtension` notes the same conflict and leaves the choice to the
    application.
    """
    extensions: list[ApiExtension] = [
        FieldsExtension(conformance_classes=[FieldsConformanceClasses.COLLECTIONS]),
        SortExtension(conformance_classes=COLLECTION_SORT_CLASSES),
        FreeTextExtension(conformance_classes=[FreeTextConformanceClasses.COLLECTIONS]),
        CollectionSearchFilter(client=QueryablesClient()),
        TokenPaginationExtension(),
    ]
    if settings.api_key is not None:
        return CollectionSearchExtension.from_extensions(extensions)
    return CollectionSearchPostExtension.from_extensions(
        extensions, client=client, settings=api_settings, router=_router()
    )


def _search_paths(settings: Settings) -> frozenset[str]:
    """POST routes whose body is a search (`/aggregate`'s is one too): `/collections` also
    while it is collection search (no API key; with one it creates a collection, see
    `_collection_search`)."""
    searches = {"/search", "/aggregate"}
    return frozenset(searches if settings.api_key is not None else {*searches, "/collections"})


def _write_key_guard(settings: Settings) -> list[Middleware]:
    """The key checked before a write route's body is read (api.auth), when writes exist."""
    if settings.api_key is None:
        return []
    key = settings.api_key.get_secret_value()
    return [Middleware(WriteKeyGuard, key=key, routes=WRITE_ROUTES)]


def _middlewares(settings: Settings, metrics: ApiMetrics | None) -> list[Middleware]:
    # StacApi inserts each at the front: the first here is the innermost (inside Brotli, so
    # the security headers middleware sees the HTML uncompressed)
    return [
        Middleware(HtmlSecurityHeadersMiddleware),
        Middleware(
            SearchBodyGuardMiddleware,
            settings=settings.api,
            paths=_search_paths(settings),
        ),
        Middleware(BodySizeLimitMiddleware, max_bytes=settings.api.max_body_bytes),
        *_write_key_guard(settings),
        # cube files go out as stored: chunks are compressed already, and a compressed 206
        # would not be the byte range asked for
        Middleware(BrotliMiddleware, excluded_handlers=["^/cubes/", TILE_PATHS]),
        Middleware(
            CORSMiddleware,
            allow_origins=["*"],
            allow_methods=["GET", "HEAD", "POST", "OPTIONS"],
            allow_headers=["Content-Type", "Accept", "Range", "If-None-Match"],
            expose_headers=["Content-Range", "Content-Length", "ETag"],
            max_age=600,
        ),
        Middleware(ProxyHeaderMiddleware),
        Middleware(
            ObservabilityMiddleware,
            metrics=metrics,
            access_log=settings.monitoring.access_log,
        ),
    ]


def _error_response(code: str, description: str, status_code: int) -> ORJSONResponse:
    return ORJSONResponse({"code": code, "description": description}, status_code=status_code)


def _add_error_handlers(app: FastAPI) -> None:
    """STAC-shaped errors: `{"code", "description"}` for every status we answer."""
    add_error_handlers(app)

    def validation_handler(_: Request, error: RequestValidationError) -> ORJSONResponse:
        problems = []
        for problem in error.errors():
            where = ".".join(str(part) for part in problem.get("loc", ()) if part != "body")
            problems.append(f"{where or 'request'}: {problem.get('msg')}")
        return _error_response("InvalidRequest", "; ".join(problems), 400)

    def http_handler(_: Request, error: HTTPException) -> ORJSONResponse:
        response = _error_response(type(error).__name__, str(error.detail), error.status_code)
        response.headers.update(error.headers or {})
        return response

    app.add_exception_handler(RequestValidationError, validation_handler)  # type: ignore[arg-type]  # Starlette's handler type is narrower than its runtime contract
    app.add_exception_handler(HTTPException, http_handler)  # type: ignore[arg-type]  # as above


def create_app(settings: Settings | None = None, database: Database | None = None) -> FastAPI:
    """Build the API. `database` lets tests hand in a connection-scoped catalogue."""
    settings = settings or Settings()
    owns_database = database is None
    db = database or Database(create_engine(settings))
    metrics = ApiMetrics(db, settings.pool) if settings.monitoring.metrics else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await ensure_migrated(db.engine)
        yield
        if metrics is not None:
            metrics.close()
        if owns_database:
            await db.dispose()

    api_settings = _stac_fastapi_settings(settings)
    extensions = _extensions(settings, api_settings)
    search_filter, items_filter = _filter_extensions()
    search_get_model = create_get_request_model(
        [*extensions, search_filter], base_model=SearchGetRequest
    )
    search_post_model = create_post_request_model(
        [*extensions, search_filter], base_model=SearchPostRequest
    )
    extensions += [search_filter, items_filter]
    core_client = CoreClient(
        api_settings=settings.api,
        base_conformance_classes=[*BASE_CONFORMANCE_CLASSES, BROWSEABLE],
    )
    collection_search = _collection_search(settings, api_settings, core_client)
    extensions.append(collection_search)
    extensions.append(aggregation_extension(core_client, search_filter))
    extensions.append(ChildrenExtension(settings=settings.api))
    app = FastAPI(
        title=settings.api.title,
        description=settings.api.description,
        openapi_url="/api",
        docs_url=None,  # api.docs_page serves /api.html without a CDN
        redoc_url=None,
        lifespan=lifespan,
        default_response_class=ORJSONResponse,
    )
    # request models built on the event loop (api.routing), for routes that extensions add
    # to the app's router as well as for stac-fastapi's own router below
    app.router.route_class = AwaitedRequestModelRoute
    # the item search and its caches, one per app (catalogue.search.service)
    search = ItemSearch(
        count_budget_ms=settings.api.count_timeout_ms,
        count_estimate_max=settings.api.count_estimate_max,
        day_counts=settings.api.count_by_days,
    )
    state = AppState(db, settings.public_url, cube_hrefs(settings), search)
    attach_state(app, state)
    add_docs_page(app, "/api", settings.api.title)
    add_viewer(app)
    cube_root = local_cube_root(settings)
    if cube_root is not None:
        app.mount("/cubes", CubeFiles(directory=cube_root, check_dir=False), name="cubes")
    route_dependencies: list[tuple[list[Scope], list[params.Depends]]] = []
    if settings.api_key is not None:
        route_dependencies.append(
            (WRITE_ROUTES, [require_api_key(settings.api_key.get_secret_value())])
        )
    # A GET model (all bases attrs `APIRequest`s) is an `APIRequest`: the cast is the one
    # stac-fastapi's own `create_get_request_model` makes, kept here for the model's name.
    items_model = cast(
        type[APIRequest],
        create_request_model(
            "ItemCollectionUri",
            base_model=ItemsGetRequest,
            extensions=[TokenPaginationExtension(), SortExtension(), items_filter],
            request_type="GET",
        ),
    )
    StacApi(
        app=app,
        settings=api_settings,
        client=core_client,
        router=_router(),
        extensions=extensions,
        exceptions=DEFAULT_STATUS_CODES,
        search_get_request_model=search_get_model,
        search_post_request_model=search_post_model,
        items_get_request_model=items_model,
        collections_get_request_model=collection_search.GET,
        response_class=ORJSONResponse,
        middlewares=_middlewares(settings, metrics),
        route_dependencies=route_dependencies,
        # the hook's type says "returns a body"; FastAPI sends a returned response (a 503)
        health_check=health_endpoint(db, settings.monitoring.health_timeout_s),  # type: ignore[arg-type]
        title=settings.api.title,
        description=settings.api.description,
    )
    add_edr_routes(app, settings.edr)
    add_map_routes(app, settings.tiles, state.cube_datasets)
    add_version_routes(app)
    serve_openapi_as_declared(app)
    _add_error_handlers(app)
    if metrics is not None:
        add_metrics_route(app, metrics, settings.monitoring)
    return app
