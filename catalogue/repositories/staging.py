"""COPY into a session-temporary staging table: the fast lane of every bulk write.

A bulk write sends its rows with one binary COPY into a temporary table and then merges them
into the real table with one INSERT ... SELECT ... ON CONFLICT. Compared with a prepared
INSERT per row, PostgreSQL plans once, checks conflicts set-wise and the rows cross the wire
in binary, which is what lets a harvest keep up with pypgstac's loader (bench/ingest.py).

The staging tables are `ON COMMIT DELETE ROWS` temporary tables: private to the session,
created on first use, emptied by every commit; `copy_to_staging` also empties them first, so
two bulk writes in one transaction never see each other's rows.

Items are a few kB of JSON, so PostgreSQL compresses them (TOAST). Its default, pglz, cost
as much as the COPY itself in bench/ingest.py; the bulk transaction therefore switches to lz4
where the server has it (PostgreSQL >= 14 built with lz4, as Debian's is). A compressed value
keeps its method when it moves from the staging table into the real one, and reads
decompress either kind.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import MetaData, String, Table, any_, case, column, delete, func, literal, select
from sqlalchemy import table as table_clause
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.schema import CreateTable


def staging_table(name: str, *columns: Any) -> Table:
    """A temporary table definition, kept out of the catalogue's metadata (and Alembic's)."""
    return Table(
        name,
        MetaData(),
        *columns,
        prefixes=["TEMPORARY"],
        postgresql_on_commit="DELETE ROWS",
    )


async def copy_to_staging(
    conn: AsyncConnection, staging: Table, records: Sequence[tuple[Any, ...]]
) -> None:
    """Create `staging` if this session lacks it, empty it, and COPY `records` into it.

    Records are tuples in the order of `staging.columns`; the driver encodes them in binary
    (JSONB columns take JSON text, timestamps take aware datetimes).
    """
    await conn.execute(CreateTable(staging, if_not_exists=True))
    await conn.execute(delete(staging))
    await conn.execute(_prefer_lz4())
    raw = await conn.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None  # an open connection always has its asyncpg connection
    await driver.copy_records_to_table(
        staging.name, records=records, columns=[column.name for column in staging.columns]
    )


def _prefer_lz4() -> Any:
    """`SET LOCAL default_toast_compression = lz4` when the server offers lz4 (else a no-op),
    as one SELECT with bound values."""
    settings = table_clause(
        "pg_settings", column("name"), column("setting"), column("enumvals", ARRAY(String))
    )
    wanted = case(
        (literal("lz4") == any_(settings.c.enumvals), literal("lz4")),
        else_=settings.c.setting,
    )
    return select(func.set_config("default_toast_compression", wanted, True)).where(
        settings.c.name == "default_toast_compression"
    )
