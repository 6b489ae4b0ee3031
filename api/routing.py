"""Routes whose stac-fastapi request models are built on the event loop, not in a thread.

stac-fastapi declares each GET request model (an attrs class: the search parameters, the
item and collection URIs, even the empty request of the landing page) as a FastAPI
dependency, `Depends(RequestModel)`, and FastAPI calls every class dependency in its thread
pool. Building the model is a few attribute assignments; the hop to a thread and back cost
more than that for a simple search (bench/results/code_figures.md).
`AwaitedRequestModelRoute` replaces such a dependency by an async function with the class's
signature, so FastAPI parses and validates the same parameters and the endpoint receives the
same object. It is a route class, FastAPI's own hook for customising routes.

It clones functions stac-fastapi generates and builds FastAPI `Depends` itself, so it relies
on their private shape; requirements.lock pins both, and tests/api/test_patched_internals.py
fails, naming this module, when an upgrade changes what it relies on.
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Callable
from functools import cache
from typing import Any

from fastapi import params
from fastapi.routing import APIRoute
from stac_fastapi.types.search import APIRequest


@cache
def awaited(model: type[APIRequest]) -> Callable[..., Any]:
    """An async function that builds `model` from the parameters its signature declares."""

    async def build(**values: Any) -> APIRequest:
        return model(**values)

    # FastAPI reads the parameters from `__signature__`, which mypy does not know functions have
    build.__signature__ = inspect.signature(model)  # type: ignore[attr-defined]
    build.__name__ = build.__qualname__ = f"awaited_{model.__name__}"
    return build


def _is_request_model(dependency: Any) -> bool:
    return inspect.isclass(dependency) and issubclass(dependency, APIRequest)


def _awaited_defaults(defaults: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(
        params.Depends(awaited(default.dependency), use_cache=default.use_cache)
        if isinstance(default, params.Depends) and _is_request_model(default.dependency)
        else default
        for default in defaults
    )


def with_awaited_request_models(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """`endpoint` itself, or a copy whose request-model dependencies are `awaited`.

    stac-fastapi's endpoints take the model as a default argument (`request_data=
    Depends(Model)`); the copy shares their code and closure and differs in that default.
    """
    defaults = getattr(endpoint, "__defaults__", None)
    if not isinstance(endpoint, types.FunctionType) or not defaults:
        return endpoint
    awaited_defaults = _awaited_defaults(defaults)
    if awaited_defaults == defaults:
        return endpoint
    copy = types.FunctionType(
        endpoint.__code__,
        endpoint.__globals__,
        endpoint.__name__,
        awaited_defaults,
        endpoint.__closure__,
    )
    copy.__kwdefaults__ = endpoint.__kwdefaults__
    copy.__annotations__ = endpoint.__annotations__
    copy.__doc__ = endpoint.__doc__
    copy.__qualname__ = endpoint.__qualname__
    copy.__module__ = endpoint.__module__
    return copy


class AwaitedRequestModelRoute(APIRoute):
    """An APIRoute whose endpoint's request models are built without a thread hop."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, with_awaited_request_models(endpoint), **kwargs)
