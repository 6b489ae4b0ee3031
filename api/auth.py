"""Bearer-key protection for the write endpoints (constant-time comparison).

The key is checked twice on purpose. `WriteKeyGuard` (ASGI middleware) answers 401 before
the application reads a byte of the body: FastAPI parses a request's body before it runs
the route's dependencies, so without it an unauthenticated client could make every write
route parse 16 MiB of JSON (a 1-2 s stall of the event loop) just to be told 401. The
route dependency (`require_api_key`) stays, so that the OpenAPI document declares the
bearer scheme on exactly the write routes and no route can lose its check by a routing
change the guard does not know.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Iterable
from typing import Annotated

import orjson
from fastapi import Depends, HTTPException, Request, params
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from stac_fastapi.api.routes import Scope as RouteScope
from starlette.routing import compile_path
from starlette.types import ASGIApp, Receive, Scope, Send

bearer = HTTPBearer(auto_error=False, description="CUBESTAC_API_KEY, for write endpoints")
UNAUTHORIZED = "this endpoint requires Authorization: Bearer <CUBESTAC_API_KEY>"


def is_key(given: str, expected: bytes) -> bool:
    """Whether `given` is the key (constant-time comparison)."""
    return hmac.compare_digest(given.encode(), expected)


def key_matches(authorization: str | None, expected: bytes) -> bool:
    """Whether an Authorization header value is `Bearer <key>` (scheme case-insensitive)."""
    scheme, _, given = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and is_key(given.strip(), expected)


def require_api_key(key: str) -> params.Depends:
    """A dependency that accepts only `Authorization: Bearer <key>`."""
    expected = key.encode()

    async def check(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> None:
        if not is_key(credentials.credentials if credentials else "", expected):
            raise HTTPException(
                status_code=401, detail=UNAUTHORIZED, headers={"WWW-Authenticate": "Bearer"}
            )

    return Depends(check)


class WriteKeyGuard:
    """Answers 401 to a write route without the key, before its body is read."""

    def __init__(self, app: ASGIApp, key: str, routes: Iterable[RouteScope]) -> None:
        self.app = app
        self.expected = key.encode()
        self.routes: list[tuple[str, re.Pattern[str]]] = [
            (route["method"], compile_path(route["path"])[0]) for route in routes
        ]

    def _is_write(self, scope: Scope) -> bool:
        method, path = scope["method"], scope["path"]
        return any(method == m and pattern.match(path) for m, pattern in self.routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self._is_write(scope):
            await self.app(scope, receive, send)
            return
        authorization = next(
            (
                value.decode("latin-1")
                for name, value in scope["headers"]
                if name == b"authorization"
            ),
            None,
        )
        if key_matches(authorization, self.expected):
            await self.app(scope, receive, send)
            return
        body = orjson.dumps({"code": "HTTPException", "description": UNAUTHORIZED})
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"www-authenticate", b"Bearer"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
