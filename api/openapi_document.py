"""`/api`: the OpenAPI document served under the media type of the version it is.

FastAPI writes OpenAPI 3.1.0, but stac-fastapi (7.0) rewrites the response's content type
to `application/vnd.oai.openapi+json;version=3.0`, and the landing page's `service-desc`
link said the same, so a client that picks its validator by media type (as
openapi-spec-validator users do) checks a 3.1 document against the 3.0 rules and fails.
Here the document, the response and the link agree on 3.1.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.links import OPENAPI


def _with_content_type(inner: ASGIApp, content_type: str) -> ASGIApp:
    header = (b"content-type", content_type.encode())

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        async def send_typed(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message["headers"] if k != b"content-type"]
                message = {**message, "headers": [*headers, header]}
            await send(message)

        await inner(scope, receive, send_typed)

    return app


def serve_openapi_as_declared(app: FastAPI) -> None:
    """Send `/api` with the media type of the OpenAPI version the document declares."""
    version = ".".join(app.openapi_version.split(".")[:2])
    assert OPENAPI.endswith(f"version={version}"), (OPENAPI, app.openapi_version)
    for route in app.router.routes:
        if isinstance(route, Route) and route.path == app.openapi_url:
            route.app = _with_content_type(route.app, OPENAPI)
