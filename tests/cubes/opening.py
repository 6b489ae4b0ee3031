"""Counting the requests a Zarr reader makes, at the server: an ASGI middleware for our API,
a WSGI one for moto's S3. Used by the `test_open_*` tests to prove lazy opening."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

METADATA_KEYS = frozenset({".zmetadata", ".zgroup", ".zattrs", ".zarray", "zarr.json"})


@dataclass
class RequestLog:
    """(method, store key) of every request under a prefix, in arrival order."""

    prefix: str
    entries: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, method: str, path: str) -> None:
        if path.startswith(self.prefix):
            with self.lock:
                self.entries.append((method, path))

    def take(self) -> list[tuple[str, str]]:
        """The entries so far, and a fresh start."""
        with self.lock:
            entries, self.entries = self.entries, []
        return entries


class ASGIRequestLog:
    """Records requests, then lets the app answer them."""

    def __init__(self, app: ASGIApp, log: RequestLog) -> None:
        self.app = app
        self.log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.log.record(scope["method"], scope["path"])
        await self.app(scope, receive, send)


class WSGIRequestLog:
    def __init__(self, app: Callable[..., Iterable[bytes]], log: RequestLog) -> None:
        self.app = app
        self.log = log

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]):
        self.log.record(environ["REQUEST_METHOD"], environ.get("PATH_INFO", ""))
        return self.app(environ, start_response)


def is_metadata(path: str) -> bool:
    return path.rsplit("/", 1)[-1] in METADATA_KEYS


def metadata_before_first_chunk(entries: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The requests a reader made before it asked for its first chunk of any array."""
    before = []
    for method, path in entries:
        if not is_metadata(path):
            break
        before.append((method, path))
    return before


def chunk_arrays(entries: list[tuple[str, str]], store_path: str) -> list[str]:
    """The array names of the chunk requests (`<store>/<array>/<chunk key>`)."""
    return [
        path[len(store_path) :].strip("/").split("/", 1)[0]
        for _, path in entries
        if not is_metadata(path)
    ]


def chunk_keys(entries: list[tuple[str, str]], store_path: str) -> list[str]:
    """`<array>/<chunk key>` of each chunk request, in order."""
    return [path[len(store_path) :].strip("/") for _, path in entries if not is_metadata(path)]


def pixel_series_keys(variable: Any, row: int, col: int, zarr_format: int) -> list[str]:
    """The chunk keys holding one pixel's series of a (time, y, x) variable, one per time
    step: `agb/3.1.2` in Zarr format 2, `agb/c/3/1/2` in format 3 (default key encodings)."""
    chunks = variable.encoding["chunks"]
    assert tuple(variable.dims) == ("time", "y", "x")
    ty, tx = row // chunks[1], col // chunks[2]
    steps = range(0, variable.sizes["time"], chunks[0])
    if zarr_format == 2:
        return [f"{variable.name}/{t // chunks[0]}.{ty}.{tx}" for t in steps]
    return [f"{variable.name}/c/{t // chunks[0]}/{ty}/{tx}" for t in steps]


def metadata_keys(zarr_format: int) -> set[str]:
    """What zarr-python 3 reads to open a group with consolidated metadata. Format 3: the
    group's zarr.json, which holds the consolidated metadata. Format 2: .zgroup, .zattrs and
    .zmetadata, requested together (one `asyncio.gather`, so one round trip)."""
    return {"zarr.json"} if zarr_format == 3 else {".zgroup", ".zattrs", ".zmetadata"}
