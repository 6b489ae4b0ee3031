"""Running the API under uvicorn, including the multi-worker TCP_NODELAY fix."""

from __future__ import annotations

import socket
from asyncio import base_events

import uvicorn
from fastapi import FastAPI

from api import create_app


def _set_nodelay(sock: socket.socket) -> None:
    if sock.family in {socket.AF_INET, socket.AF_INET6} and sock.type == socket.SOCK_STREAM:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def enable_tcp_nodelay() -> None:
    """Work around uvicorn#3149: with `--workers N > 1` uvicorn binds with proto=0, asyncio
    then skips TCP_NODELAY and every keep-alive response waits ~40 ms for a delayed ACK.
    Replacing asyncio's private helper is the work-around the issue thread recommends.
    Under uvloop (installed with cubestac, picked by uvicorn's `loop="auto"`) it is not
    needed, as uvloop sets TCP_NODELAY on every TCP connection itself; it stays for the
    asyncio loop, which uvicorn falls back to where uvloop is missing."""
    base_events._set_nodelay = _set_nodelay  # type: ignore[attr-defined]  # private asyncio helper, see docstring


def worker_app() -> FastAPI:
    """The factory each uvicorn worker calls: settings from the environment."""
    enable_tcp_nodelay()
    return create_app()


def serve(host: str, port: int, workers: int) -> None:
    enable_tcp_nodelay()
    uvicorn.run(
        "cubestac.serve:worker_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        server_header=False,  # no software banner to fingerprint the service by
        timeout_keep_alive=30,
        limit_concurrency=1000,
        log_config=None,
    )
