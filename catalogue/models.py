"""SQLAlchemy models of the catalogue: the source of the Alembic revisions.

Why one `items` table and not a partition per collection: see docs/adr-001-items-table.md.
The whole item is kept in `content` (links stripped; they are made at response time from
the public base URL), so a response needs no re-assembly; the other columns are
the searchable projections of it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import (
    DateTime,
    ForeignKey,
    Index,
    MetaData,
    String,
    func,
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


class CollectionRow(Base):
    """A STAC collection, stored whole."""

    __tablename__ = "collections"

    id: Mapped[str] = mapped_column(String, primary_key=True)
    content: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
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
    datetime: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    start_datetime: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    end_datetime: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    properties: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    content: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )

    __table_args__ = (
        # Spatial filter (bbox / intersects).
        Index("ix_items_geometry", "geometry", postgresql_using="gist"),
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


class JobRow(Base):
    """One ingest or cube run of one source or cube: what `cubestac jobs` lists.

    A run killed with SIGKILL stays `running` with no `finished_at`; the next run of the same
    target marks it `failed` (see `catalogue.repositories.jobs.start_job`).
    """

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String, nullable=False)  # "ingest" | "cube"
    target: Mapped[str] = mapped_column(String, nullable=False)  # source id or cube id
    status: Mapped[str] = mapped_column(String, nullable=False)
    started_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    counts: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, default=dict)
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, nullable=False, default=list)
    message: Mapped[str | None] = mapped_column(String)

    __table_args__ = (
        Index("ix_jobs_started_at", "started_at"),
        Index("ix_jobs_kind_target_started_at", "kind", "target", "started_at"),
    )
