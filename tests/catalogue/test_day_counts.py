"""`item_day_counts` (migration 0011) stays equal to a GROUP BY over `items` under every
writer: bulk and row-by-row inserts and upserts, updates that move an item to another day,
interval items, deletes, a collection's delete, TRUNCATE, and two writer transactions on
the same days at once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from catalogue.repositories import collections as collection_repo
from catalogue.repositories import items as item_repo
from catalogue.schema import alembic_config, upgrade
from catalogue.serializers import item_to_row
from tests.helpers import make_collection, make_item

DAY0 = datetime(2021, 3, 1, tzinfo=UTC)
TRUTH = text(
    "SELECT collection, (datetime AT TIME ZONE 'UTC')::date AS day, count(*) AS n, "
    "count(*) FILTER (WHERE datetime < start_datetime OR datetime > end_datetime) AS odd "
    "FROM items GROUP BY 1, 2"
)
KEPT = text("SELECT collection, day, n, odd FROM item_day_counts WHERE n <> 0 OR odd <> 0")


def rows(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [item_to_row(item) for item in items]


def spread(count: int, collection: str = "a", prefix: str = "i", hours: int = 7) -> list[dict]:
    """Items `hours` apart from DAY0 (so several per day, across many days)."""
    return [
        make_item(f"{prefix}{n:04d}", collection, when=DAY0 + timedelta(hours=hours * n))
        for n in range(count)
    ]


async def truth_and_kept(conn: AsyncConnection) -> tuple[set, set]:
    truth = {tuple(row) for row in (await conn.execute(TRUTH)).all()}
    kept = {tuple(row) for row in (await conn.execute(KEPT)).all()}
    return truth, kept


async def assert_exact(conn: AsyncConnection) -> None:
    truth, kept = await truth_and_kept(conn)
    assert kept == truth


async def _collections(conn: AsyncConnection, *names: str) -> None:
    for name in names:
        await collection_repo.create_collection(conn, make_collection(name))


async def test_inserts_small_and_bulk_are_counted(database) -> None:
    async with database.write() as conn:
        await _collections(conn, "a", "b")
        await item_repo.insert_items(conn, rows(spread(10)))  # row by row
        await item_repo.insert_items(conn, rows(spread(200, "b")))  # staged (COPY + merge)
        await item_repo.upsert_items(conn, rows(spread(30, "a", "j")))
        await item_repo.upsert_items(conn, rows(spread(150, "a", "k", hours=3)))
        await assert_exact(conn)
        total = await conn.scalar(text("SELECT sum(n) FROM item_day_counts"))
        assert total == 390


async def test_updates_that_move_items_and_unchanged_reruns(database) -> None:
    async with database.write() as conn:
        await _collections(conn, "a")
        items = spread(120)
        await item_repo.upsert_items(conn, rows(items))
        unchanged = await item_repo.upsert_items(conn, rows(items))
        assert unchanged.unchanged == 120
        await assert_exact(conn)
        # half the items move 3 days later, in bulk; one moves row by row
        moved = [
            make_item(item["id"], "a", when=DAY0 + timedelta(days=3, hours=7 * n))
            for n, item in enumerate(items[:60])
        ]
        await item_repo.upsert_items(conn, rows(moved))
        await assert_exact(conn)
        await item_repo.replace_item(
            conn, item_to_row(make_item("i0100", "a", when=datetime(2030, 1, 1, tzinfo=UTC)))
        )
        await assert_exact(conn)
        assert await conn.scalar(text("SELECT sum(n) FROM item_day_counts")) == 120


async def test_an_update_that_moves_items_to_another_collection(database) -> None:
    """UPDATE of the `collection` column (in bulk, and of one row together with its day):
    the rows leave one collection's days and join the other's."""
    async with database.write() as conn:
        await _collections(conn, "a", "b")
        await item_repo.upsert_items(conn, rows(spread(100, "a") + spread(50, "b", "j")))
        await conn.execute(text("UPDATE items SET collection = 'b' WHERE id < 'i0040'"))
        await assert_exact(conn)
        await conn.execute(
            text(
                "UPDATE items SET collection = 'a', datetime = datetime + interval '40 days', "
                "start_datetime = start_datetime + interval '40 days', "
                "end_datetime = end_datetime + interval '40 days' WHERE id = 'j0001'"
            )
        )
        await assert_exact(conn)
        per = dict((await conn.execute(text(
            "SELECT collection, sum(n) FROM item_day_counts GROUP BY 1"
        ))).all())  # fmt: skip
        assert per == {"a": 61, "b": 89}


async def test_interval_items_and_odd_items(database) -> None:
    """A null-datetime item counts on its start's day; an item whose datetime is outside
    its own range is counted as odd there, and stops being odd when fixed."""
    ranged = make_item("r", "a", when=DAY0)
    ranged["properties"] = {
        "datetime": None,
        "start_datetime": "2021-02-27T22:00:00Z",
        "end_datetime": "2021-03-05T00:00:00Z",
    }
    odd = make_item("o", "a", when=DAY0)
    odd["properties"].update(
        start_datetime="2021-04-01T00:00:00Z", end_datetime="2021-04-02T00:00:00Z"
    )
    async with database.write() as conn:
        await _collections(conn, "a")
        await item_repo.upsert_items(conn, rows([ranged, odd]))
        await assert_exact(conn)
        days = dict((await conn.execute(text("SELECT day::text, odd FROM item_day_counts"))).all())
        assert days == {"2021-02-27": 0, "2021-03-01": 1}
        odd["properties"].update(start_datetime="2021-02-01T00:00:00Z")
        await item_repo.upsert_items(conn, rows([odd]))
        await assert_exact(conn)
        assert await conn.scalar(text("SELECT sum(odd) FROM item_day_counts")) == 0


async def test_deletes_collection_delete_and_truncate(database) -> None:
    async with database.write() as conn:
        await _collections(conn, "a", "b")
        await item_repo.upsert_items(conn, rows(spread(100, "a") + spread(100, "b")))
        await item_repo.delete_item(conn, "a", "i0005")
        await conn.execute(text("DELETE FROM items WHERE collection = 'a' AND id < 'i0050'"))
        await assert_exact(conn)
        held = await collection_repo.delete_collection(conn, "b", cascade=True)
        assert held == 100
        await assert_exact(conn)
        b_left = "SELECT coalesce(sum(n), 0) FROM item_day_counts WHERE collection = 'b'"
        assert await conn.scalar(text(b_left)) == 0
        await conn.execute(text("TRUNCATE items"))
        assert await conn.scalar(text("SELECT count(*) FROM item_day_counts")) == 0


async def test_two_writer_transactions_on_the_same_days(fresh_db_url) -> None:
    """Two transactions writing the same days in opposite orders both commit (the trigger
    takes its row locks in key order: the second waits, neither deadlocks) and the counts
    add up."""
    engine = create_async_engine(fresh_db_url)
    try:
        async with engine.begin() as conn:
            await _collections(conn, "a")
        first = rows(spread(300, "a", "x", hours=2))
        second = rows(list(reversed(spread(300, "a", "y", hours=2))))

        async def write(batch: list[dict[str, Any]]) -> None:
            async with engine.begin() as conn:
                await item_repo.upsert_items(conn, batch)
                await asyncio.sleep(0.2)  # hold the row locks while the other one writes

        await asyncio.wait_for(asyncio.gather(write(first), write(second)), timeout=60)
        async with engine.connect() as conn:
            await assert_exact(conn)
            assert await conn.scalar(text("SELECT sum(n) FROM item_day_counts")) == 600
    finally:
        await engine.dispose()


def test_the_migration_backfills_an_existing_catalogue(fresh_db_url) -> None:
    """Items written before 0011 (downgraded to 0010, the triggers gone) are counted by the
    upgrade's backfill."""
    command.downgrade(alembic_config(fresh_db_url), "0010")
    odd = make_item("odd", "a", when=DAY0)
    odd["properties"].update(
        start_datetime="2021-04-01T00:00:00Z", end_datetime="2021-04-02T00:00:00Z"
    )

    async def load() -> None:
        engine = create_async_engine(fresh_db_url)
        try:
            async with engine.begin() as conn:
                await _collections(conn, "a", "b")
                await item_repo.upsert_items(conn, rows(spread(90, "a") + spread(40, "b") + [odd]))
        finally:
            await engine.dispose()

    async def check() -> None:
        engine = create_async_engine(fresh_db_url)
        try:
            async with engine.connect() as conn:
                await assert_exact(conn)
        finally:
            await engine.dispose()

    asyncio.run(load())
    upgrade(fresh_db_url)
    asyncio.run(check())
