"""Alembic environment: the target metadata is the catalogue's models, so autogenerate works.

The URL comes from the Alembic config (set by `catalogue.schema`), which built it from
`Settings`; nothing is read from the environment here.
"""

from __future__ import annotations

import asyncio

from alembic import context
from alembic.runtime.environment import NameFilterType
from geoalchemy2 import alembic_helpers
from sqlalchemy import Connection, pool
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.schema import SchemaItem

from catalogue.models import Base

target_metadata = Base.metadata


# Expression indexes written by hand in revisions (Alembic cannot autogenerate them).
HAND_WRITTEN_INDEXES = frozenset(
    {
        "ix_items_text",
        "ix_items_time_range_geometry",
        "ix_items_geometry",
        "ix_items_cube_facts",
        "ix_items_cube_resolution",
    }
)


def include_object(
    obj: SchemaItem,
    name: str | None,
    type_: NameFilterType,
    reflected: bool,
    compare_to: SchemaItem | None,
) -> bool:
    """Ignore PostGIS's own tables (spatial_ref_sys ...) and our hand-written expression
    indexes when autogenerating."""
    if type_ == "table" and reflected and compare_to is None:
        return False
    if type_ == "index" and name in HAND_WRITTEN_INDEXES:
        return False
    return alembic_helpers.include_object(obj, name, type_, reflected, compare_to)


def _configure(
    connection: Connection | None = None, url: str | None = None, literal_binds: bool = False
) -> None:
    context.configure(
        connection=connection,
        url=url,
        literal_binds=literal_binds,
        target_metadata=target_metadata,
        include_object=include_object,
        process_revision_directives=alembic_helpers.writer,
        render_item=alembic_helpers.render_item,
        compare_type=True,
    )


def run_offline() -> None:
    _configure(url=context.config.get_main_option("sqlalchemy.url"), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def _run_sync(connection: Connection) -> None:
    _configure(connection)
    with context.begin_transaction():
        context.run_migrations()


async def run_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run_sync(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if url is None:
        raise RuntimeError("alembic: no sqlalchemy.url (catalogue.schema sets it from Settings)")
    engine = create_async_engine(url, poolclass=pool.NullPool)
    async with engine.connect() as async_connection:
        await async_connection.run_sync(_run_sync)
        await async_connection.commit()
    await engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    asyncio.run(run_online())
