"""item counts per (collection, UTC day), kept exact by statement-level triggers

Written by hand (Alembic does not autogenerate triggers). What it is for: counting the
items of a search constrained only by collections and datetime (`numberMatched`, and
`/aggregate`'s `total_count`, `datetime_*` and `collection_frequency`) reads the whole
days from `item_day_counts` and only the partial days at the interval's ends from `items`
(`catalogue.search.day_counts`). At 10M items a collection's count was a full index scan
(seconds); a few thousand rows of this table are read in milliseconds.

The day is the one `datetime_frequency` buckets an item in: `datetime` (the start of an
interval item) in UTC, `(datetime AT TIME ZONE 'UTC')::date`.

Every writer is covered, because the triggers are on `items` itself: the bulk merge
(INSERT ... SELECT from the staging table), the row-by-row prepared INSERT, the upserts'
ON CONFLICT DO UPDATE (which fires the UPDATE triggers for the rows it updates and the
INSERT ones for those it inserts), updates that move an item to another day or
collection, deletes, and a collection's delete (its foreign key's cascade deletes the
items, which fires the DELETE trigger). TRUNCATE empties the table too.

Statement-level AFTER triggers with transition tables: one GROUP BY per statement over the
rows it wrote, not one update per item. Net changes only: an update that keeps an item on
its day writes nothing here. Keys are written in (collection, day) order, so two writer
transactions touching the same days lock their rows in the same order and wait for each
other instead of deadlocking. All writes are one `INSERT ... ON CONFLICT DO UPDATE` (a
decrement finds its row: the item it removes was counted there).

The backfill is one set-based statement over `items`; it runs after the triggers exist,
in the migration's transaction, whose CREATE TRIGGER holds a lock that blocks writes to
`items` (not reads) until the commit, so no write slips between the two.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-08 03:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DAY = "(datetime AT TIME ZONE 'UTC')::date"
ODD = "(datetime < start_datetime OR datetime > end_datetime)"

# `{rows}`: the changed rows with a `sign` column, +1 for a row that came, -1 for one that went
APPLY_DELTAS = f"""
  INSERT INTO item_day_counts AS c (collection, day, n, odd)
  SELECT collection, {DAY}, sum(sign), coalesce(sum(sign) FILTER (WHERE {ODD}), 0)
  FROM ({{rows}}) AS changed
  GROUP BY 1, 2
  HAVING sum(sign) <> 0 OR coalesce(sum(sign) FILTER (WHERE {ODD}), 0) <> 0
  ORDER BY 1, 2
  ON CONFLICT (collection, day) DO UPDATE SET n = c.n + excluded.n, odd = c.odd + excluded.odd;
"""
COLUMNS = "collection, datetime, start_datetime, end_datetime"
CAME = f"SELECT {COLUMNS}, 1 AS sign FROM came"
WENT = f"SELECT {COLUMNS}, -1 AS sign FROM went"
TRIGGERS = {
    "inserted": ("INSERT", "NEW TABLE AS came", CAME),
    "updated": ("UPDATE", "OLD TABLE AS went NEW TABLE AS came", f"{CAME} UNION ALL {WENT}"),
    "deleted": ("DELETE", "OLD TABLE AS went", WENT),
}

BACKFILL = f"""
INSERT INTO item_day_counts (collection, day, n, odd)
SELECT collection, {DAY}, count(*), count(*) FILTER (WHERE {ODD})
FROM items GROUP BY 1, 2
"""


def upgrade() -> None:
    op.create_table(
        "item_day_counts",
        sa.Column("collection", sa.String(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.Column("odd", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint("collection", "day", name=op.f("pk_item_day_counts")),
    )
    for name, (event, transition, rows) in TRIGGERS.items():
        op.execute(
            f"CREATE FUNCTION cubestac_count_{name}_items() RETURNS trigger "
            f"LANGUAGE plpgsql AS $$ BEGIN {APPLY_DELTAS.format(rows=rows)} RETURN NULL; END $$"
        )
        op.execute(
            f"CREATE TRIGGER count_{name}_items AFTER {event} ON items "
            f"REFERENCING {transition} FOR EACH STATEMENT "
            f"EXECUTE FUNCTION cubestac_count_{name}_items()"
        )
    op.execute(
        "CREATE FUNCTION cubestac_count_truncated_items() RETURNS trigger LANGUAGE plpgsql "
        "AS $$ BEGIN DELETE FROM item_day_counts; RETURN NULL; END $$"
    )
    op.execute(
        "CREATE TRIGGER count_truncated_items AFTER TRUNCATE ON items "
        "FOR EACH STATEMENT EXECUTE FUNCTION cubestac_count_truncated_items()"
    )
    op.execute(BACKFILL)


def downgrade() -> None:
    for name in (*TRIGGERS, "truncated"):
        op.execute(f"DROP TRIGGER count_{name}_items ON items")
        op.execute(f"DROP FUNCTION cubestac_count_{name}_items()")
    op.drop_table("item_day_counts")
