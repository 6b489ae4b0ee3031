"""item_day_counts pages half empty, so the count triggers' updates stay on their page

Every bulk write updates one `item_day_counts` row per (collection, day) it touches: a
batch of 2,000 items spread over years rewrites about 1,300 rows. On full pages each new
row version goes to another page and adds an index entry; with `fillfactor = 50` it stays
on its page (a HOT update: no index entry, the old version pruned in place). Measured with
the same 1,320-row delta applied to a copy of the table 28 times (EXPLAIN ANALYZE, medians):
19.0 ms on full pages, 9.5 ms at fillfactor 50 (bench/results/counts.md). The table is
small (collections x days: 20,000 rows for 5 collections over 10 years), so the doubled
size does not matter.

CLUSTER rewrites the existing rows with the new fillfactor (a table's fillfactor only
applies to pages written after it is set); it runs in the migration's transaction and
locks the table, a few thousand rows, for milliseconds.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-08 04:55:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE item_day_counts SET (fillfactor = 50)")
    op.execute("CLUSTER item_day_counts USING pk_item_day_counts")


def downgrade() -> None:
    op.execute("ALTER TABLE item_day_counts RESET (fillfactor)")
