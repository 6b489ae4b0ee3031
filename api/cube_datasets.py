"""Opening the cube behind a catalogue item, for the routes that read its pixels (tiles,
EDR position/area): one place that turns `/collections/{c}/items/{i}` into lazily opened
xarray datasets, level by level, and keeps them open.

Why a cache is safe: a cube store is a version that is never rewritten (`cubes.write`); a
rebuild publishes a new href, so the next request opens the new store and the old entry
ages out of the LRU. Opening reads only consolidated metadata (one small file), never
chunks; still, it is blocking I/O, so `open_cube` runs it in a worker thread.

A versioned (Icechunk) cube is opened at the snapshot its item names (`version`), through a
read-only session of its repository (`catalogue.icechunk_repo`): the cache key is the
repository and that snapshot, so a commit published by a rebuild is a new entry, and the
tiles and queries always answer from the version the item describes.
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
from catalogue.icechunk_repo import is_icechunk, open_repository, version_store
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
    zarr_store: Any = None  # a versioned cube's read-only Icechunk store (`store` names it)

    @property
    def full_resolution(self) -> xr.Dataset:
        return self.datasets[0]

    def root_group(self) -> zarr.Group:
        """The store's root group (blocking: call it in a worker thread)."""
        if self.zarr_store is not None:
            return zarr.open_group(self.zarr_store, mode="r", use_consolidated=False)
        return zarr.open_consolidated(
            self.store, mode="r", storage_options=dict(self.storage_options) or None
        )


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
        version = (item.get("properties") or {}).get("version")
        versioned = is_icechunk(asset) and isinstance(version, str)
        store = f"{href}@{version}" if versioned else store_url(href)
        with self._lock:
            cached = self._open.get(store)
            if cached is not None:
                self._open.move_to_end(store)
                return cached
        options = (
            dict(asset.get("xarray:storage_options") or {}) if isinstance(asset, Mapping) else {}
        )
        if versioned:
            cube = await run_in_threadpool(_open_version, item, href, str(version), options)
        else:
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


def _open_version(
    item: dict[str, Any], repository: str, snapshot_id: str, options: dict[str, Any]
) -> OpenCube:
    """A versioned cube at one snapshot: level 0 at the root, the others in their groups."""
    zarr_store = version_store(open_repository(repository, options), snapshot_id)
    root = zarr.open_group(zarr_store, mode="r", use_consolidated=False)
    levels = tuple(levels_from_attrs(dict(orjson.loads(orjson.dumps(dict(root.attrs))))))

    def group(path: str) -> xr.Dataset:
        return xr.open_zarr(zarr_store, group=path or None, consolidated=False, chunks={})

    datasets = tuple(group(level.path) for level in levels)
    timeseries = group(TIMESERIES_GROUP) if TIMESERIES_GROUP in root else None
    store = f"{repository}@{snapshot_id}"
    return OpenCube(item, store, levels, datasets, timeseries, options, zarr_store)


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
