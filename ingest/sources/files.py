"""`files`: a glob of GeoTIFF/COG, NetCDF or Zarr, one item per file (or Zarr store).

The glob runs through fsspec: a local folder, an `http(s)://` directory listing, or `s3://`.
Each match is listed with its size and modification time (the ETag on S3; for a Zarr store,
those of its metadata file), so an unchanged file is never opened again. A changed one is
opened for its metadata only: rio-stac for GeoTIFF (projection and raster fields, band
statistics from an overview-sized read), xstac + rioxarray for NetCDF and Zarr (datacube
extension and projection fields). The item id is the file name without its extension (with
the sub-folders below the glob's fixed part, joined by `-`); the collection comes from the
config, its extent from the items.
"""

from __future__ import annotations

import asyncio
import logging
import posixpath
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from fsspec.spec import AbstractFileSystem

from catalogue.extensions import (
    DATACUBE_EXTENSION,
    RASTER_EXTENSION,
    XARRAY_EXTENSION,
    ZARR_EXTENSION,
)
from catalogue.projection import PROJECTION_EXTENSION
from catalogue.storage_extension import S3Access, add_storage_fields, environment_region
from ingest.config import FilesSource
from ingest.errors import RecordError, SourceError
from ingest.metadata import references, when
from ingest.metadata.datacube import (
    NETCDF_LOCK,
    CubeInfo,
    read_netcdf,
    read_zarr,
    zarr_layout,
)
from ingest.metadata.geotiff import RasterInfo, read_geotiff, read_grid
from ingest.retry import RetryPolicy, is_transient
from ingest.sources.base import Fetched, HarvesterBase, Problem, Record
from ingest.upstream import FileSystems, file_fingerprint

logger = logging.getLogger(__name__)
Format = Literal["geotiff", "netcdf", "zarr"]
EXTENSIONS: dict[str, Format] = {
    ".tif": "geotiff", ".tiff": "geotiff", ".gtiff": "geotiff", ".cog": "geotiff",
    ".nc": "netcdf", ".nc4": "netcdf", ".netcdf": "netcdf", ".h5": "netcdf", ".hdf5": "netcdf",
    ".zarr": "zarr",
}  # fmt: skip
NETCDF_MEDIA_TYPE = "application/x-netcdf"
ZARR_MEDIA_TYPE = "application/vnd.zarr"  # unversioned, as cubes.to_item.MEDIA_TYPE says why
MAGIC = frozenset("*?[")


@dataclass(frozen=True, slots=True)
class FileEntry:
    path: str  # as the file system names it
    format: Format


class FilesHarvester(HarvesterBase):
    # 2: proj:epsg beside proj:code (projection v1.2.0); 3: storage extension on S3 assets
    version: ClassVar[int] = 3

    def __init__(self, config: FilesSource) -> None:
        self.config = config
        self.policy = RetryPolicy(config.retries, config.retry_wait_s)
        self.filesystems = FileSystems(config.storage_options)
        self._filesystem: AbstractFileSystem | None = None
        self._pattern = ""
        self._local = False
        self._access = S3Access()

    async def open(self) -> None:
        refs = self.config.virtual_refs
        if refs is not None and refs.root is None:
            raise SourceError(
                "virtual_refs: no folder for the references: set CUBESTAC_CUBE_ROOT (they "
                "go under <cube root>/refs/) or virtual_refs.root"
            )
        self._filesystem, self._pattern = self.filesystems.resolve(self.config.url)
        self._local = "file" in _protocols(self._filesystem)
        # how readers reach `s3://` files (storage extension): read once, so to_item is pure
        self._access = S3Access.from_options(self.config.storage_options, environment_region())

    @property
    def filesystem(self) -> AbstractFileSystem:
        assert self._filesystem is not None, "use `async with FilesHarvester(...)`"
        return self._filesystem

    async def discover(self, cursor: Mapping[str, Any]) -> AsyncIterator[Record | Problem]:
        entries = await self._glob()
        root = _fixed_prefix(self._pattern)
        for path in sorted(entries):
            info = entries[path]
            url = self._url(path)
            file_format = self._format(path, info)
            if file_format is None:
                yield Problem(url, "not a GeoTIFF, NetCDF or Zarr file (by its extension)")
                continue
            yield Record(
                href=url,
                key=(self.config.collection.id, item_id(path, root)),
                fingerprint=None if file_format == "zarr" else file_fingerprint(info),
                context=FileEntry(path, file_format),
            )

    async def _glob(self) -> dict[str, dict[str, Any]]:
        try:
            async for attempt in self.policy.asynchronous():
                with attempt:
                    found = await asyncio.to_thread(self._glob_now)
        except Exception as error:
            raise SourceError(f"cannot list {self.config.url}: {error}") from error
        if not found:
            raise SourceError(f"{self.config.url} matches no files")
        return dict(found)

    def _glob_now(self) -> dict[str, dict[str, Any]]:
        self.filesystem.invalidate_cache()  # a listing is only true once
        return self.filesystem.glob(self._pattern, detail=True)

    def _format(self, path: str, info: Mapping[str, Any]) -> Format | None:
        if self.config.format != "auto":
            return self.config.format
        extension = posixpath.splitext(path.rstrip("/"))[1].lower()
        found = EXTENSIONS.get(extension)
        if found is None and info.get("type") == "directory":
            return None
        return found

    def _url(self, path: str) -> str:
        if self._local:
            return path
        return self.filesystem.unstrip_protocol(path)

    async def fetch(self, record: Record, known: str | None) -> Fetched | None:
        entry: FileEntry = record.context
        url = record.href or entry.path
        try:
            async for attempt in self.policy.asynchronous():
                with attempt:
                    return await asyncio.to_thread(self._read, record, known)
        except RecordError:
            raise
        except FileNotFoundError as error:
            raise RecordError(url, f"vanished after it was listed: {error}") from error
        except Exception as error:
            if is_transient(error):
                raise
            raise RecordError(url, f"cannot be read as {entry.format}: {error}") from error
        raise AssertionError("unreachable: tenacity re-raises the last error")

    def _read(self, record: Record, known: str | None) -> Fetched | None:
        entry: FileEntry = record.context
        if entry.format == "zarr":
            layout = zarr_layout(self.filesystem, entry.path)
            metadata = self.filesystem.info(posixpath.join(entry.path, layout["metadata"]))
            fingerprint = file_fingerprint(metadata)
            if fingerprint == known:
                return None
            return Fetched(fingerprint, read_zarr(self.filesystem, entry.path))
        fingerprint = file_fingerprint(self.filesystem.info(entry.path))
        if entry.format == "geotiff":
            raster = read_geotiff(self.filesystem, entry.path, self._local)
            return Fetched(fingerprint, self._referenced(record, raster))
        cube = read_netcdf(self.filesystem, entry.path, self._local)
        return Fetched(fingerprint, self._referenced(record, cube))

    def _referenced(self, record: Record, payload: Any) -> Any:
        """The payload with its `references` asset when `virtual_refs` asks for one; a file
        that cannot be referenced keeps its item, without the asset, and a warning."""
        refs = self.config.virtual_refs
        if refs is None or refs.root is None:
            return payload
        assert record.href is not None and record.key is not None
        entry: FileEntry = record.context
        url = references.references_url(refs.root, *record.key)
        try:
            self._write_references(record.href, entry, url)
        except Exception as reason:  # noqa: BLE001 - the item is good without references
            if isinstance(reason, FileNotFoundError) or is_transient(reason):
                raise  # gone since it was read, or worth another try: not about the file
            logger.warning(
                "source %s: %s: no virtual references: %s", self.config.id, record.href, reason
            )
            return payload
        asset = references.reference_asset(url, record.href, dict(self.config.storage_options))
        return references.Referenced(payload, asset)

    def _write_references(self, href: str, entry: FileEntry, url: str) -> None:
        options = dict(self.config.storage_options)
        if entry.format == "geotiff":
            grid = read_grid(entry.path, None if self._local else self.filesystem)
            references.write_references(references.tiff_references(href, options, grid), url)
            return
        with self.filesystem.open(entry.path, "rb") as handle:
            head = handle.read(8)
        with NETCDF_LOCK:  # HDF5 is not thread-safe (see ingest.metadata.datacube)
            found = references.file_references(href, head, options)
        references.write_references(found, url)

    def to_item(self, record: Record, payload: Any) -> dict[str, Any]:
        assert record.href is not None and record.key is not None
        entry: FileEntry = record.context
        if isinstance(payload, references.Referenced):
            item = self.to_item(record, payload.payload)
            item["assets"][references.ASSET_KEY] = payload.asset
            if XARRAY_EXTENSION not in item["stac_extensions"]:
                item["stac_extensions"].append(XARRAY_EXTENSION)
            return item
        if isinstance(payload, RasterInfo):
            item = self._raster_item(record, payload)
        else:
            assert isinstance(payload, CubeInfo)
            item = self._cube_item(record, entry, payload)
        return add_storage_fields(item, self._access)

    def _raster_item(self, record: Record, info: RasterInfo) -> dict[str, Any]:
        assert record.href is not None and record.key is not None
        acquired = when.When(info.acquired, info.acquired) if info.acquired else None
        moment = self._when(record.href, acquired)
        asset: dict[str, Any] = {"href": record.href, "type": info.media_type, "roles": ["data"]}
        asset["bands"] = info.bands
        return _item(
            record.key,
            [PROJECTION_EXTENSION, RASTER_EXTENSION],
            info.footprint,
            info.bbox,
            {**moment.properties(), **info.projection},
            asset,
        )

    def _cube_item(self, record: Record, entry: FileEntry, info: CubeInfo) -> dict[str, Any]:
        assert record.href is not None and record.key is not None
        from_metadata = when.from_attributes(info.attributes) or (
            when.When(*info.time_range) if info.time_range else None
        )
        moment = self._when(record.href, from_metadata)
        properties = {
            **moment.properties(),
            **info.projection,
            "cube:dimensions": info.dimensions,
            "cube:variables": info.variables,
        }
        if info.attributes.get("title"):
            properties["title"] = info.attributes["title"]
        extensions = [DATACUBE_EXTENSION, PROJECTION_EXTENSION]
        asset: dict[str, Any] = {"href": record.href, "roles": ["data"]}
        if info.zarr is None:
            asset["type"] = NETCDF_MEDIA_TYPE
        else:
            extensions += [ZARR_EXTENSION, XARRAY_EXTENSION]
            asset.update(self._zarr_fields(info.zarr))
        bbox = info.bbox
        return _item(record.key, extensions, _box(bbox), bbox, properties, asset)

    def _zarr_fields(self, zarr: dict[str, Any]) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "type": ZARR_MEDIA_TYPE,
            "zarr:zarr_format": zarr["zarr_format"],
            "zarr:consolidated": zarr["consolidated"],
            "zarr:node_type": "group",
            # xarray-assets fields too: xpystac 0.5 opens the asset with them (storage:
            # fields describe the same access, see catalogue.storage_extension)
            "xarray:open_kwargs": {"consolidated": zarr["consolidated"]},
        }
        endpoint = self.config.storage_options.get("endpoint_url")
        if endpoint:  # an S3-compatible store that is not AWS: readers need its address
            fields["xarray:storage_options"] = {"endpoint_url": endpoint}
        return fields

    def _when(self, href: str, from_metadata: when.When | None) -> when.When:
        pattern = self.config.datetime_pattern
        from_name = when.from_pattern(pattern, posixpath.basename(href)) if pattern else None
        found = from_name or from_metadata
        if found is None:
            hint = "set `datetime_pattern`" if not pattern else "the pattern does not match"
            raise RecordError(href, f"no datetime in the file's metadata ({hint})")
        return found

    async def collection(self, collection_id: str) -> dict[str, Any]:
        spec = self.config.collection
        document: dict[str, Any] = {
            "type": "Collection",
            "stac_version": "1.1.0",
            "id": spec.id,
            "description": spec.description or f"Files harvested from {self.config.url}",
            "license": spec.license,
            "links": [],
        }  # no extent: the pipeline computes it from the items
        if spec.title:
            document["title"] = spec.title
        if spec.keywords:
            document["keywords"] = list(spec.keywords)
        if spec.providers:
            document["providers"] = [p.model_dump(exclude_none=True) for p in spec.providers]
        return document

    def next_cursor(self) -> dict[str, Any]:
        return {}


def item_id(path: str, root: str) -> str:
    """The file name without extension, prefixed by its sub-folders below the glob root."""
    relative = path.rstrip("/")
    if root and relative.startswith(root.rstrip("/") + "/"):
        relative = relative[len(root.rstrip("/")) + 1 :]
    else:
        relative = posixpath.basename(relative)
    stem, extension = posixpath.splitext(relative)
    return (stem if extension.lower() in EXTENSIONS else relative).replace("/", "-")


def _fixed_prefix(pattern: str) -> str:
    """The folder part of a glob before its first wildcard."""
    parts: list[str] = []
    for part in pattern.split("/"):
        if MAGIC & set(part):
            break
        parts.append(part)
    else:
        parts = parts[:-1]  # no wildcard: a single file, its folder is the root
    return "/".join(parts)


def _protocols(filesystem: AbstractFileSystem) -> tuple[str, ...]:
    protocol = filesystem.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)


def _box(bbox: list[float]) -> dict[str, Any]:
    west, south, east, north = bbox
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    return {"type": "Polygon", "coordinates": [ring]}


def _item(
    key: tuple[str, str],
    extensions: list[str],
    geometry: dict[str, Any],
    bbox: list[float],
    properties: dict[str, Any],
    asset: dict[str, Any],
) -> dict[str, Any]:
    collection, identifier = key
    return {
        "type": "Feature",
        "stac_version": "1.1.0",
        "stac_extensions": extensions,
        "id": identifier,
        "collection": collection,
        "geometry": geometry,
        "bbox": bbox,
        "properties": properties,
        "links": [],
        "assets": {"data": asset},
    }
