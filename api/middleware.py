"""ASGI middleware: a hard bound on request bodies, checked before anything parses them;
security headers on the HTML docs pages."""

from __future__ import annotations

import base64
import hashlib
import re

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLargeError(Exception):
    pass


class BodySizeLimitMiddleware:
    """Answer 413 for a body over `max_bytes`, by Content-Length or by counting a stream."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLargeError
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLargeError:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = orjson.dumps(
            {
                "code": "RequestBodyTooLarge",
                "description": f"request body exceeds the limit of {self.max_bytes} bytes",
            }
        )
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class HtmlSecurityHeadersMiddleware:
    """Security headers on HTML responses (the Swagger UI page at /api.html and its OAuth2
    redirect page); JSON responses only get `X-Content-Type-Options: nosniff`.

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
