"""uvicorn's httptools protocol with the bounds uvicorn lacks for slow or idle clients.

uvicorn reads a request for as long as the client takes, and its `limit_concurrency` counts
*connections*: a thousand clients that each send half a request line and wait made every
other request, even `/_mgmt/ping`, answer 503 for as long as they stayed (issue 14). This
protocol instead:

- gives each request a deadline for its head (request line and headers, from its first
  byte, or from the connection's opening) and then one for its body; a client that misses
  one gets a 408 and its connection is closed;
- refuses a head larger than `max_head_bytes` with a 431 (uvicorn's httptools protocol has
  no bound and would buffer it all);
- caps the connections of a worker at `max_connections` by dropping, when a new one
  arrives at the cap, the connection that has waited longest for its client (idle between
  requests, or still sending a head or body). Connections whose request the API is
  answering are never dropped; a new connection that finds only those gets a 503.

So an attack holds at most a bounded number of slots for at most a deadline each, and a
client that sends its request promptly is served while it runs. The settings are
`CUBESTAC_SERVER__*` (`catalogue.settings.ServerSettings`), carried to each worker process
on the uvicorn config (`ServeConfig`).
"""

from __future__ import annotations

import asyncio
import enum
import logging
from typing import Any

import orjson
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from catalogue.settings import ServerSettings

logger = logging.getLogger(__name__)


class ServeConfig(uvicorn.Config):
    """A uvicorn config that also carries the server bounds (pickled to each worker)."""

    def __init__(self, app: Any, *, server_settings: ServerSettings, **options: Any) -> None:
        super().__init__(app, **options)
        self.server_settings = server_settings


class Phase(enum.Enum):
    HEAD = "head"  # waiting for (the rest of) a request's head
    BODY = "body"  # waiting for (the rest of) its body
    BUSY = "busy"  # the request is complete; the API is answering it
    IDLE = "idle"  # between requests on a keep-alive connection


WAITING = {Phase.HEAD, Phase.BODY, Phase.IDLE}


def _response(status: int, reason: str, code: str, description: str) -> bytes:
    body = orjson.dumps({"code": code, "description": description})
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """`HttpToolsProtocol` with head/body deadlines, a head size cap and a connection cap."""

    def __init__(
        self,
        config: uvicorn.Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.bounds: ServerSettings = getattr(config, "server_settings", None) or ServerSettings()
        self.phase = Phase.HEAD
        self.opened_at = 0.0
        self.head_bytes = 0
        self.deadline: asyncio.TimerHandle | None = None

    # -- connection ------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]  # uvicorn narrows BaseTransport the same way
        super().connection_made(transport)
        self.opened_at = self.loop.time()
        self._start_head()
        if len(self.connections) > self.bounds.max_connections and not self._drop_longest_waiting():
            self._refuse(503, "Service Unavailable", "ServerBusy", "every connection is busy")

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _drop_longest_waiting(self) -> bool:
        """Close the connection that has waited longest for its client; False if none waits."""
        waiting = [
            other
            for other in self.connections
            if isinstance(other, GuardedHttpToolsProtocol)
            and other is not self
            and other.phase in WAITING
            and not other.transport.is_closing()
        ]
        if not waiting:
            return False
        oldest = min(waiting, key=lambda other: other.opened_at)
        self._warn_at_cap()
        oldest.transport.close()
        return True

    def _warn_at_cap(self) -> None:
        """One warning a minute per worker, not one per dropped connection."""
        now = self.loop.time()
        if now - getattr(self.server_state, "cap_warned_at", -60.0) >= 60.0:
            self.server_state.cap_warned_at = now  # type: ignore[attr-defined]  # our own mark on uvicorn's per-worker state
            logger.warning(
                "%d connections (CUBESTAC_SERVER__MAX_CONNECTIONS): dropping those that wait"
                " longest for their client",
                self.bounds.max_connections,
            )

    # -- reading ---------------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        if self.phase is Phase.IDLE:  # the first bytes of the next request
            self._start_head()
        if self.phase is Phase.HEAD:
            self.head_bytes += len(data)
            if self.head_bytes > self.bounds.max_head_bytes:
                self._refuse(
                    431,
                    "Request Header Fields Too Large",
                    "RequestHeadTooLarge",
                    f"request line and headers exceed {self.bounds.max_head_bytes} bytes"
                    " (limit CUBESTAC_SERVER__MAX_HEAD_BYTES)",
                )
                return
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self.phase is not Phase.HEAD:  # a pipelined request
            self._start_head()

    def on_headers_complete(self) -> None:
        self.phase = Phase.BODY
        self._arm(self.bounds.body_timeout_s)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        if self.cycle is not None and self.cycle.response_complete:
            # answered before its body ended (a 413): idle now, under the keep-alive timeout
            # that the body's bytes kept cancelling
            self.phase = Phase.IDLE
            self._unset_keepalive_if_required()
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self.timeout_keep_alive_handler
            )
        else:
            self.phase = Phase.BUSY
        super().on_message_complete()

    def on_response_complete(self) -> None:
        pipelined = bool(self.pipeline)  # then the next request starts now: still busy
        super().on_response_complete()
        if self.phase is Phase.BUSY and not pipelined:
            self.phase = Phase.IDLE

    # -- deadlines -------------------------------------------------------------------------
    def _start_head(self) -> None:
        self.phase = Phase.HEAD
        self.head_bytes = 0
        self._arm(self.bounds.header_timeout_s)

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self.deadline = self.loop.call_later(seconds, self._expired)

    def _disarm(self) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None

    def _expired(self) -> None:
        self.deadline = None
        if self.phase is Phase.HEAD:
            seconds, setting, what = self.bounds.header_timeout_s, "HEADER_TIMEOUT_S", "head"
        else:
            seconds, setting, what = self.bounds.body_timeout_s, "BODY_TIMEOUT_S", "body"
        self._refuse(
            408,
            "Request Timeout",
            "RequestTimeout",
            f"the request {what} was not complete within {seconds:g} s"
            f" (limit CUBESTAC_SERVER__{setting})",
        )

    def _refuse(self, status: int, reason: str, code: str, description: str) -> None:
        """Answer `status` unless a response has started, then close the connection."""
        self._disarm()
        if self.transport.is_closing():
            return
        if self.cycle is None or not self.cycle.response_started:
            self.transport.write(_response(status, reason, code, description))
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.disconnected = True  # the app's later sends go nowhere
        self.transport.close()
