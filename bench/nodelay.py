#!/usr/bin/env python3
"""Keep-alive latency of `--workers 2` under the asyncio loop: does TCP_NODELAY need a patch?

cubestac once replaced asyncio's private `base_events._set_nodelay` because uvicorn bound
its multi-worker socket with proto=0 and asyncio then left Nagle on (uvicorn#3149). This
bench serves a 200-byte response from two uvicorn workers (asyncio loop, httptools) on a
socket bound two ways -- by uvicorn itself (as `cubestac serve --workers 2` does), and with
proto=0 (the old binding, the peer) -- and times REQUESTS keep-alive requests on one
connection. Markdown on stdout.

`python bench/nodelay.py [--requests 50]`
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import time
from typing import Any

import httpx
import uvicorn
from uvicorn.supervisors import Multiprocess

BODY = b"x" * 200


async def plain(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": BODY})


def bound(how: str) -> socket.socket:
    if how == "uvicorn":
        return uvicorn.Config(app=plain, host="127.0.0.1", port=0).bind_socket()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)  # proto 0
    sock.bind(("127.0.0.1", 0))
    sock.set_inheritable(True)
    return sock


def serve(how: str) -> None:
    """Child process: two workers on the socket bound `how`, until terminated."""
    sock = bound(how)
    print(sock.getsockname()[1], flush=True)
    config = uvicorn.Config(
        "bench.nodelay:plain", workers=2, loop="asyncio", http="httptools", log_level="warning"
    )
    Multiprocess(config, sockets=[sock]).run()


def measure(how: str, requests: int) -> list[float]:
    server = subprocess.Popen(
        [sys.executable, "-m", "bench.nodelay", "--serve", how], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        url = f"http://127.0.0.1:{server.stdout.readline().strip()}/"
        with httpx.Client() as client:
            for _ in range(100):
                try:
                    client.get(url)
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            timings = []
            for _ in range(requests):
                start = time.perf_counter()
                client.get(url).raise_for_status()
                timings.append((time.perf_counter() - start) * 1000)
            return timings
    finally:
        server.terminate()
        server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--serve", choices=["uvicorn", "proto0"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    print(f"uvicorn {uvicorn.__version__}, Python {sys.version.split()[0]}, asyncio loop\n")
    print("| socket bound | TCP_NODELAY patch | p50 ms | max ms |\n| --- | --- | --- | --- |")
    for how, label in [("uvicorn", "by uvicorn (ours)"), ("proto0", "proto=0 (peer: old uvicorn)")]:
        timings = measure(how, args.requests)
        print(f"| {label} | none | {statistics.median(timings):.2f} | {max(timings):.2f} |")


if __name__ == "__main__":
    main()
