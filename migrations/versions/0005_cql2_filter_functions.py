"""cql2 filter functions: typed reads of JSONB properties and an immutable unaccent

Written by hand: Alembic does not autogenerate functions or extensions. What they are for:
`catalogue.filters.operands`. A CQL2 filter compares a property with a literal of a known
type; the property may hold anything (a string in one item, a number in the next, JSON null,
nothing at all). Each `cubestac_<type>(jsonb)` returns the value when it has that JSON type
and NULL otherwise, so a mismatch is "unknown" in SQL's three-valued logic (never true, and
not made true by NOT) instead of an error or JSONB's cross-type ordering.

All are IMMUTABLE and PARALLEL SAFE, so expression indexes can be built on them (for
example `cubestac_number(properties -> 'eo:cloud_cover')`); the SQL ones are inlined by
the planner. `cubestac_timestamp` reads RFC 3339 date-times (with `Z` or an offset) and
full dates (midnight UTC); anything else, including impossible dates, is NULL. It is
IMMUTABLE because the accepted strings carry their own offset, so the session time zone
never enters. `cubestac_unaccent` wraps `unaccent` (STABLE, as it reads its dictionary
through the search path) with the dictionary named explicitly, for ACCENTI and for indexes.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 02:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TYPED_READS = {
    "cubestac_number(value jsonb) RETURNS numeric": (
        "SELECT CASE WHEN jsonb_typeof(value) = 'number' THEN value::numeric END"
    ),
    "cubestac_text(value jsonb) RETURNS text": (
        "SELECT CASE WHEN jsonb_typeof(value) = 'string' THEN value #>> '{}' END"
    ),
    "cubestac_boolean(value jsonb) RETURNS boolean": (
        "SELECT CASE WHEN jsonb_typeof(value) = 'boolean' THEN value::boolean END"
    ),
    "cubestac_array(value jsonb) RETURNS jsonb": (
        "SELECT CASE WHEN jsonb_typeof(value) = 'array' THEN value END"
    ),
}

TIMESTAMP_READ = r"""
CREATE FUNCTION cubestac_timestamp(value jsonb) RETURNS timestamptz
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  moment text;
BEGIN
  IF jsonb_typeof(value) IS DISTINCT FROM 'string' THEN
    RETURN NULL;
  END IF;
  moment := value #>> '{}';
  IF moment ~ '^\d{4}-\d{2}-\d{2}$' THEN
    moment := moment || 'T00:00:00Z';
  ELSIF moment !~* '^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$' THEN
    RETURN NULL;
  END IF;
  BEGIN
    RETURN moment::timestamptz;
  EXCEPTION WHEN datetime_field_overflow OR invalid_datetime_format THEN
    RETURN NULL;
  END;
END
$$
"""

UNACCENT = """
CREATE FUNCTION cubestac_unaccent(value text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS $$
  SELECT public.unaccent('public.unaccent'::regdictionary, value)
$$
"""


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS unaccent WITH SCHEMA public")
    for signature, body in TYPED_READS.items():
        op.execute(
            f"CREATE FUNCTION {signature} LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ {body} $$"
        )
    op.execute(TIMESTAMP_READ)
    op.execute(UNACCENT)


def downgrade() -> None:
    op.execute("DROP FUNCTION cubestac_unaccent(text)")
    op.execute("DROP FUNCTION cubestac_timestamp(jsonb)")
    for signature in TYPED_READS:
        op.execute(f"DROP FUNCTION {signature.split(' RETURNS')[0]}")
    op.execute("DROP EXTENSION IF EXISTS unaccent")
