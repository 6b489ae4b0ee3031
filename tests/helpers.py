"""Helpers shared by the tests: free ports, settings, sample items and a live uvicorn server."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import uvicorn
from fastapi import FastAPI
from sqlalchemy import URL

from catalogue.settings import Settings

TEST_API_KEY = "test-key-0123456789"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_settings(url: URL, api_key: str | None = TEST_API_KEY, **extra: Any) -> Settings:
    return Settings(
        database_url=url.render_as_string(hide_password=False), api_key=api_key, **extra
    )


def make_collection(collection_id: str = "test-collection", **extra: Any) -> dict[str, Any]:
    return {
        "type": "Collection",
        "stac_version": "1.1.0",
        "id": collection_id,
        "description": f"Test collection {collection_id}",
        "license": "CC-BY-4.0",
        "extent": {
            "spatial": {"bbox": [[-180.0, -90.0, 180.0, 90.0]]},
            "temporal": {"interval": [["2020-01-01T00:00:00Z", None]]},
        },
        "links": [],
        **extra,
    }


def make_item(
    item_id: str,
    collection_id: str = "test-collection",
    *,
    lon: float = 10.0,
    lat: float = 50.0,
    size: float = 1.0,
    when: datetime | None = None,
    **properties: Any,
) -> dict[str, Any]:
    when = when or datetime(2021, 6, 1, tzinfo=UTC)
    ring = [[lon, lat], [lon + size, lat], [lon + size, lat + size], [lon, lat + size], [lon, lat]]
    return {
        "type": "Feature",
        "stac_version": "1.1.0",
        "stac_extensions": [],
        "id": item_id,
        "collection": collection_id,
        "bbox": [lon, lat, lon + size, lat + size],
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "properties": {"datetime": when.strftime("%Y-%m-%dT%H:%M:%SZ"), **properties},
        "assets": {
            "data": {
                "href": f"https://example.com/data/{item_id}.tif",
                "type": "image/tiff; application=geotiff",
                "roles": ["data"],
            }
        },
        "links": [],
    }


def grid_items(count: int, collection_id: str = "test-collection") -> list[dict[str, Any]]:
    """`count` small items on a grid over Europe, one hour apart, newest last."""
    start = datetime(2021, 1, 1, tzinfo=UTC)
    return [
        make_item(
            f"item-{index:04d}",
            collection_id,
            lon=-10 + (index % 40),
            lat=35 + (index // 40) % 35,
            size=0.5,
            when=start + timedelta(hours=index),
        )
        for index in range(count)
    ]


@contextmanager
def live_server(app: FastAPI) -> Iterator[str]:
    """Serve `app` with uvicorn on 127.0.0.1 in a thread; yields the base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", lifespan="on", log_config=None)
    )

    def run() -> None:
        try:
            server.run(sockets=[sock])
        except SystemExit:  # uvicorn exits on a failed startup; the caller sees RuntimeError
            pass

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        sock.close()


async def explain(conn: Any, statement: Any, parameters: dict[str, Any] | None = None) -> str:
    """PostgreSQL's plan of a Core statement, its parameters (`parameters` for the named
    ones) bound as the API binds them."""
    compiled = statement.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    values = compiled.construct_params(parameters or {})
    params = tuple(values[name] for name in compiled.positiontup or ())
    return "\n".join(row[0] for row in await conn.exec_driver_sql(f"EXPLAIN {compiled}", params))


class FreezableProxy:
    """A TCP relay on 127.0.0.1 to `target_port` that can stop relaying without closing
    anything: what a network partition looks like to a client (no refusal, no reset,
    only silence), the case where a probe with no deadline of its own would hang."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.flowing = threading.Event()
        self.flowing.set()
        self.closed = False
        self.sockets: list[socket.socket] = [self.listener]
        threading.Thread(target=self._accept, daemon=True).start()

    def freeze(self) -> None:
        self.flowing.clear()

    def thaw(self) -> None:
        self.flowing.set()

    def close(self) -> None:
        self.closed = True
        self.flowing.set()
        for sock in self.sockets:
            _hang_up(sock)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.sockets.append(client)
            threading.Thread(target=self._connect, args=(client,), daemon=True).start()

    def _connect(self, client: socket.socket) -> None:
        self.flowing.wait()
        if self.closed:
            return
        upstream = socket.create_connection(("127.0.0.1", self.target_port))
        self.sockets.append(upstream)
        threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()
        self._pump(client, upstream)

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        while True:
            try:
                data = source.recv(65536)
                self.flowing.wait()
                if not data or self.closed:
                    break
                target.sendall(data)
            except OSError:
                break
        for sock in (source, target):
            _hang_up(sock)


def _hang_up(sock: socket.socket) -> None:
    """`shutdown` first: it wakes a thread blocked in `recv` and tells the peer; a bare
    `close` from another thread does neither."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
