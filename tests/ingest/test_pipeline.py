"""The harvest pipeline's write side: concurrent writers, batches that share an item,
queryables and fingerprints after a bulk run. The source is a harvester over items held
in memory (the `Harvester` protocol, as bench/ingest.py's ndjson source)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar

from sqlalchemy.ext.asyncio import AsyncEngine

from catalogue.database import Database
from catalogue.repositories.jobs import JobStatus
from catalogue.repositories.queryables import list_queryables
from ingest import pipeline
from ingest.config import StacApiSource
from ingest.progress import LogProgress
from ingest.sources.base import Fetched, HarvesterBase, Problem, Record
from ingest.stac import item_fingerprint
from tests.helpers import make_collection, make_item
from tests.ingest.conftest import rows, scalar


class ListHarvester(HarvesterBase):
    """Items as an API page carries them: whole, with their fingerprints."""

    version: ClassVar[int] = 1

    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items = items

    async def discover(self, cursor: Mapping[str, Any]) -> AsyncIterator[Record | Problem]:
        for item in self.items:
            key = (item["collection"], item["id"])
            yield Record(key=key, fingerprint=item_fingerprint(item), payload=item)

    async def fetch(self, record: Record, known: str | None) -> Fetched | None:
        raise AssertionError("records carry their items")

    def to_item(self, record: Record, payload: Any) -> dict[str, Any]:
        return payload

    async def collection(self, collection_id: str) -> dict[str, Any]:
        return make_collection(collection_id)

    def next_cursor(self) -> dict[str, Any]:
        return {}


def config(batch_size: int) -> StacApiSource:
    return StacApiSource(
        id="listed", kind="stac-api", url="http://127.0.0.1:9/", batch_size=batch_size
    )


async def run(engine: AsyncEngine, items: list[dict[str, Any]], batch_size: int = 10) -> Any:
    outcome = await pipeline.harvest_source(
        Database(engine), config(batch_size), LogProgress(), ListHarvester(items)
    )
    assert outcome.status is JobStatus.SUCCEEDED, outcome.message
    return outcome


def many_items() -> list[dict[str, Any]]:
    """300 items in two collections, with properties whose queryables grow batch by batch."""
    return [
        make_item(
            f"i{n:03d}",
            ("left", "right")[n % 2],
            platform=f"p{n // 40}",  # a new enum value every 4th batch, closed at the end
            gsd=10 if n < 150 else None,
            **({"late": True} if n >= 280 else {}),
        )
        for n in range(300)
    ]


async def test_concurrent_writers_write_every_batch_with_its_fingerprints(catalogue) -> None:
    assert pipeline.WRITERS > 1
    items = many_items()
    outcome = await run(catalogue, items)
    assert outcome.counts.as_dict() == {
        "new": 300, "changed": 0, "unchanged": 0, "removed": 0, "failed": 0
    }  # fmt: skip
    assert await scalar(catalogue, "SELECT count(*) FROM items") == 300
    fingerprints = await rows(
        catalogue, "SELECT item_id, fingerprint FROM source_items ORDER BY item_id"
    )
    assert fingerprints == [(item["id"], item_fingerprint(item)) for item in items]
    async with catalogue.connect() as conn:
        for collection_id in ("left", "right"):
            found = await list_queryables(conn, collection_id)
            assert found["platform"] == ({"string"}, {f"p{k}" for k in range(8)})
            assert found["gsd"][0] == {"number", "null"}
            assert found["late"] == ({"boolean"}, None)  # seen in the last batches only
    again = await run(catalogue, items)
    assert again.counts.summary().startswith("0 new, 0 changed, 300 unchanged")


async def test_an_item_listed_twice_keeps_the_later_version(catalogue) -> None:
    """Batches that share an item are written in listing order even with several writers."""
    items = many_items()
    later = make_item("i003", "right", platform="p-later")
    later["properties"]["updated"] = "2024-01-01T00:00:00Z"  # another fingerprint
    items.insert(9, later)  # batch 1 of 7 items: written while batch 0 may still be
    outcome = await run(catalogue, items, batch_size=7)
    assert (outcome.counts.new, outcome.counts.changed) == (300, 1)
    stored = await scalar(catalogue, "SELECT content FROM items WHERE id = 'i003'")
    assert stored["properties"]["platform"] == "p-later"
    fingerprint = await scalar(
        catalogue, "SELECT fingerprint FROM source_items WHERE item_id = 'i003'"
    )
    assert fingerprint == item_fingerprint(later)
