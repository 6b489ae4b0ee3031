"""The asyncio and uvicorn internals `cubestac serve` relies on, pinned.

- TCP_NODELAY: cubestac once replaced asyncio's private `base_events._set_nodelay`, because
  uvicorn bound its `--workers N` socket with proto=0 and asyncio then left Nagle on (every
  keep-alive response waited ~40 ms for a delayed ACK, uvicorn#3149). The pinned uvicorn
  (requirements.lock) binds with IPPROTO_TCP, so the patch was removed
  (bench/results/nodelay.md); these tests fail if either half of that stops holding.
- `cubestac.http_guard.GuardedHttpToolsProtocol` subclasses uvicorn's httptools protocol,
  overrides its callbacks and calls one private helper.
"""

from __future__ import annotations

import asyncio
import inspect
import socket
from asyncio import selector_events

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from catalogue.settings import Settings
from cubestac.http_guard import GuardedHttpToolsProtocol
from cubestac.serve import server_config

NODELAY = "cubestac/serve.py: TCP_NODELAY on --workers sockets (bench/results/nodelay.md)"
GUARD_PATCH = "cubestac/http_guard.py (GuardedHttpToolsProtocol)"


async def _nodelay_of_a_connection(sock: socket.socket) -> int:
    """TCP_NODELAY on the connection asyncio accepts from `sock`."""
    loop = asyncio.get_running_loop()
    seen: asyncio.Future[int] = loop.create_future()

    class Probe(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            accepted = transport.get_extra_info("socket")
            seen.set_result(accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    server = await loop.create_server(Probe, sock=sock)
    try:
        _, writer = await asyncio.open_connection(*sock.getsockname()[:2])
        value = await asyncio.wait_for(seen, 10)
        writer.close()
        return value
    finally:
        server.close()


async def test_the_workers_socket_is_bound_so_that_asyncio_sets_nodelay() -> None:
    """`cubestac serve --workers 2` hands uvicorn's bound socket to its workers."""
    settings = Settings(database_url="postgresql://unused@127.0.0.1/unused")
    sock = server_config(settings, "127.0.0.1", 0, workers=2).bind_socket()
    assert sock.proto == socket.IPPROTO_TCP, (
        f"uvicorn binds with proto={sock.proto} again (uvicorn#3149): revisit {NODELAY}"
    )
    assert await _nodelay_of_a_connection(sock), f"asyncio left TCP_NODELAY off: revisit {NODELAY}"


async def test_asyncio_sets_nodelay_only_on_sockets_that_name_tcp() -> None:
    """Why the binding matters: a proto=0 socket gets no TCP_NODELAY from asyncio."""
    init = inspect.getsource(selector_events._SelectorSocketTransport.__init__)
    assert "base_events._set_nodelay(self._sock)" in init, NODELAY
    unnamed = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    unnamed.bind(("127.0.0.1", 0))
    assert unnamed.proto == 0
    assert not await _nodelay_of_a_connection(unnamed)


def test_the_httptools_hooks_the_guard_overrides_are_still_there() -> None:
    parameters = list(inspect.signature(HttpToolsProtocol.__init__).parameters)
    assert parameters == ["self", "config", "server_state", "app_state", "_loop"], (
        f"HttpToolsProtocol.__init__ is now {parameters}: revisit {GUARD_PATCH}"
    )
    methods = {
        name
        for name, value in vars(GuardedHttpToolsProtocol).items()
        if callable(value) and not name.startswith("__")
    }
    overridden = {name for name in methods if not name.startswith("_")}
    assert {"connection_made", "data_received", "on_message_complete"} <= overridden
    relied_on = overridden | {"_unset_keepalive_if_required"}
    missing = sorted(name for name in relied_on if not hasattr(HttpToolsProtocol, name))
    assert missing == [], f"uvicorn's HttpToolsProtocol lost {missing}: revisit {GUARD_PATCH}"
    clash = sorted(name for name in methods - overridden if hasattr(HttpToolsProtocol, name))
    assert clash == [], f"uvicorn's HttpToolsProtocol now has our {clash}: revisit {GUARD_PATCH}"
