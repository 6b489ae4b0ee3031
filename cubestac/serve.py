"""Running the API under uvicorn, including the multi-worker TCP_NODELAY fix and the
bounds on slow clients (`cubestac.http_guard`)."""

from __future__ import annotations

import atexit
import logging
import os
import resource
import shutil
import socket
import tempfile
from asyncio import base_events
from pathlib import Path

import uvicorn
from fastapi import FastAPI
from uvicorn.main import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from api import create_app
from api.metrics import MULTIPROCESS_ENV
from catalogue.settings import Settings
from cubestac.http_guard import GuardedHttpToolsProtocol, ServeConfig
from cubestac.logs import configure_logging, limit_repeated_warnings

logger = logging.getLogger(__name__)

# descriptors a worker needs beside its client connections: database pool, files, logs
SPARE_DESCRIPTORS = 256


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
    """The factory each uvicorn worker calls: settings from the environment. A worker that
    `--workers N` spawned is a fresh interpreter: its logging (the access log) is set up
    here, unless whoever runs it did that already; repeated warnings are rate-limited."""
    if not logging.getLogger().handlers:
        configure_logging()
    limit_repeated_warnings()
    enable_tcp_nodelay()
    return create_app()


def prepare_multiprocess_metrics(workers: int) -> None:
    """A folder for prometheus-client's multiprocess mode when several workers serve, so
    that `/metrics` sums all of them (api.metrics). It must be set before the workers
    import prometheus-client, and start empty: values of an earlier run would be summed
    in. An operator's own `PROMETHEUS_MULTIPROC_DIR` is used (and emptied of metric
    files); otherwise a temporary folder is made and removed when the server exits."""
    configured = os.environ.get(MULTIPROCESS_ENV)
    if configured:
        for stale in Path(configured).glob("*.db"):
            stale.unlink()
    elif workers > 1:
        folder = tempfile.mkdtemp(prefix="cubestac-metrics-")
        os.environ[MULTIPROCESS_ENV] = folder
        atexit.register(shutil.rmtree, folder, ignore_errors=True)


def raise_descriptor_limit(connections: int) -> None:
    """Let the process hold `connections` sockets: raise the soft open-files limit towards
    the hard one, and warn when even that is too low (accepting would then fail instead of
    the connection cap dropping the longest-waiting client)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = connections + SPARE_DESCRIPTORS
    if soft != resource.RLIM_INFINITY and soft < wanted:
        soft = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    if soft != resource.RLIM_INFINITY and soft < wanted:
        logger.warning(
            "open-files limit %d is below CUBESTAC_SERVER__MAX_CONNECTIONS + %d", soft, wanted
        )


def server_config(settings: Settings, host: str, port: int, workers: int) -> ServeConfig:
    """The uvicorn configuration of `cubestac serve` (tests start uvicorn with it too).

    No `limit_concurrency`: uvicorn counts open connections against it, so idle or slow
    clients made everyone else's requests 503; the guarded protocol bounds connections and
    drops the longest-waiting one instead."""
    return ServeConfig(
        "cubestac.serve:worker_app",
        server_settings=settings.server,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        http=GuardedHttpToolsProtocol,
        access_log=False,
        server_header=False,  # no software banner to fingerprint the service by
        timeout_keep_alive=settings.server.keep_alive_s,
        log_config=None,
    )


def serve(host: str, port: int, workers: int, settings: Settings | None = None) -> None:
    """Run the API until interrupted (uvicorn.run's steps, with our config)."""
    settings = settings or Settings()
    enable_tcp_nodelay()
    raise_descriptor_limit(settings.server.max_connections)
    prepare_multiprocess_metrics(workers)
    config = server_config(settings, host, port, workers)
    server = uvicorn.Server(config)
    if workers > 1:
        Multiprocess(config, sockets=[config.bind_socket()]).run()
    else:
        server.run()
        if not server.started:  # as uvicorn.run: the port was taken or the lifespan failed
            raise SystemExit(STARTUP_FAILURE)
