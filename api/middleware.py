"""ASGI middleware: a hard bound on request bodies, checked before anything parses them;
security headers on the HTML docs pages."""

from __future__ import annotations

import base64
import hashlib
import re

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodySizeLimitMiddleware:
    """Answer 413 for a body over `max_bytes`, by Content-Length or by counting a stream.

    A body without a Content-Length (chunked) is read here, up to the limit, before the
    application sees it: FastAPI turns any error raised while it reads a body into a 400,
    so a limit checked inside its read came out as "400 after 17 MiB" (issue 14). Reading
    stops at the limit; what the client still sends is discarded by the server. The
    application then gets the body in one message, as it would have buffered it anyway.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await _refuse_too_large(send, self.max_bytes)
            return
        if declared is None and b"transfer-encoding" not in headers:
            await self.app(scope, receive, send)  # no body
            return
        body = await read_body(receive, self.max_bytes)
        if body is None:
            await _refuse_too_large(send, self.max_bytes)
            return
        await self.app(scope, replay(body, receive), send)


async def read_body(receive: Receive, max_bytes: int) -> bytes | None:
    """The whole request body, or None once it exceeds `max_bytes` (or the client left)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_bytes:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands out `body` once, then waits on the real one (disconnects)."""
    pending = True

    async def replaying_receive() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replaying_receive


async def send_error(send: Send, status: int, code: str, description: str) -> None:
    """A STAC-shaped error (`code`, `description`) sent from middleware."""
    body = orjson.dumps({"code": code, "description": description})
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _refuse_too_large(send: Send, max_bytes: int) -> None:
    await send_error(
        send,
        413,
        "RequestBodyTooLarge",
        f"request body exceeds the limit of {max_bytes} bytes (limit CUBESTAC_API__MAX_BODY_BYTES)",
    )


class HtmlSecurityHeadersMiddleware:
    """Security headers on HTML responses (the Swagger UI page at /api.html and its OAuth2
    redirect page, the viewer at /viewer); other responses only get
    `X-Content-Type-Options: nosniff`. The viewer runs under this CSP as it is: its map
    library is maplibre-gl's CSP build, whose worker is a file from this origin (api.viewer).

    Swagger UI's script and style come from this origin (api.docs_page) and the page runs
    one inline script, whose text depends on the root path. The CSP therefore allows this
    origin and exactly the inline scripts of this response, by hash (the HTML is buffered: a
    few hundred bytes). Swagger UI sets inline styles, hence `style-src 'unsafe-inline'`.
    """

    FIXED_HEADERS = [
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"no-referrer"),
    ]

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def buffering_send(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                declared = dict(message.get("headers") or [])
                if not declared.get(b"content-type", b"").startswith(b"text/html"):
                    message = _with_headers(message, [(b"x-content-type-options", b"nosniff")])
                    await send(message)
                    return
                start = message
                return
            if start is None or message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = b"".join(chunks)
            headers = [*self.FIXED_HEADERS, (b"content-security-policy", self._csp(body))]
            await send(_with_headers(start, headers))
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, buffering_send)

    def _csp(self, html: bytes) -> bytes:
        hashes = " ".join(
            f"'sha256-{base64.b64encode(hashlib.sha256(script).digest()).decode()}'"
            for script in _INLINE_SCRIPT.findall(html)
        )
        return (
            "default-src 'none'; "
            f"script-src 'self' {hashes}; "
            "style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; "
            "connect-src 'self'; "
            "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        ).encode()


_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)


def _with_headers(message: Message, extra: list[tuple[bytes, bytes]]) -> Message:
    names = {name for name, _ in extra}
    kept = [(n, v) for n, v in message.get("headers") or [] if n.lower() not in names]
    return {**message, "headers": [*kept, *extra]}
