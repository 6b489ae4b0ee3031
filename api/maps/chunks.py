"""Decoded Zarr chunks kept in memory (an LRU by byte budget), and windows read through it.

Why: neighbouring tiles of a zoom level share chunks (a 2048 x 2048 chunk holds 64 tiles'
worth of pixels at its level's matching zoom), and decompressing a chunk costs far more
than warping and encoding a tile. A chunk of a store version never changes, so an entry
is never stale; it is only evicted.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
import zarr

ChunkKey = tuple[str, tuple[int, ...]]


class ChunkCache:
    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._bytes = 0
        self._chunks: OrderedDict[ChunkKey, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: ChunkKey) -> np.ndarray | None:
        with self._lock:
            chunk = self._chunks.get(key)
            if chunk is not None:
                self._chunks.move_to_end(key)
            return chunk

    def put(self, key: ChunkKey, chunk: np.ndarray) -> None:
        if chunk.nbytes > self._max_bytes:
            return
        with self._lock:
            if key in self._chunks:
                return
            self._chunks[key] = chunk
            self._bytes += chunk.nbytes
            while self._bytes > self._max_bytes:
                _, evicted = self._chunks.popitem(last=False)
                self._bytes -= evicted.nbytes


def read_window(
    array: zarr.Array,
    name: str,
    index: Sequence[int],
    rows: tuple[int, int],
    cols: tuple[int, int],
    cache: ChunkCache,
) -> np.ndarray:
    """`array[(*index, rows[0]:rows[1], cols[0]:cols[1])]`, assembled from whole chunks
    taken from `cache` or decoded once and put there. `name` names the array for the
    cache (store, group and variable)."""
    chunks = array.chunks
    leading = tuple(position // size for position, size in zip(index, chunks, strict=False))
    within = tuple(position % size for position, size in zip(index, chunks, strict=False))
    row_size, col_size = chunks[-2], chunks[-1]
    window = np.empty((rows[1] - rows[0], cols[1] - cols[0]), dtype=array.dtype)
    for row_chunk in range(rows[0] // row_size, math.ceil(rows[1] / row_size)):
        for col_chunk in range(cols[0] // col_size, math.ceil(cols[1] / col_size)):
            block = (*leading, row_chunk, col_chunk)
            chunk = cache.get((name, block))
            if chunk is None:
                chunk = np.asarray(array[chunk_region(array, block)])
                cache.put((name, block), chunk)
            plane = chunk[within] if within else chunk
            top, left = row_chunk * row_size, col_chunk * col_size
            r0, r1 = max(rows[0], top), min(rows[1], top + plane.shape[0])
            c0, c1 = max(cols[0], left), min(cols[1], left + plane.shape[1])
            window[r0 - rows[0] : r1 - rows[0], c0 - cols[0] : c1 - cols[0]] = plane[
                r0 - top : r1 - top, c0 - left : c1 - left
            ]
    return window


def chunk_region(array: zarr.Array, block: Sequence[int]) -> tuple[slice, ...]:
    """The selection of one chunk, by its block index in the grid of `array.chunks`.

    Not `get_block_selection`: its blocks are a sharded array's shards (Zarr v3), whose
    `chunks` are the inner chunks; a selection of one inner chunk reads just that chunk
    (and its shard's index), where a shard would read a whole tile."""
    return tuple(
        slice(index * size, min((index + 1) * size, length))
        for index, size, length in zip(block, array.chunks, array.shape, strict=True)
    )
