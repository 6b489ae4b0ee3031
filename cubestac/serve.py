"""Running the API under uvicorn, with the bounds on slow clients (`cubestac.http_guard`).

No TCP_NODELAY work-around: uvicorn (0.55, pinned in requirements.lock) binds its socket
with `proto=IPPROTO_TCP`, so asyncio sets TCP_NODELAY on every connection even with
`--workers N` (uvicorn#3149, the ~40 ms delayed-ACK wait per keep-alive response, is fixed
there; bench/results/nodelay.md). tests/cli/test_patched_internals.py fails if that changes.
"""

from __future__ import annotations

import atexit
import logging
import os
import resource
import shutil
import tempfile
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


def worker_app() -> FastAPI:
    """The factory each uvicorn worker calls: settings from the environment. A worker that
    `--workers N` spawned is a fresh interpreter: its logging (the access log) is set up
    here, unless whoever runs it did that already; repeated warnings are rate-limited."""
    if not logging.getLogger().handlers:
        configure_logging()
    limit_repeated_warnings()
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
