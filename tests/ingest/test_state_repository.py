"""The catalogue side of harvesting: the two bulk write paths agree, and the per-source
state follows the items it describes."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from catalogue.errors import ConflictError
from catalogue.repositories import collections as collection_repo
from catalogue.repositories import items as item_repo
from catalogue.repositories import sources as source_repo
from catalogue.repositories.sources import SourceItem
from catalogue.serializers import item_to_row
from tests.helpers import grid_items, make_collection


@pytest.mark.parametrize("count", [10, item_repo.COPY_MIN_ROWS + 36])
async def test_row_and_staged_upserts_count_the_same(database, count: int) -> None:
    """Below COPY_MIN_ROWS rows go one by one, above through the staging table."""
    items = grid_items(count)
    async with database.write() as conn:
        await collection_repo.create_collection(conn, make_collection())
        first = await item_repo.upsert_items(conn, [item_to_row(item) for item in items])
        items[3]["properties"]["eo:cloud_cover"] = 5
        again = await item_repo.upsert_items(conn, [item_to_row(item) for item in items])
        stored = await conn.scalar(
            text("SELECT properties FROM items WHERE id = :id"), {"id": items[3]["id"]}
        )
    assert first == item_repo.UpsertCounts(count, 0, 0)
    assert again == item_repo.UpsertCounts(0, 1, count - 1)
    assert stored["eo:cloud_cover"] == 5  # properties follow content on both paths


async def test_staged_insert_refuses_existing_items(database) -> None:
    rows = [item_to_row(item) for item in grid_items(item_repo.COPY_MIN_ROWS + 1)]
    async with database.write() as conn:
        await collection_repo.create_collection(conn, make_collection())
        assert await item_repo.insert_items(conn, rows) == len(rows)
    with pytest.raises(ConflictError, match="already exist"):
        async with database.write() as conn:
            await item_repo.insert_items(conn, rows)


async def _source_with_items(conn, source_id: str, count: int) -> list[tuple[str, str]]:
    await source_repo.open_source(conn, source_id, "stac-api", "https://x", "h1")
    rows = [item_to_row(item) for item in grid_items(count)]
    if not await collection_repo.collection_exists(conn, "test-collection"):
        await collection_repo.create_collection(conn, make_collection())
    await item_repo.upsert_items(conn, rows)
    records = [SourceItem(r["collection"], r["id"], None, f"fp-{r['id']}") for r in rows]
    await source_repo.save_source_items(conn, source_id, records)
    return [(r["collection"], r["id"]) for r in rows]


async def test_a_deleted_item_takes_its_fingerprint_with_it(database) -> None:
    async with database.write() as conn:
        keys = await _source_with_items(conn, "src", 5)
        await item_repo.delete_item(conn, *keys[0])
        known = await source_repo.known_by_item(conn, "src", keys)
    assert set(known) == set(keys[1:])  # the next run fetches the deleted one again
    assert known[keys[1]].fingerprint == f"fp-{keys[1][1]}"


async def test_released_items_stay_while_another_source_holds_them(database) -> None:
    async with database.write() as conn:
        keys = await _source_with_items(conn, "one", 4)
        await _source_with_items(conn, "two", 2)  # holds the first two items too
        removed = await source_repo.release_items(conn, "one", keys)
        left = await conn.scalar(text("SELECT count(*) FROM items"))
        held = [key async for key in source_repo.held_items(conn, "one")]
    assert (removed, left, held) == (2, 2, [])


async def test_a_changed_config_voids_the_fingerprints(database) -> None:
    async with database.write() as conn:
        keys = await _source_with_items(conn, "src", 3)
        state = await source_repo.open_source(conn, "src", "stac-api", "https://x", "h2")
        known = await source_repo.known_by_item(conn, "src", keys)
    assert state.config_hash == "h2" and state.cursor == {}
    assert {record.fingerprint for record in known.values()} == {""}
