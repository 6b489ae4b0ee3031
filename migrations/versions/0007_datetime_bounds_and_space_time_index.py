"""datetime bounds per collection, and one GiST index on space and time

1. `collections.max_datetime_minus_start` / `max_end_minus_datetime`: per collection, upper
   bounds of `datetime - start_datetime` and `end_datetime - datetime` over its items, grown
   by every item write (`catalogue.repositories.collections.record_time_spans`), backfilled
   here. An item overlaps the query interval [a, b] only if `start_datetime <= b` and
   `end_datetime >= a`, hence only if `datetime <= b + max_datetime_minus_start` and
   `datetime >= a - max_end_minus_datetime`: a redundant range on `datetime` that the
   (collection, datetime, id) B-tree answers in the search's own order, so a one-year search
   in one collection stops after `limit` rows instead of walking back from the newest item.
   Measured on the 1,000,000-item benchmark (h_fields: sentinel-1-grd, one year, limit 100,
   bench/results/search_1m_findings.md): 574 ms -> 0.9 ms of SQL; on a 600,000-item
   development copy 703 ms -> 1.5 ms. The bound never drops a row; unknown (NULL) maxima
   mean no bound.

2. `ix_items_geometry_time_range`: GiST on `(geometry, tstzrange(start_datetime,
   end_datetime, '[]'))`, replacing the geometry-only GiST `ix_items_geometry`. A bbox or
   intersects search with a datetime is one index scan instead of a BitmapAnd of two bitmaps,
   of which the geometry one holds every item of the region (7 % of the catalogue for a
   country-sized bbox). EXPLAIN ANALYZE, 600,000 items, no parallel workers:

   | query | before (both single indexes) | composite |
   | --- | ---: | ---: |
   | Germany bbox + one month, all collections, limit 50 | 24-66 ms (40,000-row bitmap) | 12-24 ms |
   | polygon + three months, limit 50 | 24 ms | 9-15 ms |
   | point, no datetime | 1.9 ms (geometry GiST) | 1.5 ms |
   | 0.5-degree bbox, no datetime | 3.1 ms (geometry GiST) | 7.2 ms |
   | one month, no geometry, all collections | 19 ms (time-range GiST) | 183 ms |

   The 1,000,000-item benchmark gave the same picture (b_bbox_month 33-47 -> 16 ms, index
   98 MB built in 9.9 s). Geometry-only searches lose little with the geometry as the
   composite's first column, so the composite replaces `ix_items_geometry` (the item table
   keeps its number of indexes, which matters for bulk writes). It does not replace
   `ix_items_time_range` (migration 0006): a GiST is poor at conditions on its second column
   alone (last row of the table), and datetime-only searches are common.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 12:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ITEM_SPACE_TIME = "geometry, tstzrange(start_datetime, end_datetime, '[]')"

BACKFILL_TIME_SPANS = """
UPDATE collections SET
  max_datetime_minus_start = GREATEST(s.before_, '0'::interval),
  max_end_minus_datetime = GREATEST(s.after_, '0'::interval)
FROM (
  SELECT collection, max(datetime - start_datetime) AS before_,
         max(end_datetime - datetime) AS after_
  FROM items GROUP BY collection
) AS s
WHERE s.collection = collections.id
"""


def upgrade() -> None:
    zero = sa.text("'0'::interval")
    op.add_column(
        "collections", sa.Column("max_datetime_minus_start", sa.Interval(), server_default=zero)
    )
    op.add_column(
        "collections", sa.Column("max_end_minus_datetime", sa.Interval(), server_default=zero)
    )
    op.execute(BACKFILL_TIME_SPANS)
    op.create_index(
        "ix_items_geometry_time_range",
        "items",
        [sa.text(ITEM_SPACE_TIME)],
        unique=False,
        postgresql_using="gist",
    )
    op.drop_index("ix_items_geometry", table_name="items", postgresql_using="gist")


def downgrade() -> None:
    op.create_index(
        "ix_items_geometry", "items", ["geometry"], unique=False, postgresql_using="gist"
    )
    op.drop_index("ix_items_geometry_time_range", table_name="items")
    op.drop_column("collections", "max_end_minus_datetime")
    op.drop_column("collections", "max_datetime_minus_start")
