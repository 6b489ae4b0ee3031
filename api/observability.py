"""One access-log line and the request metrics per request, as plain ASGI middleware.

Pure ASGI rather than Starlette's `BaseHTTPMiddleware`: the API is benchmarked per
request, and this costs a closure and a clock read on top of the log line and the metric
updates themselves (figures in docs/operations.md, "Monitoring").

The line names the method, the path, the route template that matched, the status and the
duration. It never carries the query string (an `ids=` list can be long, a token may be
in it) nor any header (`Authorization`).
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.metrics import ApiMetrics

access_logger = logging.getLogger("cubestac.access")

MAX_LOGGED_PATH = 512


def _printable(path: str) -> str:
    """Paths arrive percent-decoded: a `%0A` must not start a forged line on a terminal."""
    if not path.isprintable():
        path = path.encode("unicode_escape").decode("ascii")
    return path if len(path) <= MAX_LOGGED_PATH else path[:MAX_LOGGED_PATH] + "..."


class ObservabilityMiddleware:
    """Outermost of the app's middleware, so the duration covers compression and CORS."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics | None, access_log: bool) -> None:
        self.app = app
        self.metrics = metrics
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the server answers when the app raises before it starts a response

        async def status_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, status_send)
        finally:
            self._record(scope, status, time.perf_counter() - started)

    def _record(self, scope: Scope, status: int, seconds: float) -> None:
        # the router leaves the matched route (a 405 too) in the scope it was handed
        route = getattr(scope.get("route"), "path", None)
        method = scope["method"]
        if self.metrics is not None:
            self.metrics.observe(route, method, status, seconds)
        if self.access_log and access_logger.isEnabledFor(logging.INFO):
            path = _printable(scope["path"])
            duration_ms = round(seconds * 1000, 2)
            access_logger.info(
                "%s %s %d %.1f ms",
                method,
                path,
                status,
                duration_ms,
                extra={
                    "fields": {
                        "method": method,
                        "path": path,
                        "route": route,
                        "status": status,
                        "duration_ms": duration_ms,
                    }
                },
            )
