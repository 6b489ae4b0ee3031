"""Absolute links: from `CUBESTAC_PUBLIC_URL` when set, else from the request's base URL."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from starlette.requests import Request

from api.state import app_state

GEOJSON = "application/geo+json"
OPENAPI = "application/vnd.oai.openapi+json;version=3.1"  # what FastAPI writes


def link(rel: str, href: str, media_type: str = "application/json", **extra: Any) -> dict[str, Any]:
    return {"rel": rel, "type": media_type, "href": href, **extra}


def base_url(request: Request) -> str:
    """The API's root URL, always ending in '/'."""
    public = app_state(request).public_url
    root = public or str(request.base_url)
    return root if root.endswith("/") else root + "/"


def request_path(request: Request) -> str:
    """The request path relative to the API root (no leading '/'), still percent-encoded."""
    raw = request.scope.get("raw_path")
    path = raw.decode("latin-1") if raw else quote(request.url.path)
    root_path = request.scope.get("root_path", "")
    if root_path and path.startswith(root_path):
        path = path[len(root_path) :]
    return path.lstrip("/")


def self_href(request: Request) -> str:
    """This request's URL under the public base URL, query string included."""
    query = request.url.query
    return f"{base_url(request)}{request_path(request)}" + (f"?{query}" if query else "")


def next_get_link(
    request: Request, token: str, media_type: str, rel: str = "next"
) -> dict[str, Any]:
    """The same GET request with `token` set: every other parameter is carried over.
    `rel` is `next` or `prev` (the token says which way it pages)."""
    params = [(key, value) for key, value in request.query_params.multi_items() if key != "token"]
    params.append(("token", token))
    href = f"{base_url(request)}{request_path(request)}?{urlencode(params)}"
    return {"rel": rel, "type": media_type, "href": href, "method": "GET"}


def next_post_link(
    request: Request,
    body: dict[str, Any],
    token: str,
    path: str = "search",
    media_type: str = "application/geo+json",
    rel: str = "next",
) -> dict[str, Any]:
    """STAC API POST paging: the client repeats the body with `token` set (merge=false)."""
    return {
        "rel": rel,
        "type": media_type,
        "href": f"{base_url(request)}{path}",
        "method": "POST",
        "body": {**body, "token": token},
        "merge": False,
    }
