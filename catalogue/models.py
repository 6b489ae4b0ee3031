"""SQLAlchemy models of the catalogue: the source of the Alembic revisions.

Why one `items` table and not a partition per collection: see docs/adr-001-items-table.md.
The whole item is kept in `content` (links stripped; they are made at response time from
the public base URL), so a response needs no re-assembly; the other columns are
the searchable projections of it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Interval,
    MetaData,
    String,
    Table,
    func,
    literal_column,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base with stable constraint names, so migrations stay reviewable."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    # Every model here is mapped to a plain `Table` (no mapping to a join or select), so the
    # repositories may pass `Model.__table__` to insert/update/delete; SQLAlchemy types it as
    # the wider `FromClause` (the maintainers' advice in sqlalchemy#9130).
    __table__: ClassVar[Table]


TEXT_SEARCH_CONFIG = "simple"
# What free-text search (`q`) reads: title, description and keywords of an item. The GIN
# index of migration 0004 is built on exactly this text (constants inline, so the planner
# can match it); keep the two equal.
ITEM_TEXT_DOCUMENT_SQL = (
    "to_tsvector('simple'::regconfig, coalesce(properties->>'title', '') || ' ' || "
    "coalesce(properties->>'description', '') || ' ' || coalesce(properties->>'keywords', ''))"
)


def item_text_document() -> Any:
    return literal_column(ITEM_TEXT_DOCUMENT_SQL)


class CollectionRow(Base):
    """A STAC collection, stored whole."""

    __tablename__ = "collections"

    id: Mapped[str] = mapped_column(String, primary_key=True)
    content: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    # Searchable projections of `extent` for collection search; NULL is "unbounded".
    extent_geometry: Mapped[Any] = mapped_column(
        Geometry(geometry_type="GEOMETRY", srid=4326, spatial_index=False), nullable=True
    )
    extent_start: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    extent_end: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # Upper bounds, over the collection's items, of `datetime - start_datetime` and of
    # `end_datetime - datetime` (grown on every item write, never shrunk; NULL: unknown).
    # They turn an interval-overlap test into a range on `datetime` that the
    # (collection, datetime, id) index answers: see catalogue.repositories.search.
    max_datetime_minus_start: Mapped[dt.timedelta | None] = mapped_column(
        Interval, server_default=text("'0'::interval")
    )
    max_end_minus_datetime: Mapped[dt.timedelta | None] = mapped_column(
        Interval, server_default=text("'0'::interval")
    )


class ItemRow(Base):
    """A STAC item: searchable columns plus the whole item in `content`.

    `start_datetime`/`end_datetime` are never NULL: an instant item has start = end =
    `datetime`, so every temporal search is one interval-overlap test on two indexed columns.
    `datetime` is the sort key; for interval items it is the start, as in pgstac, so both
    catalogues page through the same order.
    """

    __tablename__ = "items"

    collection: Mapped[str] = mapped_column(
        String, ForeignKey("collections.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[str] = mapped_column(String, primary_key=True)
    geometry: Mapped[Any] = mapped_column(
        Geometry(geometry_type="GEOMETRY", srid=4326, spatial_index=False), nullable=False
    )
    datetime: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    start_datetime: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    end_datetime: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    properties: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    content: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )

    __table_args__ = (
        # Spatial filter (bbox / intersects) and interval overlap: the GiST indexes on
        # (time range, geometry) and on geometry of migration 0008, written by hand there.
        # Default order over all collections: newest first, keyset on (datetime, id, collection);
        # ascending columns, scanned backwards, so one row-value comparison uses them.
        Index("ix_items_datetime_id_collection", "datetime", "id", "collection"),
        # Default order inside one collection (collection-only searches, /items paging).
        Index("ix_items_collection_datetime_id", "collection", "datetime", "id"),
        # Interval overlap: start <= b AND end >= a.
        Index("ix_items_start_datetime", "start_datetime"),
        Index("ix_items_end_datetime", "end_datetime"),
        # `ids=` searches across collections.
        Index("ix_items_id", "id"),
    )


class ItemDayCountRow(Base):
    """How many items of a collection have their `datetime` on one UTC day.

    Kept exact by statement-level triggers on `items` (migration 0011), so that counts
    constrained only by collections and datetime (`numberMatched`, `/aggregate`'s totals,
    datetime and collection frequencies) read a few thousand rows instead of millions of
    index entries. The day is the one `datetime_frequency` buckets the item in: its
    `datetime` (the start for interval items) in UTC. `odd` counts those items whose
    `datetime` lies outside their own [start_datetime, end_datetime] (possible: STAC does
    not forbid it): for them the day says nothing about a datetime search, so days holding
    any are counted through `items` instead. Days whose items all went keep their row, at 0.
    No foreign key: the rows are only ever written by the triggers, a collection's go to 0
    with its items, and each key's write stays one index probe. Pages half empty
    (fillfactor 50, migration 0012): a row's update then stays on its page.
    """

    __tablename__ = "item_day_counts"
    __table_args__ = ({"postgresql_with": {"fillfactor": 50}},)

    collection: Mapped[str] = mapped_column(String, primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger, nullable=False)
    odd: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default=text("0"))


class JobRow(Base):
    """One ingest or cube run of one source or cube: what `cubestac jobs` lists.

    A run killed with SIGKILL stays `running` with no `finished_at`. `holder_pid` is the
    PostgreSQL backend pid of the connection that holds the run's advisory lock: while that
    backend lives, so does the run (the lock goes with the connection), so `cubestac jobs`
    shows a `running` job whose backend is gone as `interrupted`; the next run of the same
    target marks it `failed` (see `catalogue.repositories.jobs`).
    """

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String, nullable=False)  # "ingest" | "cube"
    target: Mapped[str] = mapped_column(String, nullable=False)  # source id or cube id
    status: Mapped[str] = mapped_column(String, nullable=False)
    started_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    counts: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, default=dict)
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, nullable=False, default=list)
    message: Mapped[str | None] = mapped_column(String)
    holder_pid: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (
        Index("ix_jobs_started_at", "started_at"),
        Index("ix_jobs_kind_target_started_at", "kind", "target", "started_at"),
    )


class SourceRow(Base):
    """One harvested source (a CONFIG `sources:` entry) and what its next run needs to know.

    `config_hash` covers the settings that shape the items (URL, collection, datetime pattern
    ...): when it changes, stored fingerprints no longer vouch for the items and the next run
    re-reads everything. `cursor` is kind-specific (the STAC API datetime cursor).
    """

    __tablename__ = "sources"

    id: Mapped[str] = mapped_column(String, primary_key=True)
    kind: Mapped[str] = mapped_column(String, nullable=False)
    url: Mapped[str] = mapped_column(String, nullable=False)
    config_hash: Mapped[str] = mapped_column(String, nullable=False)
    cursor: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, default=dict)
    last_success_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )


class SourceItemRow(Base):
    """An item a source holds, with the fingerprint of the upstream version it was made from.

    The fingerprint (ETag / Last-Modified, size + mtime, the item's `updated`, a content hash)
    lets an unchanged record be recognised without reading or writing it again. `href` is the
    record's own address when it has one (an item JSON file, a data file), so a static catalog
    or a file glob can be compared before anything is fetched.

    A record only vouches for an item that exists: the look-ups join `items`, so an item
    deleted by anyone (by hand, with its collection) is fetched again by the next run instead
    of being trusted by its fingerprint. That join replaces a foreign key on purpose: checking
    a foreign key per inserted record doubled the cost of writing the records in a bulk
    harvest (bench/ingest.py), while the join costs the look-up one index probe per item.
    The primary key leads with the item, which is the index that join uses.
    """

    __tablename__ = "source_items"

    collection: Mapped[str] = mapped_column(String, primary_key=True)
    item_id: Mapped[str] = mapped_column(String, primary_key=True)
    source: Mapped[str] = mapped_column(
        String, ForeignKey("sources.id", ondelete="CASCADE"), primary_key=True
    )
    href: Mapped[str | None] = mapped_column(String)
    fingerprint: Mapped[str] = mapped_column(String, nullable=False)

    __table_args__ = (
        # Everything a source holds (state loads, mirror removals); and, for sources whose
        # records have their own address, the look-up by href before fetching.
        Index("ix_source_items_source_href", "source", "href"),
    )


class QueryableRow(Base):
    """One property seen in a collection's items: its JSON types and, while few, its values.

    Kept current by every item write (`catalogue.repositories.queryables.record_properties`)
    so `/queryables` is a single small read, and filters and sortby can name unknown
    properties in their errors without scanning items.
    """

    __tablename__ = "queryables"

    collection: Mapped[str] = mapped_column(
        String, ForeignKey("collections.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String, primary_key=True)
    json_types: Mapped[list[str]] = mapped_column(JSONB, nullable=False)
    enum_values: Mapped[list[Any] | None] = mapped_column(JSONB)
