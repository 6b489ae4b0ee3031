"""`stac-api`: an item search (collections, bbox, datetime, CQL2-JSON filter), page by page.

pystac-client does the protocol (search body, `next` links, POST paging); it is synchronous,
so it runs in a worker thread, one page at a time, and every HTTP request it makes goes
through our retry policy (`RetryingStacApiIO`). Each item on a page is a record that already
carries its content and fingerprint (`updated`, or a content hash), so unchanged items are
recognised without another request.

A server that advertises no conformance classes is searched anyway, with a warning; one that
advertises classes but not item search (or not filter, when a filter is configured) is
refused, rather than harvested unfiltered.

With `cursor: datetime`, a complete run stores the newest item datetime it saw, and the next
run only asks for items from there (minus `cursor_overlap`).
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections.abc import AsyncIterator, Iterator, Mapping
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import quote

import orjson
from pystac_client import Client
from pystac_client.conformance import ConformanceClasses
from pystac_client.exceptions import APIError
from pystac_client.stac_api_io import StacApiIO

from ingest.config import DatetimeRange, StacApiSource
from ingest.errors import RecordError, SourceError
from ingest.raw_items import item_head, page_with_raw_features, raw_fingerprint
from ingest.retry import RetryPolicy
from ingest.sources.base import Fetched, HarvesterBase, Problem, Record
from ingest.stac import collection_document, item_fingerprint

logger = logging.getLogger(__name__)
DROPPED_COLLECTION_RELS = frozenset({"child", "item", "items", "next", "prev", "previous"})


class RetryingStacApiIO(StacApiIO):
    """pystac-client's HTTP layer with the source's retry policy around every request."""

    def __init__(self, policy: RetryPolicy, **kwargs: Any) -> None:
        super().__init__(max_retries=0, **kwargs)  # ours are the only retries
        self.policy = policy

    def request(
        self,
        href: str,
        method: str | None = None,
        headers: dict[str, str] | None = None,
        parameters: dict[str, Any] | None = None,
    ) -> str:
        for attempt in self.policy.synchronous():
            with attempt:
                return super().request(href, method, headers, parameters)
        raise AssertionError("unreachable: tenacity re-raises the last error")

    def json_loads(self, txt: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Search pages keep each item as bytes (`ingest.raw_items`): an unchanged item is
        never parsed. pystac's documented hook for the JSON decoder. An answer that is not
        JSON (an HTML login or error page) is an `APIError`, reported as the source's."""
        try:
            return page_with_raw_features(txt)
        except orjson.JSONDecodeError as error:
            start = (txt.decode(errors="replace") if isinstance(txt, bytes) else txt)[:60]
            raise APIError(f"the answer is not JSON ({error}); it starts with {start!r}") from error


class StacApiHarvester(HarvesterBase):
    # 2: fingerprints of items without `updated` hash the bytes served (ingest.raw_items)
    version: ClassVar[int] = 3  # 3: documents stored as current STAC (stac_migration)

    def __init__(self, config: StacApiSource) -> None:
        self.config = config
        self.url = config.url.rstrip("/")
        self._io = RetryingStacApiIO(RetryPolicy(config.retries, config.retry_wait_s))
        self._client: Client | None = None
        self._newest: datetime | None = None

    async def open(self) -> None:
        self._client = await asyncio.to_thread(self._open)

    async def close(self) -> None:
        self._io.session.close()

    def _open(self) -> Client:
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                client = Client.open(
                    self.url,
                    stac_io=self._io,
                    headers=dict(self.config.headers),
                    timeout=self.config.timeout_s,
                )
        except APIError as error:
            raise SourceError(f"cannot open the STAC API {self.url}: {error}") from error
        for warning in caught:
            logger.warning("%s: %s", self.url, warning.message)
        self._check_conformance(client)
        return client

    def _check_conformance(self, client: Client) -> None:
        needed = ["ITEM_SEARCH"] + (["FILTER"] if self.config.filter else [])
        if not client.get_conforms_to():
            logger.warning(
                "%s advertises no conformance classes; searching it anyway (assuming %s)",
                self.url,
                " and ".join(name.lower().replace("_", " ") for name in needed),
            )
            for name in needed:
                client.add_conforms_to(name)
            return
        for name in needed:
            if not client.conforms_to(ConformanceClasses.get_by_name(name)):
                raise SourceError(
                    f"{self.url} does not advertise the {name.lower().replace('_', ' ')} "
                    "conformance class that this source's config needs"
                )

    def search_parameters(self, cursor: Mapping[str, Any]) -> dict[str, Any]:
        """pystac-client `search()` arguments for this run."""
        # GET pages are plain URLs every STAC API serves; a CQL2-JSON filter needs POST.
        method = "POST" if self.config.filter else "GET"
        parameters: dict[str, Any] = {"method": method, "limit": self.config.page_size}
        if self.config.collections:
            parameters["collections"] = list(self.config.collections)
        if self.config.bbox:
            parameters["bbox"] = list(self.config.bbox)
        interval = self._interval(cursor)
        if interval is not None:
            parameters["datetime"] = interval.as_parameter()
        if self.config.filter:
            parameters["filter"] = self.config.filter
            parameters["filter_lang"] = "cql2-json"
        return parameters

    def _interval(self, cursor: Mapping[str, Any]) -> DatetimeRange | None:
        configured = self.config.datetime
        since = cursor.get("datetime") if self.config.cursor == "datetime" else None
        if not since:
            return configured
        self._newest = datetime.fromisoformat(since)
        start = self._newest - self.config.cursor_overlap
        if configured is not None and configured.start is not None:
            start = max(start, configured.start)
        return DatetimeRange(start=start, end=configured.end if configured else None)

    async def discover(self, cursor: Mapping[str, Any]) -> AsyncIterator[Record | Problem]:
        pages = await asyncio.to_thread(self._pages, self.search_parameters(cursor))
        number = 0
        while True:
            try:
                page = await asyncio.to_thread(next, pages, None)
            except APIError as error:
                message = f"{self.url}: the search stopped after page {number}: {error}"
                raise SourceError(message) from error
            if page is None:
                return
            number += 1
            for feature in page.get("features") or []:
                yield self._record(feature)

    def _pages(self, parameters: dict[str, Any]) -> Iterator[dict[str, Any]]:
        assert self._client is not None, "use `async with StacApiHarvester(...)`"
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            search = self._client.search(**parameters)
        for warning in caught:
            logger.warning("%s: %s", self.url, warning.message)
        return search.pages_as_dicts()

    def _record(self, feature: Any) -> Record | Problem:
        """A record from one item of a page, as bytes (`ingest.raw_items`) or, when the
        page was parsed whole, as a dict."""
        where = f"{self.url}/search"
        if isinstance(feature, bytes):
            head = item_head(feature)
            if head is None:
                return Problem(where, "a search result that is not a STAC item object")
            fingerprint = raw_fingerprint(feature, head)
            item_id, collection, properties = head.id, head.collection, head.properties
            if properties is not None:
                self._note_datetime(properties.datetime or properties.start_datetime)
        elif isinstance(feature, dict):
            fingerprint = item_fingerprint(feature)
            item_id, collection = feature.get("id"), feature.get("collection")
            properties = feature.get("properties")
            if isinstance(properties, dict):
                self._note_datetime(properties.get("datetime") or properties.get("start_datetime"))
        else:
            return Problem(where, "a search result that is not a JSON object")
        collection = collection or self._only_collection()
        if not isinstance(item_id, str) or not item_id or not isinstance(collection, str):
            return Problem(where, f"an item without a string id and collection: {item_id!r}")
        return Record(
            key=(collection, item_id),
            fingerprint=fingerprint,
            payload=feature,
            context=f"{self.url}/collections/{quote(collection, safe='')}/items/"
            f"{quote(item_id, safe='')}",
        )

    def _only_collection(self) -> str | None:
        collections = self.config.collections or []
        return collections[0] if len(collections) == 1 else None

    def _note_datetime(self, value: Any) -> None:
        """Remember the newest item datetime (for `cursor: datetime`)."""
        if self.config.cursor != "datetime" or value is None:
            return
        try:
            moment = datetime.fromisoformat(str(value).replace("z", "Z"))
        except ValueError:
            return  # an item without a usable datetime is reported when it is converted
        if moment.tzinfo is not None and (self._newest is None or moment > self._newest):
            self._newest = moment

    async def fetch(self, record: Record, known: str | None) -> Fetched | None:
        raise AssertionError("API records carry their items; there is nothing to fetch")

    def to_item(self, record: Record, payload: Any) -> dict[str, Any]:
        assert record.key is not None
        if isinstance(payload, bytes):
            try:
                payload = orjson.loads(payload)
            except orjson.JSONDecodeError as error:
                raise RecordError(str(record.context), f"not valid JSON: {error}") from error
            if not isinstance(payload, dict):
                raise RecordError(str(record.context), "a search result that is not an object")
        if payload.get("collection") == record.key[0]:
            return payload
        return {**payload, "collection": record.key[0]}

    async def collection(self, collection_id: str) -> dict[str, Any]:
        url = f"{self._collections_url()}/{quote(collection_id, safe='')}"
        try:
            document = await asyncio.to_thread(self._io.read_json, url)
        except APIError as error:
            raise RecordError(url, f"the collection cannot be read: {error}") from error
        if not isinstance(document, dict) or document.get("id") != collection_id:
            raise RecordError(url, "not the STAC collection the items name")
        return collection_document(document, url, DROPPED_COLLECTION_RELS)

    def _collections_url(self) -> str:
        assert self._client is not None
        data = self._client.get_single_link("data")
        return data.absolute_href.rstrip("/") if data else f"{self.url}/collections"

    def next_cursor(self) -> dict[str, Any]:
        if self.config.cursor != "datetime" or self._newest is None:
            return {}
        return {"datetime": self._newest.isoformat()}
