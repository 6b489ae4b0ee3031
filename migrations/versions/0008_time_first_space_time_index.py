"""space-time GiST with the time range first; a plain geometry GiST beside it

Replaces two GiST indexes with two others, so the item table keeps its number of indexes
(each costs bulk writes, bench/results/ingest_1m.md):

- drops `ix_items_geometry_time_range` (geometry, time range), migration 0007;
- drops `ix_items_time_range` (time range alone), migration 0006;
- creates `ix_items_time_range_geometry`: GiST on `(tstzrange(start_datetime, end_datetime,
  '[]'), geometry)`;
- creates `ix_items_geometry`: GiST on `geometry`, for searches without a datetime and for
  CQL2 spatial filters.

Why the time range goes first: a multi-column GiST splits its pages on the first column
and only checks the later ones inside them. With the geometry first, a country-sized bbox
and one month walks every page of the country across all years (about 1,000 pages to find
705 items at 1M); with the range first it walks the month's pages and tests the geometry
in the index. A GiST serves conditions on its first column alone as well as a one-column
GiST, so this index also does the job of `ix_items_time_range` for datetime-only searches;
geometry-only searches get their own GiST back.

EXPLAIN ANALYZE on the 1,000,000-item benchmark (bench/core_search.py's data), warm,
no parallel workers, limit 51 in the default order; the same plans otherwise (one index
scan, top-N sort):

| query | (geometry, range), 0007 | (range, geometry) |
| --- | ---: | ---: |
| Germany bbox + June 2021, all collections | 8.3-9.7 ms, 1,667 buffers | 1.9-2.1 ms, 820 |
| France bbox + March 2019 | 10.4 ms, 2,175 buffers | 2.7-2.9 ms, 1,181 |
| Alps polygon + three months | 4.6 ms | 5.3 ms |

Also measured and not adopted: an N-dimensional GiST (`gist_geometry_ops_nd`) on a box of
(x, y, days): 4.6 ms for the Germany query, but its selectivity estimates were 10-10,000x
too low, so the planner chose it for long intervals in one collection (287 ms instead of
1 ms), and it needs non-indexable copies of the exact conditions to keep the planner from
AND-ing it with the other GiSTs.

`catalogue.repositories.search` writes both conditions so that they match these indexes.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 16:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ITEM_TIME_RANGE = "tstzrange(start_datetime, end_datetime, '[]')"


def upgrade() -> None:
    op.execute(
        "CREATE INDEX ix_items_time_range_geometry ON items "
        f"USING gist ({ITEM_TIME_RANGE}, geometry)"
    )
    op.execute("CREATE INDEX ix_items_geometry ON items USING gist (geometry)")
    op.execute("DROP INDEX ix_items_geometry_time_range")
    op.execute("DROP INDEX ix_items_time_range")


def downgrade() -> None:
    op.execute(f"CREATE INDEX ix_items_time_range ON items USING gist ({ITEM_TIME_RANGE})")
    op.execute(
        "CREATE INDEX ix_items_geometry_time_range ON items "
        f"USING gist (geometry, {ITEM_TIME_RANGE})"
    )
    op.execute("DROP INDEX ix_items_geometry")
    op.execute("DROP INDEX ix_items_time_range_geometry")
