"""item time range index

A GiST index on the item's closed time range, for the interval-overlap test of every
`datetime` search. The two B-tree indexes on start_datetime and end_datetime each match most
of the table for a one-month query (everything that started before its end; everything
that ended after its start) and only their bitmap AND is selective; the range index answers
`&&` directly. Measured on the 100,000-item benchmark (bench/core_search.py, bbox + month
and intersects + 3 months): 17-18 ms of SQL per request before, 2.1-2.8 ms after; the
index is 5.8 MB. `catalogue.repositories.search.interval_clause` repeats this expression
(constants inline) so the planner matches it.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 02:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ITEM_TIME_RANGE = "tstzrange(start_datetime, end_datetime, '[]')"


def upgrade() -> None:
    op.create_index(
        "ix_items_time_range",
        "items",
        [sa.text(ITEM_TIME_RANGE)],
        unique=False,
        postgresql_using="gist",
    )


def downgrade() -> None:
    op.drop_index("ix_items_time_range", table_name="items")
