"""Zarr v3 sharding of a cube's arrays (issue 18): what `chunks` and `shards` each array
is written with, for xarray's `to_zarr` encoding.

A shard is what one dask task writes: zarr-python encodes a shard whole, so two tasks
writing into the same shard would overwrite each other's inner chunks. The shard is
therefore the array's write chunk (one tile in y/x, 1 along time and other axes; the
time-series layout's block of the whole time axis), and the inner chunks split it in
y/x only. Readers fetch a shard's index (a suffix byte range, `bytes=-N`) and then just
the inner chunks under their window.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

SPATIAL = ("y", "x")
SHARD_TARGET_BYTES = 64 * 2**20  # a time-series shard, uncompressed: written in one task


def shard_encoding(
    write_chunks: Sequence[int], dims: Sequence[str], inner: int, whole: Sequence[str] = ()
) -> dict[str, tuple[int, ...]]:
    """`chunks` (inner) and `shards` for an array written in blocks of `write_chunks`:
    y/x split into inner chunks of `inner` pixels (the whole block when it is smaller),
    the shard rounded up to whole inner chunks (only a block that is the whole axis,
    shorter than a tile, can need it); along the other axes an inner chunk is 1 (a map
    tile reads one time step, even where a level is written several steps per task),
    but whole along the axes in `whole` (the time-series layout's time)."""
    chunks: list[int] = []
    shards: list[int] = []
    for dim, size in zip(dims, write_chunks, strict=True):
        if dim in SPATIAL:
            side = min(inner, size)
            chunks.append(side)
            shards.append(-(-size // side) * side)
        else:
            chunks.append(size if dim in whole else 1)
            shards.append(size)
    return {"chunks": tuple(chunks), "shards": tuple(shards)}


def timeseries_shard_side(chunk: int, steps: int, itemsize: int, tile: int) -> int:
    """The y/x side of a time-series shard made of `chunk`-pixel inner chunks holding
    the whole time axis: the most inner chunks (a power of two per side) that keep a shard
    under SHARD_TARGET_BYTES, and no wider than a tile."""
    side = chunk
    while side * 2 <= tile and steps * (side * 2) ** 2 * itemsize <= SHARD_TARGET_BYTES:
        side *= 2
    return side


def with_shards(
    entry: dict[str, Any], dims: Sequence[str], inner: int | None, whole: Sequence[str] = ()
) -> dict[str, Any]:
    """An encoding entry (with its `chunks` = write chunks) made sharded when `inner` is
    set; as it is otherwise."""
    if inner is None or entry.get("chunks") is None:
        return entry
    return {**entry, **shard_encoding(entry["chunks"], dims, inner, whole)}


def read_chunks(shard_side: int | None) -> dict[str, int]:
    """A sharded store's `chunks` for `xr.open_zarr` (the items' `xarray:open_kwargs`):
    one dask chunk per shard in y/x, the stored chunks along other axes. With `{}` xarray
    makes a task per inner chunk, and each task reads its shard's index again: a 512 x 512
    window then costs an index request per inner chunk instead of one per shard
    (bench/results/zarr_formats.md). Empty (the stored chunks) when not sharded."""
    return {} if shard_side is None else {"y": shard_side, "x": shard_side}
