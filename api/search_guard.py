"""Search bodies checked for what parsing them would cost, before FastAPI parses them.

FastAPI parses a JSON body and validates it on the event loop; a 13.7 MB `intersects` of
600k vertices held the loop for 18.8 s before the vertex limit refused it (issue 14), and
every other request waited. This middleware looks at the raw body first
(`api.limits.check_search_body`: byte counts, and msgspec that skips what it need not
build), in a worker thread when the body is large, and answers the 400 itself.
"""

from __future__ import annotations

import anyio.to_thread
from starlette.types import ASGIApp, Receive, Scope, Send

from api.limits import check_search_body
from api.middleware import read_body, replay, send_error
from catalogue.errors import InvalidInputError
from catalogue.settings import ApiSettings

# below this the checks take microseconds: not worth a thread hop
THREAD_ABOVE_BYTES = 64 * 1024


class SearchBodyGuardMiddleware:
    """400 for a POST search body over its limits, decided on the raw bytes."""

    def __init__(self, app: ASGIApp, settings: ApiSettings, paths: frozenset[str]) -> None:
        self.app = app
        self.settings = settings
        self.paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or _route(scope) not in self.paths:
            await self.app(scope, receive, send)
            return
        body = await read_body(receive, self.settings.max_body_bytes)
        if body is None:  # the client left (the size limit is enforced outside)
            return
        try:
            if len(body) > THREAD_ABOVE_BYTES:
                await anyio.to_thread.run_sync(check_search_body, self.settings, body)
            else:
                check_search_body(self.settings, body)
        except InvalidInputError as error:
            await send_error(send, 400, type(error).__name__, str(error))
            return
        await self.app(scope, replay(body, receive), send)


def _route(scope: Scope) -> str:
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path
