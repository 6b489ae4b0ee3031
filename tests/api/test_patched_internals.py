"""The stac-fastapi and FastAPI internals `api.routing` relies on, pinned.

`api.routing` clones the endpoint functions stac-fastapi generates and swaps their
`Depends(RequestModel)` default for an async builder (no thread hop per request). That
relies on the shape of `create_async_endpoint`'s functions, on the fields of FastAPI's
`params.Depends`, and on FastAPI reading a dependency's `__signature__`. When an upgrade
changes any of these, these tests fail and name the patch to revisit.
"""

from __future__ import annotations

import dataclasses
import inspect
import types
from collections.abc import Iterable, Iterator
from typing import Any

import attr
from fastapi import params
from fastapi.dependencies.utils import get_typed_signature
from fastapi.routing import APIRoute
from stac_fastapi.api.models import ItemUri
from stac_fastapi.api.routes import create_async_endpoint
from stac_fastapi.types.search import APIRequest
from starlette.routing import BaseRoute

from api import create_app
from api.routing import awaited, with_awaited_request_models
from catalogue.settings import Settings
from tests.internals import assert_source_unchanged

PATCH = "api/routing.py (AwaitedRequestModelRoute)"


async def _method(request: Any, **kwargs: Any) -> None:
    return None


def test_stac_fastapi_endpoints_take_the_request_model_as_their_only_default() -> None:
    endpoint = create_async_endpoint(_method, ItemUri)
    assert isinstance(endpoint, types.FunctionType), PATCH
    assert endpoint.__kwdefaults__ is None, PATCH
    (default,) = endpoint.__defaults__ or (None,)
    assert isinstance(default, params.Depends) and default.dependency is ItemUri, (
        f"stac-fastapi no longer passes its request model as `Depends(Model)`: revisit {PATCH}"
    )
    assert_source_unchanged(create_async_endpoint, "a69e93bed591ab31", PATCH)


def test_depends_has_only_the_fields_the_clone_copies_or_leaves_at_their_default() -> None:
    """`_awaited_defaults` builds a new `Depends` from `dependency` and `use_cache`: any other
    field must be one stac-fastapi leaves at its default."""
    fields = {field.name for field in dataclasses.fields(params.Depends)}
    assert fields == {"dependency", "use_cache", "scope", "max_concurrency", "_concurrency"}, (
        f"fastapi.params.Depends has new fields {sorted(fields)}: revisit {PATCH}"
    )
    (default,) = create_async_endpoint(_method, ItemUri).__defaults__ or ()
    assert default == params.Depends(ItemUri), PATCH


def test_the_clone_differs_only_in_its_request_model_default() -> None:
    endpoint = create_async_endpoint(_method, ItemUri)
    clone = with_awaited_request_models(endpoint)
    assert clone is not endpoint and clone.__code__ is endpoint.__code__
    assert clone.__closure__ is endpoint.__closure__
    (default,) = clone.__defaults__ or ()
    assert default.dependency is awaited(ItemUri)
    assert inspect.iscoroutinefunction(default.dependency)


def test_fastapi_reads_the_builders_parameters_from_its_signature() -> None:
    typed = get_typed_signature(awaited(ItemUri))
    assert list(typed.parameters) == [field.name for field in attr.fields(ItemUri)], (
        f"FastAPI no longer honours `__signature__` on a dependency: revisit {PATCH}"
    )


def _api_routes(routes: Iterable[BaseRoute]) -> Iterator[APIRoute]:
    """The app's routes, through the routers FastAPI includes lazily."""
    for route in routes:
        if hasattr(route, "original_router"):
            yield from _api_routes(route.original_router.routes)
        elif isinstance(route, APIRoute):
            yield route


def test_no_route_of_the_app_builds_a_request_model_in_a_thread() -> None:
    """Every route of the app, including those extensions add, had its request models
    swapped: a route left with `Depends(Model)` means a route factory the patch misses.
    (The app is built, never started: no database is needed.)"""
    app = create_app(Settings(database_url="postgresql://unused@127.0.0.1/unused"))
    routes = list(_api_routes(app.routes))
    assert {"/search", "/collections/{collection_id}/items/{item_id}"} <= {r.path for r in routes}
    left = [
        route.path
        for route in routes
        for dependency in route.dependant.dependencies
        if inspect.isclass(dependency.call) and issubclass(dependency.call, APIRequest)
    ]
    assert left == [], f"routes still building a request model in a thread: {left}"
