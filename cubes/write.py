"""Write a cube as a new version of its Zarr store; retire old versions after a grace period.

Layout under the cube root (a folder or `s3://bucket/prefix`, through fsspec):

    <root>/<collection>/<cube id>/<UTC stamp>-<random>.zarr      one store per build
    <root>/<collection>/<cube id>/<UTC stamp>-<random>.retired   when it stopped being current

Why versions rather than overwriting: readers hold the item's href for as long as they
work with a cube (`xr.open_zarr` reads chunks lazily, for hours), and S3 has no atomic
rename. So a build writes a fresh path; only after the write (data, then consolidated
metadata) completed does the runner switch the catalogue item's href, in one transaction.
A crash before that leaves the published version untouched, the half-written one unlisted.

Cleanup runs with the cube's advisory lock held (no other build of this cube can be
writing). Just before the switch the current version gets a `.retired` marker stamped
"now"; a sweep deletes marked versions older than the grace period, and versions that are
neither current nor marked -- never published, left by a failed or killed build -- at once.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, urlsplit

import fsspec
import xarray as xr
from fsspec import AbstractFileSystem

from catalogue.cube_layout import FULL_RESOLUTION_GROUP, store_url
from cubes.assets import storage_options_for
from cubes.errors import OutputError

logger = logging.getLogger(__name__)

STORE_SUFFIX = ".zarr"
RETIRED_SUFFIX = ".retired"


@dataclass(frozen=True)
class CubeStore:
    """Where one cube's versions live."""

    root: str
    collection: str
    cube_id: str
    anon: bool = False  # readers of an S3 root need no credentials (CUBESTAC_CUBE_ANON)

    @property
    def folder(self) -> str:
        return "/".join((self.root.rstrip("/"), quote(self.collection, safe="-_."), self.cube_id))

    @property
    def storage_options(self) -> dict[str, object]:
        """What the builder writes with (its own credentials come from AWS_*)."""
        return storage_options_for(self.root)

    @property
    def reader_options(self) -> dict[str, object]:
        """An item's `xarray:storage_options`: for S3 the endpoint and whether to go
        anonymous, so `xr.open_zarr(href, storage_options=...)` needs nothing else; never
        credentials (readers bring their own AWS_* when `anon` is false)."""
        if urlsplit(self.root).scheme != "s3":
            return {}
        # max_concurrency 1: one GET per chunk. By default s3fs asks for each object's size
        # (a HEAD) first, to split objects over its 50 MiB block size -- Zarr chunks are not.
        return {**storage_options_for(self.root), "anon": self.anon, "max_concurrency": 1}

    def filesystem(self) -> tuple[AbstractFileSystem, str]:
        fs, path = fsspec.core.url_to_fs(self.folder, **self.storage_options)
        return fs, path

    def new_version(self) -> str:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        return f"{self.folder}/{stamp}-{secrets.token_hex(3)}{STORE_SUFFIX}"


def check_writable(store: CubeStore) -> None:
    """Fail before any computing when the cube root cannot take a file."""
    probe = f".probe-{secrets.token_hex(4)}"
    try:
        fs, folder = store.filesystem()
        fs.makedirs(folder, exist_ok=True)
        fs.pipe_file(f"{folder}/{probe}", b"")
        fs.rm_file(f"{folder}/{probe}")
    except Exception as error:  # noqa: BLE001 - OSError, botocore/ClientError, PermissionError ...
        raise OutputError(
            f"cannot write under the cube root {store.root!r}: {type(error).__name__}: {error}",
            cube=store.cube_id,
            where="output",
        ) from error


def open_written(
    url: str, zarr_format: int, storage_options: dict[str, object] | None = None
) -> xr.Dataset:
    """The store as a reader will open it: consolidated metadata, lazily, with the item's
    storage options (so an anonymous item is checked anonymously)."""
    options = storage_options_for(url) if storage_options is None else storage_options
    return xr.open_zarr(
        url,
        consolidated=True,
        zarr_format=zarr_format,
        chunks={},
        storage_options=options or None,
    )


def store_bytes(url: str) -> int:
    fs, path = fsspec.core.url_to_fs(url, **storage_options_for(url))
    return int(fs.du(path, total=True))


def remove_version(url: str) -> None:
    """Best-effort removal of a version nobody can have opened (never published)."""
    try:
        fs, path = fsspec.core.url_to_fs(url, **storage_options_for(url))
        if fs.exists(path):
            fs.rm(path, recursive=True)
    except Exception:  # noqa: BLE001 - the next sweep retries
        logger.warning("could not remove unpublished cube version %s", url, exc_info=True)


def mark_retired(url: str, when: datetime | None = None) -> None:
    """Stamp a version (given by its store URL or any asset href inside it) as no longer
    current (overwrites an older stamp)."""
    url = store_url(url)
    fs, path = fsspec.core.url_to_fs(url, **storage_options_for(url))
    moment = (when or datetime.now(UTC)).isoformat()
    fs.pipe_file(_marker(path), moment.encode())


def sweep(store: CubeStore, current: str | None, grace: timedelta) -> list[str]:
    """Delete versions past their grace period and unpublished leftovers; never the store
    of `current` (a store URL or any asset href inside it, e.g. the item's `<store>/0`).
    Returns the paths removed."""
    fs, folder = store.filesystem()
    if not fs.exists(folder):
        return []
    current_path = _path_of(store_url(current)) if current else None
    names = {entry.rstrip("/").rsplit("/", 1)[-1] for entry in fs.ls(folder, detail=False)}
    removed = []
    now = datetime.now(UTC)
    for name in sorted(names):
        if not name.endswith(STORE_SUFFIX):
            continue
        path = f"{folder}/{name}"
        if current_path is not None and _same(path, current_path):
            continue
        retired = _retired_at(fs, path) if _marker_name(name) in names else None
        if retired is None or now - retired >= grace:
            fs.rm(path, recursive=True)
            if retired is not None:
                fs.rm_file(_marker(path))
            removed.append(path)
    for name in names:
        if name.endswith(RETIRED_SUFFIX) and _store_name(name) not in names:
            fs.rm_file(f"{folder}/{name}")  # a marker whose store is gone
    if removed:
        logger.info("removed %d old version(s) of cube %s", len(removed), store.cube_id)
    return removed


def _retired_at(fs: AbstractFileSystem, path: str) -> datetime | None:
    try:
        return datetime.fromisoformat(fs.cat_file(_marker(path)).decode().strip())
    except (OSError, ValueError):
        return None


def _marker(path: str) -> str:
    return path.removesuffix(STORE_SUFFIX) + RETIRED_SUFFIX


def _marker_name(name: str) -> str:
    return name.removesuffix(STORE_SUFFIX) + RETIRED_SUFFIX


def _store_name(name: str) -> str:
    return name.removesuffix(RETIRED_SUFFIX) + STORE_SUFFIX


def _path_of(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme in ("", "file"):
        return parts.path
    return f"{parts.netloc}{parts.path}"


def _same(path: str, other: str) -> bool:
    return path.rstrip("/").lstrip("/") == other.rstrip("/").lstrip("/")


def write_version(
    dataset: xr.Dataset,
    encoding: Mapping[str, Mapping[str, object]],
    url: str,
    zarr_format: int,
    compute: Callable[[object], None],
) -> None:
    """The full resolution into group `0/` of a new store: metadata and coordinates now,
    the data through `compute`. `cubes.pyramid` then adds the other groups and the
    consolidated metadata; the store is unknown to readers until the href switch."""
    delayed = dataset.to_zarr(
        url,
        group=FULL_RESOLUTION_GROUP,
        mode="w-",
        zarr_format=zarr_format,
        consolidated=False,
        compute=False,
        encoding=encoding,
        storage_options=storage_options_for(url) or None,
    )
    compute(delayed)
