"""cube facts: queryables derived from the datacube fields, and their two indexes

Written by hand (Alembic does not autogenerate functions or expression indexes). What it
is for: `catalogue.cube_properties`. `cubestac_cube_facts(properties)` reads from an item's
`cube:variables` and `cube:dimensions` the flat values a user searches cubes by:

    {"cube:variable_names": [...], "cube:variable_units": [...],
     "cube:dimension_names": [...], "cube:time_step": "P1Y", "cube:resolution": 30.0}

and NULL for an item with neither field (every non-cube item), so those are "unknown" in a
filter, as a missing property is. It is IMMUTABLE (jsonb_path_query_* without `_tz` are),
and errors in odd documents are silenced (`silent => true`), so it can back an index and
never fails a write.

`ix_items_cube_facts` is a GIN (jsonb_path_ops) index on it: `A_CONTAINS`, `A_OVERLAPS`,
`A_EQUALS` on the arrays and `=` on the time step or resolution are written as
`facts @> {...}`, which it answers (`@>` is strict, so the comparison implies the
index's predicate). Why one index and not one per array: each index on `items` costs
every bulk write (bench/results/ingest_1m.md). Nothing is stored in the served item.

`ix_items_cube_resolution` is a B-tree on the resolution as a number, partial to cube
items (so it costs non-cube items nothing but the predicate): resolution ranges. The
filter writes `(facts -> 'cube:resolution')::numeric` (exact, as the facts hold only
numbers there), which is strict in the facts, so the planner proves the index's predicate
from the comparison. The planner takes no statistics from a partial index, so without
`st_items_cube_resolution` (statistics on the same expression over the whole table) it
guessed a third of all items for `cube:resolution < 50` and walked the datetime index
instead: 99 ms against about 2 ms at 100k items.

Both indexes are partial to cube items: a non-cube item costs one cheap function call
per index on write (the facts are NULL), no index entry.

On an existing catalogue the upgrade builds the indexes in one pass over `items`
(minutes at 10M items; it holds a lock that blocks writes, not reads, meanwhile).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08 01:20:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

X_STEP = '$."cube:dimensions".* ? (@.type == "spatial" && @.axis == "x").step'
NUMBER = ' ? (@.type() == "number")'
CUBE_FACTS = f"""
CREATE FUNCTION cubestac_cube_facts(properties jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN properties ? 'cube:variables' OR properties ? 'cube:dimensions' THEN
    jsonb_strip_nulls(jsonb_build_object(
      'cube:variable_names', jsonb_path_query_array(
        properties, '$."cube:variables".keyvalue().key', '{{}}', true),
      'cube:variable_units', jsonb_path_query_array(
        properties, '$."cube:variables".*.unit ? (@.type() == "string")', '{{}}', true),
      'cube:dimension_names', jsonb_path_query_array(
        properties, '$."cube:dimensions".keyvalue().key', '{{}}', true),
      'cube:time_step', jsonb_path_query_first(
        properties, '$."cube:dimensions".* ? (@.type == "temporal").step ? (@.type() == "string")',
        '{{}}', true),
      'cube:resolution', jsonb_path_query_first(properties, '{X_STEP}{NUMBER}', '{{}}', true)
    ))
  END
$$
"""


FACTS = "cubestac_cube_facts(properties)"
RESOLUTION = f"(({FACTS} -> 'cube:resolution')::numeric)"


def upgrade() -> None:
    op.execute(CUBE_FACTS)
    op.execute(
        f"CREATE INDEX ix_items_cube_facts ON items USING gin ({FACTS} jsonb_path_ops) "
        f"WHERE {FACTS} IS NOT NULL"
    )
    op.execute(
        f"CREATE INDEX ix_items_cube_resolution ON items ({RESOLUTION}) WHERE {FACTS} IS NOT NULL"
    )
    op.execute(f"CREATE STATISTICS st_items_cube_resolution ON ({RESOLUTION}) FROM items")


def downgrade() -> None:
    op.execute("DROP STATISTICS st_items_cube_resolution")
    op.execute("DROP INDEX ix_items_cube_resolution")
    op.execute("DROP INDEX ix_items_cube_facts")
    op.execute("DROP FUNCTION cubestac_cube_facts(jsonb)")
