"""Rendered tiles kept in memory, by ETag, up to a byte budget (least recently used out).

A tile's ETag names the store version, the slice, the style and the tile, and a store
version is never rewritten: an entry can never be stale, only evicted.
"""

from __future__ import annotations

import threading
from collections import OrderedDict


class TileCache:
    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._bytes = 0
        self._tiles: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        with self._lock:
            body = self._tiles.get(key)
            if body is not None:
                self._tiles.move_to_end(key)
            return body

    def put(self, key: str, body: bytes) -> None:
        if len(body) > self._max_bytes:
            return
        with self._lock:
            if key in self._tiles:
                return
            self._tiles[key] = body
            self._bytes += len(body)
            while self._bytes > self._max_bytes:
                _, evicted = self._tiles.popitem(last=False)
                self._bytes -= len(evicted)
