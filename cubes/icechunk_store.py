"""Commit a built cube as the next version of its Icechunk repository
(`catalogue.icechunk_repo`, CONFIG `store: icechunk`).

The build itself is today's: level 0, the levels and the time-series layout written by
dask into a fresh Zarr (format 3) store under the cube's folder (`cubes.write`,
`cubes.pyramid`), then checked the way readers open it. Only then is that store copied
into one writable session of the repository -- the previous version's nodes deleted, the
new ones set, level 0 moved to the root group -- and committed on `main`. Why a staged
store rather than dask writing into the session: the level pass reads level 0 back and
stores every other group in one `dask.array.store`, with the same code for both kinds of
cube; a session written by distributed workers would need forking and merging in each of
those places. The price is a second write of the cube's bytes.

What readers see: until the commit, `main` is the previous version, whole; the commit
moves it in one conditional write (Icechunk's serialisable isolation). A build that fails
before it leaves no commit; a publish that fails after it resets `main` to its parent
(`rollback`). The staged store is removed either way.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from catalogue.cube_layout import FULL_RESOLUTION_GROUP
from catalogue.icechunk_repo import BRANCH, REPOSITORY_NAME, ROOT_LEVEL, repository_storage
from cubes.assets import storage_options_for

logger = logging.getLogger(__name__)
METADATA_KEY = "zarr.json"
COPY_CONCURRENCY = 32
LEVEL_0_PREFIX = f"{FULL_RESOLUTION_GROUP}/"


@dataclass(frozen=True)
class Commit:
    """A committed version: its snapshot id, the one `main` pointed at before, and the
    version before it (that parent, unless it is the repository's empty first snapshot)."""

    repository: str
    snapshot_id: str
    parent_id: str
    predecessor_id: str | None


def repository_url(cube_folder: str) -> str:
    return f"{cube_folder.rstrip('/')}/{REPOSITORY_NAME}"


def writer_options(url: str) -> dict[str, Any]:
    """The builder's own access: the configured S3 endpoint, credentials from AWS_*."""
    return storage_options_for(url)


def commit_version(
    repository: str, staged: str, message: str, metadata: Mapping[str, Any]
) -> Commit:
    """Replace the repository's content with the staged store's and commit it on `main`
    (the repository is created on the first build)."""
    import icechunk

    storage = repository_storage(repository, writer_options(repository))
    repo = icechunk.Repository.open_or_create(storage)
    session = repo.writable_session(BRANCH)
    parent = str(session.snapshot_id)
    first = repo.lookup_snapshot(parent).parent_id is None  # "Repository initialized"
    asyncio.run(_copy(staged, session.store))
    snapshot = session.commit(message, metadata=dict(metadata))
    logger.info("committed version %s of %s (after %s)", snapshot, repository, parent)
    return Commit(repository, str(snapshot), parent, None if first else parent)


def rollback(commit: Commit) -> None:
    """Point `main` back at the commit's parent, if it still points at the commit (the
    item could not be published, so the catalogue still names the parent)."""
    import icechunk

    storage = repository_storage(commit.repository, writer_options(commit.repository))
    repo = icechunk.Repository.open(storage)
    repo.reset_branch(BRANCH, commit.parent_id, from_snapshot_id=commit.snapshot_id)
    logger.warning(
        "reset %s to %s: the item was not published", commit.repository, commit.parent_id
    )


async def _copy(staged: str, target: Any) -> None:
    """`_replace` on this thread's own event loop. Not on zarr's shared loop (`sync`): the
    readers' reads of the same repository run there, and a test with 100 of them reading
    while a build committed hung once that way. The staged store's s3fs instance is a new
    one (`skip_instance_cache`), its aiohttp session opened on this loop and closed here:
    a cached instance's session belongs to the loop that made it ("attached to a
    different loop")."""
    from zarr.storage import FsspecStore, LocalStore

    parts = urlsplit(staged)
    if parts.scheme in ("", "file"):
        await _replace(LocalStore(parts.path if parts.scheme else staged, read_only=True), target)
        return
    options = {**storage_options_for(staged), "skip_instance_cache": True}
    source = FsspecStore.from_url(staged, storage_options=options, read_only=True)
    session = await source.fs.set_session()
    try:
        await _replace(source, target)
    finally:
        await session.close()


async def _replace(source: Any, target: Any) -> None:
    """The target's nodes deleted, then every key of `source` set in it, level 0 moved to
    the root. Metadata first, parents before children (Icechunk knows an array once its
    `zarr.json` is set), then the chunks, `COPY_CONCURRENCY` at a time."""
    from zarr.core.buffer import default_buffer_prototype

    prototype = default_buffer_prototype()
    keys = [key async for key in source.list()]
    metadata = sorted((k for k in keys if _is_metadata(k)), key=lambda k: k.count("/"))
    chunks = [k for k in keys if not _is_metadata(k)]
    documents = {k: json.loads((await source.get(k, prototype)).to_bytes()) for k in metadata}
    await target.delete_dir("")
    for key, document in _relocated_metadata(documents).items():
        await target.set(key, prototype.buffer.from_bytes(json.dumps(document).encode()))
    gate = asyncio.Semaphore(COPY_CONCURRENCY)

    async def copy(key: str) -> None:
        async with gate:
            value = await source.get(key, prototype)
            if value is not None:
                await target.set(_relocated(key), value)

    await asyncio.gather(*(copy(key) for key in chunks))


def _is_metadata(key: str) -> bool:
    return key == METADATA_KEY or key.endswith(f"/{METADATA_KEY}")


def _relocated(key: str) -> str:
    """Level 0's keys at the root, the others where they are."""
    return key.removeprefix(LEVEL_0_PREFIX)


def _relocated_metadata(documents: Mapping[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each node's `zarr.json` at its new key, without consolidated metadata (a snapshot
    is consistent as a whole; the copied listing would name level 0 where it no longer
    is). The root keeps its own attributes and takes level 0's beside them; its
    `multiscales` layout names level 0 `.`."""
    relocated: dict[str, dict[str, Any]] = {}
    for key, document in documents.items():
        if key == METADATA_KEY:
            continue
        relocated[_relocated(key)] = _without_consolidated(document)
    root = _without_consolidated(documents[METADATA_KEY])
    level_0 = documents.get(LEVEL_0_PREFIX + METADATA_KEY, {})
    attributes = {**level_0.get("attributes", {}), **root.get("attributes", {})}
    root["attributes"] = _root_level_layout(attributes)
    relocated[METADATA_KEY] = root
    return dict(sorted(relocated.items(), key=lambda item: item[0].count("/")))


def _names_level_0(key: str, value: Any) -> bool:
    return key in ("asset", "derived_from") and value == FULL_RESOLUTION_GROUP


def _without_consolidated(document: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in document.items() if key != "consolidated_metadata"}


def _root_level_layout(attributes: dict[str, Any]) -> dict[str, Any]:
    multiscales = attributes.get("multiscales")
    if not isinstance(multiscales, dict) or not isinstance(multiscales.get("layout"), list):
        return attributes
    layout = [
        {key: ROOT_LEVEL if _names_level_0(key, value) else value for key, value in entry.items()}
        for entry in multiscales["layout"]
    ]
    return {**attributes, "multiscales": {**multiscales, "layout": layout}}
