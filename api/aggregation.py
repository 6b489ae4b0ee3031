"""The Aggregation extension: `/aggregate` and `/aggregations`, at the root and per collection.

https://github.com/stac-api-extensions/aggregation (v0.3.0) on stac-fastapi's
`AggregationExtension` (its request models, conformance class and routes). `/aggregate`
takes every parameter `/search` takes, checked by the same code (`CoreClient.item_query`,
so every bad input is the same 400), plus `aggregations` and the precision parameters SFEOS
defines; what is computed, and how, is `catalogue.search.aggregation`'s.

The collection routes read the collection from the path; naming `collections` there too is
a 400, as in SFEOS (the path already says which collection).
"""

from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import quote

import attr
from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from geojson_pydantic.geometries import Geometry
from pydantic import Field
from stac_fastapi.api.models import CollectionUri, EmptyRequest, create_request_model
from stac_fastapi.api.routes import create_async_endpoint
from stac_fastapi.extensions import FreeTextExtension, QueryExtension
from stac_fastapi.extensions.aggregation import AggregationExtension
from stac_fastapi.extensions.aggregation.client import AsyncBaseAggregationClient
from stac_fastapi.extensions.aggregation.request import AggregationExtensionGetRequest
from stac_fastapi.extensions.aggregation.types import AggregationCollection
from stac_fastapi.types.extension import ApiExtension
from stac_fastapi.types.rfc3339 import DateTimeType
from stac_fastapi.types.search import APIRequest
from stac_pydantic.shared import BBox

from api.core import CoreClient
from api.limits import filter_limits
from api.links import base_url, link, self_href
from api.requests import SearchPostRequest
from api.responses import ORJSONResponse
from api.routing import AwaitedRequestModelRoute
from api.state import app_state
from catalogue.errors import InvalidInputError
from catalogue.filters import parse_filter
from catalogue.search import aggregation
from catalogue.search.aggregation import AggregateRequest
from catalogue.search.query import ItemQuery

AGGREGATION = "https://api.stacspec.org/v0.3.0/aggregation"
CONFORMANCE = [AGGREGATION, f"{AGGREGATION}#filter", f"{AGGREGATION}#query"]
PRECISIONS = (
    ("centroid_geohash_grid_frequency_precision", aggregation.GEOHASH_PRECISION),
    ("centroid_geotile_grid_frequency_precision", aggregation.GEOTILE_PRECISION),
)


@attr.s
class AggregateGetRequest(AggregationExtensionGetRequest):
    """`GET /aggregate`: the search's parameters, `aggregations` and SFEOS's precisions."""

    centroid_geohash_grid_frequency_precision: Annotated[
        int | None, Query(description="Geohash length, 1 to 12 (default 1)")
    ] = attr.ib(default=None)
    centroid_geotile_grid_frequency_precision: Annotated[
        int | None, Query(description="Web-mercator zoom, 0 to 29 (default 0)")
    ] = attr.ib(default=None)
    datetime_frequency_interval: Annotated[
        str | None, Query(description="year, quarter, month (default), week, day, hour ...")
    ] = attr.ib(default=None)


class AggregatePostRequest(SearchPostRequest):
    """`POST /aggregate`: the search body with `aggregations` and the precisions."""

    aggregations: list[str] | None = Field(default=None)
    centroid_geohash_grid_frequency_precision: int | None = None
    centroid_geotile_grid_frequency_precision: int | None = None
    datetime_frequency_interval: str | None = None


def _scoped(collection_id: str | None, collections: list[str] | None) -> list[str] | None:
    if collection_id is None:
        return collections
    if collections:
        raise InvalidInputError(
            "collections: not allowed on /collections/{id}/aggregate (use /aggregate)"
        )
    return [collection_id]


@attr.s
class AggregationClient(AsyncBaseAggregationClient):
    """Answers the extension's routes from the catalogue (see the module docstring)."""

    core: CoreClient = attr.ib()

    async def get_aggregations(
        self, collection_id: str | None = None, **kwargs: Any
    ) -> AggregationCollection:
        request: Request = kwargs["request"]
        async with app_state(request).database.read() as conn:
            found = await aggregation.available(conn, collection_id)
        body = {
            "type": "AggregationCollection",
            "aggregations": [definition.describe() for definition in found],
            "links": self._links(request, collection_id),
        }
        return ORJSONResponse(body)  # type: ignore[return-value]  # as api.core: a ready response

    async def aggregate(
        self,
        collection_id: str | None = None,
        aggregations: str | list[str] | None = None,
        collections: list[str] | None = None,
        ids: list[str] | None = None,
        bbox: BBox | None = None,
        intersects: Geometry | None = None,
        datetime: DateTimeType | None = None,
        limit: int | None = 10,
        **kwargs: Any,
    ) -> AggregationCollection:
        """`GET /aggregate` and `GET /collections/{id}/aggregate` (`limit` plays no part)."""
        request: Request = kwargs["request"]
        collection_id = request.path_params.get("collection_id", collection_id)
        limits = filter_limits(self.core.api_settings)
        query = self.core.item_query(
            collections=_scoped(collection_id, collections),
            ids=ids,
            bbox=bbox,
            intersects=intersects,
            datetime=datetime,
            q=kwargs.get("q"),
            filter_tree=parse_filter(
                kwargs.get("filter_expr"),
                kwargs.get("filter_lang"),
                kwargs.get("filter_crs"),
                limits,
            ),
            legacy_query=kwargs.get("query"),
        )
        params = {**kwargs, "aggregations": aggregations}
        return await self._answer(request, collection_id, query, params)  # type: ignore[return-value]  # as api.core: a ready response

    async def post_aggregate(self, body: AggregatePostRequest, **kwargs: Any) -> ORJSONResponse:
        """`POST /aggregate` and `POST /collections/{id}/aggregate`."""
        request: Request = kwargs["request"]
        collection_id = request.path_params.get("collection_id")
        intersects = body.intersects
        query = self.core.item_query(
            collections=_scoped(collection_id, body.collections),
            ids=body.ids,
            bbox=body.bbox,
            intersects=intersects.model_dump(exclude_none=True) if intersects else None,
            datetime=body.datetime,
            q=getattr(body, "q", None),
            filter_tree=parse_filter(
                getattr(body, "filter_expr", None),
                getattr(body, "filter_lang", None),
                getattr(body, "filter_crs", None),
                filter_limits(self.core.api_settings),
            ),
            legacy_query=getattr(body, "query", None),
        )
        return await self._answer(request, collection_id, query, body.model_dump())

    async def _answer(
        self,
        request: Request,
        collection_id: str | None,
        query: ItemQuery,
        params: dict[str, Any],
    ) -> ORJSONResponse:
        names = params.get("aggregations") or []
        if isinstance(names, str):
            names = names.split(",")
        geohash, geotile = (
            aggregation.check_precision(name, params.get(name), bounds)
            for name, bounds in PRECISIONS
        )
        aggregate_request = AggregateRequest(
            query=query,
            names=tuple(names),
            collection=collection_id,
            geohash_precision=geohash,
            geotile_precision=geotile,
            interval=aggregation.check_interval(params.get("datetime_frequency_interval")),
            timeout_ms=self.core.api_settings.aggregate_timeout_ms,
            by_days=self.core.api_settings.count_by_days,
        )
        state = app_state(request)
        results = await aggregation.aggregate(state.database, aggregate_request)
        links = self._links(request, collection_id)
        links[-1] = link("self", self_href(request))
        if request.method == "POST":
            links[-1]["method"] = "POST"
        return ORJSONResponse(
            {"type": "AggregationCollection", "aggregations": results, "links": links}
        )

    @staticmethod
    def _links(request: Request, collection_id: str | None) -> list[dict[str, Any]]:
        root = base_url(request)
        links = [link("root", root)]
        if collection_id is not None:
            links.append(link("collection", f"{root}collections/{quote(collection_id, safe='')}"))
        links.append(link("self", self_href(request)))
        return links


def _aggregate_get_model(extensions: list[ApiExtension]) -> type[APIRequest]:
    model = create_request_model(
        "AggregateGetRequest",
        base_model=AggregateGetRequest,
        extensions=[*extensions, QueryExtension(), FreeTextExtension()],
        request_type="GET",
    )
    return model  # type: ignore[return-value]  # a GET model of APIRequest bases is one


def _aggregate_post_model(extensions: list[ApiExtension]) -> type[AggregatePostRequest]:
    model = create_request_model(
        "AggregatePostRequest",
        base_model=AggregatePostRequest,
        extensions=[*extensions, QueryExtension(), FreeTextExtension()],
        request_type="POST",
    )
    return model  # type: ignore[return-value]  # built on AggregatePostRequest


def _collection_path(collection_id: Annotated[str, Path(description="Collection ID")]) -> None:
    """Declares `{collection_id}` of the collection routes, whose request models lack it."""


@attr.s
class Aggregation(AggregationExtension):
    """stac-fastapi's extension with our client, request models and one route per method
    (its own `register` hands POST bodies to the GET handler's signature)."""

    filter_extensions: list[ApiExtension] = attr.ib(factory=list)

    def register(self, app: FastAPI) -> None:
        client = self.client
        assert isinstance(client, AggregationClient)
        get_model = _aggregate_get_model(self.filter_extensions)
        post_model = _aggregate_post_model(self.filter_extensions)
        router = APIRouter(prefix=app.state.router_prefix, route_class=AwaitedRequestModelRoute)
        routes: list[tuple[str, list[str], Callable[..., Any], Any]] = [
            ("/aggregations", ["GET"], client.get_aggregations, EmptyRequest),
            (
                "/collections/{collection_id}/aggregations",
                ["GET"],
                client.get_aggregations,
                CollectionUri,
            ),
            ("/aggregate", ["GET"], client.aggregate, get_model),
            ("/aggregate", ["POST"], client.post_aggregate, post_model),
            ("/collections/{collection_id}/aggregate", ["GET"], client.aggregate, get_model),
            ("/collections/{collection_id}/aggregate", ["POST"], client.post_aggregate, post_model),
        ]
        for path, methods, handler, model in routes:
            scoped = path.startswith("/collections/") and model is not CollectionUri
            router.add_api_route(
                path=path,
                endpoint=create_async_endpoint(handler, model),
                methods=methods,
                name=f"{methods[0]} {path}",
                # the path's collection, declared (for the OpenAPI document); read by the
                # client from the request's path parameters
                dependencies=[Depends(_collection_path)] if scoped else None,
            )
        app.include_router(router, tags=["Aggregation Extension"])


def aggregation_extension(core: CoreClient, filter_extension: ApiExtension) -> Aggregation:
    """The extension as `create_app` registers it, with the search's filter parameters."""
    return Aggregation(
        client=AggregationClient(core=core),
        conformance_classes=CONFORMANCE,
        filter_extensions=[filter_extension],
    )
