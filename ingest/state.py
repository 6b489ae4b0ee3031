"""Incremental state of one source's run, on top of `catalogue.repositories.sources`.

Per item the catalogue stores the fingerprint of the upstream version it was made from
(ETag / Last-Modified for HTTP, size + mtime or the S3 ETag for files, the item's `updated`
or a content hash for STAC API items). A run looks the fingerprints up batch by batch (by
href for records that have their own address, by (collection, id) for API items), so an
unchanged record is recognised before it is read, and nothing is written for it.

For `mirror: true` the run remembers every item it saw (unchanged ones included); what the
source held before and was not seen is gone upstream. Only a complete listing may remove
anything: a broken link or a failed page leaves every item in place.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

from catalogue.database import Database
from catalogue.repositories import sources as source_repo
from catalogue.repositories.sources import SourceItem
from ingest.sources.base import Record

REMOVE_BATCH = 1000
Key = tuple[str, str]


class RunState:
    """Stored fingerprints, looked up per batch, and the items this run saw."""

    def __init__(self, database: Database, source_id: str, mirror: bool) -> None:
        self.database = database
        self.source_id = source_id
        self.seen: set[Key] | None = set() if mirror else None

    async def known(self, records: Sequence[Record]) -> list[SourceItem | None]:
        """The stored record of each record (None for new ones), in order."""
        hrefs = [record.href for record in records if record.href]
        keys = [record.key for record in records if not record.href and record.key]
        async with self.database.read() as conn:
            by_href = await source_repo.known_by_href(conn, self.source_id, hrefs)
            by_key = await source_repo.known_by_item(conn, self.source_id, keys)
        found: list[SourceItem | None] = []
        for record in records:
            if record.href:
                found.append(by_href.get(record.href))
            else:
                found.append(by_key.get(record.key) if record.key else None)
        return found

    def saw(self, key: Key | None) -> None:
        if self.seen is not None and key is not None:
            self.seen.add(key)

    async def remove_gone(self) -> int:
        """Release every item the source held and this run did not see; how many items
        were deleted (an item another source still holds stays)."""
        assert self.seen is not None, "only mirror runs remember what they saw"
        async with self.database.read_in_transaction() as conn:  # a cursor needs one
            gone = [
                key
                async for key in source_repo.held_items(conn, self.source_id)
                if key not in self.seen
            ]
        removed = 0
        for start in range(0, len(gone), REMOVE_BATCH):
            chunk = gone[start : start + REMOVE_BATCH]
            release = partial(source_repo.release_items, source_id=self.source_id, keys=chunk)
            removed += await self.database.transaction(release)
        return removed
