"""Opening the cube behind a catalogue item, for the routes that read its pixels (tiles,
EDR position/area): one place that turns `/collections/{c}/items/{i}` into lazily opened
xarray datasets, level by level, and keeps them open.

Why a cache is safe: a cube store is a version that is never rewritten (`cubes.write`); a
rebuild publishes a new href, so the next request opens the new store and the old entry
ages out of the LRU. Opening reads only consolidated metadata (one small file), never
chunks; still, it is blocking I/O, so `open_cube` runs it in a worker thread.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
import xarray as xr
import zarr
from starlette.concurrency import run_in_threadpool

from catalogue.cube_layout import (
    DATA_ASSET,
    LEGACY_ROOT,
    TIMESERIES_GROUP,
    Level,
    levels_from_attrs,
    store_url,
)
from catalogue.database import Database
from catalogue.errors import NotFoundError
from catalogue.repositories.items import get_item

MAX_OPEN_STORES = 32


@dataclass(frozen=True)
class OpenCube:
    """A cube item's store, opened: its levels (finest first) as lazy datasets, and its
    time-series layout when it has one."""

    item: dict[str, Any]
    store: str
    levels: tuple[Level, ...]
    datasets: tuple[xr.Dataset, ...]  # one per level, same order
    timeseries: xr.Dataset | None = None
    storage_options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def full_resolution(self) -> xr.Dataset:
        return self.datasets[0]


class CubeDatasets:
    """An LRU of opened cube stores, keyed by store URL (a version: never rewritten)."""

    def __init__(self, max_open: int = MAX_OPEN_STORES) -> None:
        self._max_open = max_open
        self._open: OrderedDict[str, OpenCube] = OrderedDict()
        self._lock = threading.Lock()

    async def open_cube(self, database: Database, collection_id: str, item_id: str) -> OpenCube:
        """The cube of item `item_id`; NotFoundError (404) when the item does not exist or
        is not a cube (no Zarr asset)."""
        async with database.read() as conn:
            item = await get_item(conn, collection_id, item_id)
        asset = (item.get("assets") or {}).get(DATA_ASSET)
        href = asset.get("href") if isinstance(asset, Mapping) else None
        variables = (item.get("properties") or {}).get("cube:variables")
        if not isinstance(href, str) or not isinstance(variables, Mapping):
            raise NotFoundError(f"item {item_id!r} in collection {collection_id!r} is not a cube")
        store = store_url(href)
        with self._lock:
            cached = self._open.get(store)
            if cached is not None:
                self._open.move_to_end(store)
                return cached
        options = (
            dict(asset.get("xarray:storage_options") or {}) if isinstance(asset, Mapping) else {}
        )
        cube = await run_in_threadpool(_open_store, item, store, options)
        with self._lock:
            self._open[store] = cube
            while len(self._open) > self._max_open:
                self._open.popitem(last=False)
        return cube


def _open_store(item: dict[str, Any], store: str, options: dict[str, Any]) -> OpenCube:
    root_attrs = _root_attrs(store, options)
    levels = tuple(levels_from_attrs(root_attrs))
    datasets = tuple(_open_group(store, level.path, options) for level in levels)
    timeseries = None
    if levels[0].path != LEGACY_ROOT and _has_group(store, TIMESERIES_GROUP, options):
        timeseries = _open_group(store, TIMESERIES_GROUP, options)
    return OpenCube(item, store, levels, datasets, timeseries, options)


def _open_group(store: str, path: str, options: dict[str, Any]) -> xr.Dataset:
    return xr.open_zarr(
        store,
        group=path or None,
        consolidated=True,
        chunks={},
        storage_options=options or None,
    )


def _root_attrs(store: str, options: dict[str, Any]) -> dict[str, Any]:
    group = zarr.open_consolidated(store, mode="r", storage_options=options or None)
    return dict(orjson.loads(orjson.dumps(dict(group.attrs))))


def _has_group(store: str, path: str, options: dict[str, Any]) -> bool:
    group = zarr.open_consolidated(store, mode="r", storage_options=options or None)
    return path in group
