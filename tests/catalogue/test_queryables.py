"""Queryables follow the data: types seen, enums while few, updated by every write."""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from catalogue.repositories import collections as collection_repo
from catalogue.repositories import items as item_repo
from catalogue.repositories.queryables import MAX_ENUM_VALUES, list_queryables, property_names
from catalogue.serializers import item_to_row
from tests.helpers import make_collection, make_item
from tests.waiting import until


async def test_types_and_enums_are_derived_and_merged(database) -> None:
    async with database.write() as conn:
        await collection_repo.create_collection(conn, make_collection())
        first = [make_item("a", platform="s2a", gsd=10), make_item("b", platform="s2b", gsd=None)]
        await item_repo.upsert_items(conn, [item_to_row(item) for item in first])
        found = await list_queryables(conn, "test-collection")
        assert found["platform"] == ({"string"}, {"s2a", "s2b"})
        assert found["gsd"][0] == {"number", "null"}
        many = [make_item(f"m{i}", platform=f"p{i}") for i in range(MAX_ENUM_VALUES + 1)]
        await item_repo.upsert_items(conn, [item_to_row(item) for item in many])
        assert (await list_queryables(conn, "test-collection"))["platform"][1] is None
        assert {"platform", "gsd", "datetime", "id"} <= await property_names(conn)


def _varied_items(collection_id: str) -> list[dict]:
    """Items whose properties cover every JSON type, nulls, long strings, open enums."""
    return [
        make_item(
            f"v{i}",
            collection_id,
            platform=f"s2{'ab'[i % 2]}",
            gsd=None if i % 7 == 0 else (10 if i % 3 else 20.5),
            flag=i % 2 == 0,
            bands=["red", "nir"],
            extra={"k": i},
            mixed="x" if i % 5 else i,
            label=f"label-{i}",  # more distinct values than an enum holds
            note=("long " * 30) if i == 3 else "short",
            rare=None if i else "only-first",
        )
        for i in range(80)
    ]


async def test_a_bulk_write_records_what_item_by_item_writes_record(database) -> None:
    """One staged bulk write (a harvest batch) and the same items written one at a time
    leave the same queryables."""
    async with database.write() as conn:
        for collection_id in ("bulk", "single"):
            await collection_repo.create_collection(conn, make_collection(collection_id))
        bulk = _varied_items("bulk")
        assert len(bulk) >= item_repo.COPY_MIN_ROWS  # the staged path
        await item_repo.upsert_items(conn, [item_to_row(item) for item in bulk])
        for item in _varied_items("single"):
            await item_repo.upsert_items(conn, [item_to_row(item)])
        by_bulk = await list_queryables(conn, "bulk")
        assert by_bulk == await list_queryables(conn, "single")
        assert by_bulk["platform"] == ({"string"}, {"s2a", "s2b"})
        assert by_bulk["gsd"][0] == {"number", "null"}
        assert by_bulk["flag"] == ({"boolean"}, None)
        assert by_bulk["bands"][0] == {"array"} and by_bulk["extra"][0] == {"object"}
        assert by_bulk["mixed"] == ({"string", "number"}, None)
        assert by_bulk["label"][1] is None and by_bulk["note"][1] is None
        assert by_bulk["rare"] == ({"string", "null"}, {"only-first"})


async def test_an_unchanged_write_leaves_the_queryables_rows_alone(database) -> None:
    async with database.write() as conn:
        await collection_repo.create_collection(conn, make_collection())
        rows = [item_to_row(make_item(f"u{i}", platform="s2a")) for i in range(70)]
        await item_repo.upsert_items(conn, rows)
        before = await conn.scalar(text("SELECT max(xmin::text::bigint) FROM queryables"))
        await item_repo.upsert_items(conn, rows)
        after = await conn.scalar(text("SELECT max(xmin::text::bigint) FROM queryables"))
        assert after == before  # nothing new seen: no queryables row rewritten (or locked)


async def test_concurrent_writers_keep_each_others_values(fresh_db_url) -> None:
    """Two transactions that both add a value to the same property: the second waits for
    the first's row lock and merges with what the first committed, instead of overwriting."""
    engine = create_async_engine(fresh_db_url)
    try:
        async with engine.begin() as conn:
            await collection_repo.create_collection(conn, make_collection())
            first = [make_item("seed", platform="s2a")]
            await item_repo.upsert_items(conn, [item_to_row(item) for item in first])
        async with engine.connect() as one, engine.connect() as two:
            await one.begin()
            await item_repo.upsert_items(one, [item_to_row(make_item("a", platform="s2b"))])
            await two.begin()
            pid = await two.scalar(text("SELECT pg_backend_pid()"))
            waiting = asyncio.create_task(
                item_repo.upsert_items(two, [item_to_row(make_item("b", platform="s2c"))])
            )

            async def two_waits_on_a_lock() -> bool:
                async with engine.connect() as watcher:
                    event = await watcher.scalar(
                        text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :pid"),
                        {"pid": pid},
                    )
                return event == "Lock"

            await until(two_waits_on_a_lock, "the second writer to wait on a row lock")
            assert not waiting.done()  # blocked on the queryables row `one` holds
            await one.commit()
            await waiting
            await two.commit()
        async with engine.connect() as conn:
            found = await list_queryables(conn, "test-collection")
        assert found["platform"] == ({"string"}, {"s2a", "s2b", "s2c"})
    finally:
        await engine.dispose()
