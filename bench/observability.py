"""Per-request cost of the access log and the metrics (api/observability.py), in-process.

Two measures, each without HTTP or a database so that the middleware's own cost is not
lost in the noise of a socket:
- `GET /_mgmt/ping` through the whole app (`create_app`), with and without the middleware;
- the middleware alone around an ASGI app that only answers 200 (the precise figure).
Cases: no observability middleware; metrics only; metrics and the access log written as
JSON lines (what `cubestac serve` does when stderr is not a terminal, here into
/dev/null); the same in prometheus-client's multiprocess mode (`--workers N`). Each case
runs in a fresh interpreter, since the multiprocess mode is chosen at import. The figure
is the best of `--repeat` runs (the least disturbed by other processes).

    .venv/bin/python bench/observability.py [--requests 20000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import subprocess
import sys
import tempfile
import time

CASES = {
    "no middleware": {"middleware": False, "metrics": False, "access_log": False},
    "metrics": {"middleware": True, "metrics": True, "access_log": False},
    "metrics + access log (JSON)": {"middleware": True, "metrics": True, "access_log": True},
    "metrics, multiprocess mode": {
        "middleware": True,
        "metrics": True,
        "access_log": False,
        "multiprocess": True,
    },
    "metrics + access log, multiproc.": {
        "middleware": True,
        "metrics": True,
        "access_log": True,
        "multiprocess": True,
    },
}


def _app(case: dict[str, bool]):  # noqa: ANN202 - FastAPI, imported late on purpose
    from api import create_app
    from catalogue.settings import MonitoringSettings, Settings
    from cubestac.logs import JsonLineFormatter, RepeatFilter

    monitoring = MonitoringSettings(metrics=case["metrics"], access_log=case["access_log"])
    settings = Settings(database_url="postgresql://bench@127.0.0.1:1/none", monitoring=monitoring)
    app = create_app(settings)
    if not case["middleware"]:
        app.user_middleware = [
            m for m in app.user_middleware if m.cls.__name__ != "ObservabilityMiddleware"
        ]
    handler = logging.StreamHandler(open(os.devnull, "w"))  # noqa: SIM115 - lives as long as the run
    handler.setFormatter(JsonLineFormatter())
    handler.addFilter(RepeatFilter(handler.handle))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    return app


def _bare(case: dict[str, bool]):  # noqa: ANN202 - an ASGI app
    """The middleware alone (or nothing) around an app that answers 200 at once."""
    app = _app(case)  # the same logging set-up and metrics objects as the full app

    async def ok(scope: dict, receive, send) -> None:  # noqa: ANN001 - ASGI callables
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    if not case["middleware"]:
        return ok
    from api.observability import ObservabilityMiddleware

    [options] = [m.kwargs for m in app.user_middleware if m.cls is ObservabilityMiddleware]
    return ObservabilityMiddleware(ok, **options)


async def _measure(app, requests: int) -> float:  # noqa: ANN001 - an ASGI app
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/_mgmt/ping",
        "raw_path": b"/_mgmt/ping",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"bench")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        pass

    for _ in range(500):  # warm-up: middleware stack, labelled series, caches
        await app(dict(scope), receive, send)
    started = time.perf_counter()
    for _ in range(requests):
        await app(dict(scope), receive, send)
    return (time.perf_counter() - started) / requests * 1e6


def _child(name: str, requests: int) -> None:
    full = asyncio.run(_measure(_app(CASES[name]), requests))
    bare = asyncio.run(_measure(_bare(CASES[name]), requests))
    print(json.dumps([full, bare]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.requests)
        return
    results: dict[str, list[list[float]]] = {name: [] for name in CASES}
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(args.repeat):
            for name, case in CASES.items():
                env = dict(os.environ)
                env.pop("PROMETHEUS_MULTIPROC_DIR", None)
                if case.get("multiprocess"):
                    env["PROMETHEUS_MULTIPROC_DIR"] = folder
                command = [sys.executable, __file__, "--child", name, "--requests"]
                output = subprocess.run(
                    [*command, str(args.requests)], env=env, capture_output=True, text=True
                )
                results[name].append(json.loads(output.stdout.strip().splitlines()[-1]))
    print(f"{args.requests} requests in-process, best of {args.repeat}, us/request")
    print(f"  {'case':<30} {'GET /_mgmt/ping':>22} {'middleware alone':>22}")
    base = [min(run[index] for run in results["no middleware"]) for index in (0, 1)]
    for name, runs in results.items():
        best = [min(run[index] for run in runs) for index in (0, 1)]
        cells = [f"{b:7.1f} (+{b - b0:5.1f})" for b, b0 in zip(best, base, strict=True)]
        print(f"  {name:<30} {cells[0]:>22} {cells[1]:>22}")


if __name__ == "__main__":
    main()
