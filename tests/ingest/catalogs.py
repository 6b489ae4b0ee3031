"""Generated upstreams for the harvesting tests: a nested static catalog on disk, served by
a real HTTP file server thread on 127.0.0.1 (with injectable failures and delays)."""

from __future__ import annotations

import json
import os
import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

EXTENSIONS = ["https://stac-extensions.github.io/projection/v2.0.0/schema.json"]


def _write(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=1))


def catalog_item(item_id: str, collection: str, index: int) -> dict[str, Any]:
    lon, lat = -5 + (index % 30), 40 + (index // 30) % 25
    when = datetime(2020, 1, 1, tzinfo=UTC) + timedelta(days=index)
    ring = [[lon, lat], [lon + 0.5, lat], [lon + 0.5, lat + 0.5], [lon, lat + 0.5], [lon, lat]]
    return {
        "type": "Feature",
        "stac_version": "1.1.0",
        "stac_extensions": EXTENSIONS,
        "id": item_id,
        "collection": collection,
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "bbox": [lon, lat, lon + 0.5, lat + 0.5],
        "properties": {
            "datetime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "proj:code": "EPSG:3035",
        },
        "links": [
            {"rel": "collection", "href": "../collection.json", "type": "application/json"},
            {"rel": "parent", "href": "../collection.json", "type": "application/json"},
            {"rel": "root", "href": "../../catalog.json", "type": "application/json"},
        ],
        "assets": {
            "cog": {
                "href": f"./{item_id}.tif",
                "type": "image/tiff; application=geotiff; profile=cloud-optimized",
                "roles": ["data"],
            },
            "zarr": {
                "href": f"../../cubes/{item_id}.zarr",
                "type": "application/vnd.zarr",
                "roles": ["data"],
            },
        },
    }


def _collection(collection_id: str, items: list[str], depth: int) -> dict[str, Any]:
    up = "../" * depth
    return {
        "type": "Collection",
        "stac_version": "1.1.0",
        "id": collection_id,
        "description": f"Generated collection {collection_id}",
        "license": "CC-BY-4.0",
        "extent": {
            "spatial": {"bbox": [[-5.0, 40.0, 25.5, 65.5]]},
            "temporal": {"interval": [["2020-01-01T00:00:00Z", None]]},
        },
        "links": [
            {"rel": "root", "href": f"{up}catalog.json"},
            {"rel": "parent", "href": "../catalog.json" if depth > 1 else f"{up}catalog.json"},
            {"rel": "license", "href": "./LICENSE.txt", "type": "text/plain"},
        ]
        + [{"rel": "item", "href": f"./{item}/{item}.json"} for item in items],
        "assets": {"thumbnail": {"href": "./thumb.png", "type": "image/png"}},
    }


@dataclass
class StaticCatalog:
    """A catalog on disk: root -> forest (sub-catalog) -> gami (collection), and
    root -> biomass (collection). Items live in `<collection dir>/<id>/<id>.json`."""

    root: Path
    items: dict[str, Path] = field(default_factory=dict)  # item id -> file

    @property
    def catalog(self) -> Path:
        return self.root / "catalog.json"

    def item_path(self, item_id: str) -> Path:
        return self.items[item_id]

    def rewrite_item(self, item_id: str, change: dict[str, Any]) -> None:
        """Change an item file and move its mtime on (HTTP dates have 1 s resolution)."""
        path = self.items[item_id]
        document = json.loads(path.read_text())
        document["properties"].update(change)
        path.write_text(json.dumps(document, indent=1))
        stamp = time.time() + 5
        os.utime(path, (stamp, stamp))

    def remove_item(self, item_id: str) -> None:
        path = self.items.pop(item_id)
        collection_file = path.parent.parent / "collection.json"
        document = json.loads(collection_file.read_text())
        document["links"] = [
            link for link in document["links"] if not link["href"].endswith(f"/{item_id}.json")
        ]
        collection_file.write_text(json.dumps(document, indent=1))
        stamp = time.time() + 5
        os.utime(collection_file, (stamp, stamp))
        path.unlink()


def build_static_catalog(root: Path, gami: int = 200, biomass: int = 100) -> StaticCatalog:
    catalog = StaticCatalog(root)
    sections = (
        ("gami", root / "forest" / "gami", gami, 2),
        ("biomass", root / "biomass", biomass, 1),
    )
    offset = 0
    for collection_id, folder, count, depth in sections:
        ids = [f"{collection_id}-{index:04d}" for index in range(count)]
        for index, item_id in enumerate(ids):
            path = folder / item_id / f"{item_id}.json"
            _write(path, catalog_item(item_id, collection_id, offset + index))
            catalog.items[item_id] = path
        _write(folder / "collection.json", _collection(collection_id, ids, depth))
        offset += count
    _write(
        root / "forest" / "catalog.json",
        {
            "type": "Catalog",
            "stac_version": "1.1.0",
            "id": "forest",
            "description": "Forest products",
            "links": [
                {"rel": "root", "href": "../catalog.json"},
                {"rel": "child", "href": "./gami/collection.json"},
            ],
        },
    )
    _write(
        catalog.catalog,
        {
            "type": "Catalog",
            "stac_version": "1.1.0",
            "id": "eo-forest",
            "description": "A generated EO forest catalog",
            "links": [
                {"rel": "root", "href": "./catalog.json"},
                {"rel": "child", "href": "./forest/catalog.json"},
                {"rel": "child", "href": "./biomass/collection.json"},
            ],
        },
    )
    return catalog


@dataclass
class Faults:
    """What the file server does wrong, by URL path: fail N times (None: always) with a
    status or a misbehaviour, or delay item requests.

    Misbehaviours: `timeout` (no answer for `hang_s`), `reset` (an RST instead of an
    answer), `truncate` (promises 10 kB, sends 10 bytes, hangs up), `garbage` (a 200 whose
    body is not JSON). Every request is recorded.
    """

    failures: dict[str, tuple[int | None, int | str]] = field(default_factory=dict)
    delay_s: float = 0.0
    hang_s: float = 1.5
    gate: threading.Event | None = None  # when set, item requests wait for it
    requests: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(self, path: str, times: int | None, how: int | str = 503) -> None:
        with self.lock:
            self.failures[path] = (times, how)

    def take_failure(self, path: str) -> int | str | None:
        with self.lock:
            self.requests.append(path)
            times, how = self.failures.get(path, (0, 0))
            if times is not None and times <= 0:
                return None
            if times is not None:
                self.failures[path] = (times - 1, how)
            return how


class _Handler(SimpleHTTPRequestHandler):
    faults: Faults

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        return None

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        how = self.faults.take_failure(self.path)
        if isinstance(how, int):
            self.send_error(how, "injected failure")
            return
        if how is not None:
            self._misbehave(how)
            return
        if self.path.endswith(".json") and "catalog" not in self.path:
            if self.faults.gate is not None:
                self.faults.gate.wait(timeout=30)
            if self.faults.delay_s:
                time.sleep(self.faults.delay_s)
        super().do_GET()

    def _misbehave(self, how: str) -> None:
        self.close_connection = True
        if how == "timeout":
            time.sleep(self.faults.hang_s)
        elif how == "reset":
            linger = struct.pack("ii", 1, 0)
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
            self.connection.close()
        elif how == "truncate":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "10000")
            self.end_headers()
            self.wfile.write(b'{"type": "')
        elif how == "garbage":
            body = b"\x00\xff<html>not json at all"
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            raise ValueError(f"unknown misbehaviour {how!r}")


@contextmanager
def file_server(directory: Path, faults: Faults | None = None) -> Iterator[str]:
    """Serve `directory` over HTTP on 127.0.0.1 in a thread; yields the base URL."""
    handler = type("Handler", (_Handler,), {"faults": faults or Faults()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(directory)))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
