"""`stac-static`: a static catalog (`catalog.json` or `collection.json`) followed link by link.

The walk goes level by level through `child` links (catalogs, sub-catalogs, collections;
relative or absolute; read concurrently, bounded by `concurrency`) and yields every `item`
link as a record. Item files are read with their stored fingerprint, so an unchanged item is
a 304 (HTTP) or a size+mtime match (files, S3) and is never parsed again.

An item's collection is its own `collection` field, else the nearest collection above it,
else the source id (a collection is then made up for it, its extent computed from the items).
With `collections:`, only those collections are walked and only items below them are taken.
Catalogs and collections older than STAC 1.0.0-rc.1 have no `type`; pystac tells them apart.

A GeoTIFF data asset without grid or band data types is completed from its file's header
(`read_raster_headers`, on by default; see `ingest.metadata.completion`).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar
from urllib.parse import urlsplit

from pystac.utils import make_absolute_href

from catalogue.stac_migration import stac_type
from ingest.config import StacStaticSource
from ingest.errors import RecordError, SourceError
from ingest.metadata.completion import HeaderReader, complete_item
from ingest.retry import RetryPolicy, describe, is_transient
from ingest.sources.base import Fetched, HarvesterBase, Problem, Record
from ingest.stac import absolute_hrefs, collection_document
from ingest.upstream import Upstream

NODE_TYPES = frozenset({"Catalog", "Collection"})
WALK_RELS = frozenset({"child", "item"})

Node = tuple[str, dict[str, Any], str | None]  # URL, document, collection id above it


class StacStaticHarvester(HarvesterBase):
    version: ClassVar[int] = 2  # 2: documents stored as current STAC (stac_migration)

    def __init__(self, config: StacStaticSource) -> None:
        self.config = config
        self.upstream = Upstream(
            policy=RetryPolicy(config.retries, config.retry_wait_s),
            timeout_s=config.timeout_s,
            concurrency=config.concurrency,
            storage_options=config.storage_options,
        )
        self.root_url = _absolute_root(config.url)
        self._root: dict[str, Any] = {}
        self._collections: dict[str, dict[str, Any]] = {}
        self._headers = HeaderReader(config.timeout_s)

    async def open(self) -> None:
        await self.upstream.open()

    async def close(self) -> None:
        await self.upstream.close()

    async def discover(self, cursor: Mapping[str, Any]) -> AsyncIterator[Record | Problem]:
        self._root = await self._read_root()
        level: list[Node] = [(self.root_url, self._root, None)]
        visited = {self.root_url}
        while level:
            children: list[tuple[str, str | None]] = []
            for url, document, above in level:
                walk, collection = self._visit(url, document, above)
                if not walk:
                    continue
                for rel, href in _links(document, url):
                    if rel == "item" and self._wanted(collection):
                        yield Record(href=href, context=collection)
                    elif rel == "child" and href not in visited:
                        visited.add(href)
                        children.append((href, collection))
            level = []
            for result in await self._read_nodes(children):
                if isinstance(result, Problem):
                    yield result
                else:
                    level.append(result)

    async def fetch(self, record: Record, known: str | None) -> Fetched | None:
        assert record.href is not None  # every static record is an item link
        document = await self.upstream.read(record.href, known)
        if document is None:
            return None
        payload = document.json()
        if self.config.read_raster_headers and isinstance(payload, dict):
            await complete_item(payload, record.href, self._headers.read)
        return Fetched(document.fingerprint, payload)

    def to_item(self, record: Record, payload: Any) -> dict[str, Any]:
        assert record.href is not None
        if not isinstance(payload, dict):
            raise RecordError(record.href, "not a STAC item (expected a JSON object)")
        item = absolute_hrefs(payload, record.href)
        item["collection"] = payload.get("collection") or record.context or self.config.id
        return item

    async def collection(self, collection_id: str) -> dict[str, Any]:
        known = self._collections.get(collection_id)
        if known is not None:
            return known
        return {
            "type": "Collection",
            "stac_version": "1.1.0",
            "id": collection_id,
            "title": self._root.get("title") or collection_id,
            "description": self._root.get("description")
            or f"Items harvested from the static catalog {self.root_url}",
            "license": "other",
            "links": [],
        }  # no extent: the pipeline computes it from the items

    def next_cursor(self) -> dict[str, Any]:
        return {}

    async def _read_root(self) -> dict[str, Any]:
        try:
            document = await self.upstream.read(self.root_url)
            assert document is not None  # no fingerprint given, so never "not modified"
            root = document.json()
        except RecordError as error:
            raise SourceError(f"cannot read the catalog root: {error}") from error
        except Exception as error:
            if is_transient(error):
                message = f"the catalog root {self.root_url} kept failing: {describe(error)}"
                raise SourceError(message) from error
            raise
        if stac_type(root) not in NODE_TYPES:
            raise SourceError(f"{self.root_url} is not a STAC catalog or collection")
        return root

    def _visit(
        self, url: str, document: dict[str, Any], above: str | None
    ) -> tuple[bool, str | None]:
        """Whether to walk below this node, and the collection its items belong to."""
        if stac_type(document) != "Collection":
            return True, above
        collection_id = document.get("id")
        wanted = self.config.collections
        if not isinstance(collection_id, str) or (wanted and collection_id not in wanted):
            return False, None
        self._collections[collection_id] = _collection_document(document, url)
        return True, collection_id

    def _wanted(self, collection: str | None) -> bool:
        return not self.config.collections or collection in self.config.collections

    async def _read_nodes(self, children: list[tuple[str, str | None]]) -> list[Node | Problem]:
        gate = asyncio.Semaphore(self.config.concurrency)

        async def read(url: str, above: str | None) -> Node | Problem:
            async with gate:
                try:
                    document = await self.upstream.read(url)
                    assert document is not None
                    parsed = document.json()
                except RecordError as error:
                    return Problem(error.url, error.reason)
                except Exception as error:
                    if is_transient(error):
                        return Problem(url, f"kept failing: {describe(error)}")
                    raise
            if stac_type(parsed) not in NODE_TYPES:
                return Problem(url, "a child link that is not a STAC catalog or collection")
            return url, parsed, above

        return list(await asyncio.gather(*(read(url, above) for url, above in children)))


def _absolute_root(url: str) -> str:
    scheme = urlsplit(url).scheme.lower()
    if scheme and len(scheme) > 1:
        return url
    return os.path.abspath(url)


def _links(document: dict[str, Any], url: str) -> list[tuple[str, str]]:
    links = document.get("links")
    if not isinstance(links, list):
        return []
    return [
        (link["rel"], make_absolute_href(link["href"], url))
        for link in links
        if isinstance(link, dict)
        and link.get("rel") in WALK_RELS
        and isinstance(link.get("href"), str)
    ]


def _collection_document(document: dict[str, Any], url: str) -> dict[str, Any]:
    """The collection as the catalogue keeps it: no links into the upstream tree, every
    other href absolute."""
    return collection_document(document, url, WALK_RELS)
