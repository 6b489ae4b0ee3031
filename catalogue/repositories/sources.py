"""Harvesting state: which sources exist, which items each holds, and their fingerprints.

What a harvest does with this state is in `ingest/state.py`; here is only the SQL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    Column,
    String,
    and_,
    any_,
    bindparam,
    delete,
    exists,
    func,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from catalogue.models import ItemRow, SourceItemRow, SourceRow
from catalogue.repositories.staging import copy_to_staging, staging_table

sources = SourceRow.__table__
source_items = SourceItemRow.__table__
items = ItemRow.__table__
SOURCE_ITEMS_STAGING = staging_table(
    "source_items_staging",
    Column("collection", String),
    Column("item_id", String),
    Column("source", String),
    Column("href", String),
    Column("fingerprint", String),
)


@dataclass(frozen=True)
class SourceState:
    """What the previous runs of a source left for the next one."""

    id: str
    config_hash: str
    cursor: dict[str, Any]
    last_success_at: datetime | None


class SourceItem(NamedTuple):
    """An item a source holds and the fingerprint of the upstream version it came from.
    A tuple: an unchanged rerun builds one per item, and a frozen dataclass costs more
    (bench/results/code_figures.md)."""

    collection: str
    item_id: str
    href: str | None
    fingerprint: str


# The columns a `SourceItem` is made from, in its field order.
_RECORD_COLUMNS = (
    source_items.c.collection,
    source_items.c.item_id,
    source_items.c.href,
    source_items.c.fingerprint,
)


async def open_source(
    conn: AsyncConnection, source_id: str, kind: str, url: str, config_hash: str
) -> SourceState:
    """Register the source (first run) and return its state as the previous run left it.

    When the configuration changed, every stored fingerprint is voided in the same
    transaction, so this run and, if it is killed, the next one re-read everything.
    """
    statement = pg_insert(sources).values(
        id=source_id, kind=kind, url=url, config_hash=config_hash, cursor={}
    )
    await conn.execute(statement.on_conflict_do_nothing(index_elements=[sources.c.id]))
    row = (
        await conn.execute(select(sources).where(sources.c.id == source_id).with_for_update())
    ).one()
    if row.config_hash != config_hash or row.kind != kind or row.url != url:
        await conn.execute(
            update(source_items).where(source_items.c.source == source_id).values(fingerprint="")
        )
        await conn.execute(
            update(sources)
            .where(sources.c.id == source_id)
            .values(kind=kind, url=url, config_hash=config_hash, cursor={}, updated_at=func.now())
        )
        return SourceState(source_id, config_hash, {}, row.last_success_at)
    return SourceState(source_id, row.config_hash, row.cursor, row.last_success_at)


async def close_source(conn: AsyncConnection, source_id: str, cursor: dict[str, Any]) -> None:
    """Record a completed run and the cursor the next run starts from."""
    await conn.execute(
        update(sources)
        .where(sources.c.id == source_id)
        .values(cursor=cursor, last_success_at=func.now(), updated_at=func.now())
    )


async def known_by_href(
    conn: AsyncConnection, source_id: str, hrefs: Sequence[str]
) -> dict[str, SourceItem]:
    """The stored records of these addresses (a static catalog's item files, data files)
    whose items still exist."""
    if not hrefs:
        return {}
    rows = await conn.execute(
        select(*_RECORD_COLUMNS).where(
            source_items.c.source == source_id,
            source_items.c.href == any_(_text_array("hrefs", list(hrefs))),
            _item_exists(),
        )
    )
    # The WHERE already left out NULL hrefs; the test only tells the type checker so.
    return {item.href: item for item in map(SourceItem._make, rows) if item.href is not None}


async def known_by_item(
    conn: AsyncConnection, source_id: str, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], SourceItem]:
    """The stored records of these (collection, item id) pairs (items from a STAC API)
    whose items still exist."""
    if not keys:
        return {}
    wanted = (
        func.unnest(
            _text_array("collections", [key[0] for key in keys]),
            _text_array("item_ids", [key[1] for key in keys]),
        )
        .table_valued("collection", "item_id")
        .render_derived(with_types=False)
    )
    rows = await conn.execute(
        select(*_RECORD_COLUMNS)
        .join(
            wanted,
            and_(
                source_items.c.collection == wanted.c.collection,
                source_items.c.item_id == wanted.c.item_id,
                source_items.c.source == source_id,
            ),
        )
        .where(_item_exists())
    )
    found = map(SourceItem._make, rows)  # by position: cheaper per item than by name
    return {(item.collection, item.item_id): item for item in found}


async def save_source_items(
    conn: AsyncConnection, source_id: str, records: Sequence[SourceItem]
) -> None:
    """Store these records; unchanged ones are not rewritten."""
    if not records:
        return
    latest = {(record.collection, record.item_id): record for record in records}
    await copy_to_staging(
        conn,
        SOURCE_ITEMS_STAGING,
        [(r.collection, r.item_id, source_id, r.href, r.fingerprint) for r in latest.values()],
    )
    staged = SOURCE_ITEMS_STAGING.c
    statement = pg_insert(source_items).from_select(
        ["collection", "item_id", "source", "href", "fingerprint"],
        select(staged.collection, staged.item_id, staged.source, staged.href, staged.fingerprint),
    )
    excluded = statement.excluded
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=list(source_items.primary_key.columns),
            set_={"href": excluded.href, "fingerprint": excluded.fingerprint},
            where=tuple_(source_items.c.href, source_items.c.fingerprint).is_distinct_from(
                tuple_(excluded.href, excluded.fingerprint)
            ),
        )
    )


async def held_items(conn: AsyncConnection, source_id: str) -> AsyncIterator[tuple[str, str]]:
    """Every (collection, item id) the source holds, streamed (a source may hold millions)."""
    result = await conn.stream(
        select(source_items.c.collection, source_items.c.item_id).where(
            source_items.c.source == source_id
        )
    )
    async for row in result:
        yield row.collection, row.item_id


async def release_items(
    conn: AsyncConnection, source_id: str, keys: Sequence[tuple[str, str]]
) -> int:
    """The source no longer holds these items: drop its records, then every item that no
    source holds any more. Items that only arrived through the API have no records and are
    never touched. Returns how many items were deleted."""
    if not keys:
        return 0
    pairs = list(keys)
    await conn.execute(
        delete(source_items).where(
            source_items.c.source == source_id,
            tuple_(source_items.c.collection, source_items.c.item_id).in_(pairs),
        )
    )
    still_held = exists().where(
        source_items.c.collection == items.c.collection, source_items.c.item_id == items.c.id
    )
    result = await conn.execute(
        delete(items).where(tuple_(items.c.collection, items.c.id).in_(pairs), ~still_held)
    )
    return result.rowcount


def _item_exists() -> Any:
    """A record vouches only for an item that is there (see SourceItemRow)."""
    return exists().where(
        items.c.collection == source_items.c.collection, items.c.id == source_items.c.item_id
    )


def _text_array(name: str, values: list[str]) -> Any:
    return bindparam(name, values, type_=ARRAY(String))
