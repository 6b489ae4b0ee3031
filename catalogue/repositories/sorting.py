"""Sort orders and keyset pagination over any queryable, NULLs and ties included.

Every order ends with `id` and `collection`, so it is total and the last row of a page is
a unique position. The next page is "rows strictly after that position", written as the
lexicographic expansion  (k1 > v1) OR (k1 = v1 AND k2 > v2) OR ...  where "after" respects
each key's direction and where NULLs sort: last when ascending, first when descending
(PostgreSQL's defaults, stated explicitly in ORDER BY). When every key is a NOT NULL column
with one direction, the expansion is replaced by one row-value comparison that an index
answers directly (the default order).

Property values are compared as JSONB (numbers as numbers, strings as strings, and a
fixed order between types); they travel in the token as JSON text so that a JSON `null`
and a missing property (SQL NULL) stay distinct.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import ColumnElement, Text, and_, bindparam, cast, false, or_, true, tuple_
from sqlalchemy.dialects.postgresql import JSONB

from catalogue import cube_properties
from catalogue.errors import InvalidInputError, UnknownPropertyError
from catalogue.models import ItemRow
from catalogue.search.query import DEFAULT_SORT, PageToken, SortKey

items = ItemRow.__table__
COLUMN_FIELDS = {
    "id": items.c.id,
    "collection": items.c.collection,
    "datetime": items.c.datetime,
    "start_datetime": items.c.start_datetime,
    "end_datetime": items.c.end_datetime,
}
TIE_BREAKERS = ("id", "collection")


@dataclass(frozen=True)
class OrderKey:
    """A sort key resolved to its SQL expression."""

    field: str
    expression: ColumnElement[Any]
    descending: bool
    is_property: bool

    def order_clause(self, expression: ColumnElement[Any] | None = None) -> Any:
        """ORDER BY term of this key; `expression` when the key is read from a subquery."""
        column = self.expression if expression is None else expression
        ordered = column.desc() if self.descending else column.asc()
        return ordered.nulls_first() if self.descending else ordered.nulls_last()

    def selected(self) -> ColumnElement[Any]:
        """What is read back for the token: JSON text for properties, the value otherwise."""
        return cast(self.expression, Text) if self.is_property else self.expression

    def bound(self, value: Any) -> Any:
        """The token's value as SQL: property values are JSON text, cast to JSONB by
        PostgreSQL (a JSONB-typed bind would JSON-encode the text a second time)."""
        if not self.is_property:
            return value
        return cast(bindparam(None, value, type_=Text, unique=True), JSONB)

    def placeholder(self, index: int) -> Any:
        """`bound` for a statement built once and run with many tokens: the named parameter
        `token_<index>` (see `token_parameters`)."""
        if self.is_property:
            return cast(bindparam(f"token_{index}", type_=Text), JSONB)
        return bindparam(f"token_{index}", type_=self.expression.type)


def property_name(field: str) -> str:
    """`properties.eo:cloud_cover` and `eo:cloud_cover` name the same property."""
    return field[len("properties.") :] if field.startswith("properties.") else field


def property_value(name: str) -> ColumnElement[Any]:
    """`properties -> 'name'` as JSONB (the operator expression indexes are built on); a
    cube property (`catalogue.cube_properties`) is read from the item's cube facts."""
    derived = cube_properties.VALUES.get(name)
    if derived is not None:
        return derived
    return items.c.properties.op("->", return_type=JSONB)(name)


def check_sort_fields(sortby: Sequence[SortKey], known_properties: AbstractSet[str] | None) -> None:
    """A 400 naming the first sort key that is neither a column nor a known property."""
    if known_properties is None:
        return
    for key in sortby:
        name = property_name(key.field)
        if name not in COLUMN_FIELDS and name not in known_properties:
            raise UnknownPropertyError(f"sortby: unknown property {key.field!r} (see /queryables)")


def resolve(key: SortKey) -> OrderKey:
    name = property_name(key.field)
    if name in COLUMN_FIELDS:
        return OrderKey(name, COLUMN_FIELDS[name], key.descending, is_property=False)
    return OrderKey(name, property_value(name), key.descending, is_property=True)


def order_keys(sortby: Sequence[SortKey]) -> list[OrderKey]:
    """The user's keys (or the default order) made total with the tie-breakers. Their
    names are checked before (`check_sort_fields`): an order serves any queryables."""
    keys = [resolve(key) for key in (sortby or DEFAULT_SORT)]
    named = {key.field for key in keys}
    last_descending = keys[-1].descending
    for field in TIE_BREAKERS:
        if field not in named:
            keys.append(OrderKey(field, COLUMN_FIELDS[field], last_descending, is_property=False))
    return keys


def signature(keys: Sequence[OrderKey]) -> str:
    spec = ",".join(f"{'-' if key.descending else '+'}{key.field}" for key in keys)
    return hashlib.sha1(spec.encode()).hexdigest()[:12]


def _after(key: OrderKey, bound: Any) -> ColumnElement[bool]:
    """Rows strictly after the bound value in this key's order (NULLs last asc, first
    desc); `bound` is None for a NULL in the token."""
    if bound is None:
        return key.expression.is_not(None) if key.descending else false()
    if key.descending:
        return key.expression < bound
    return or_(key.expression > bound, key.expression.is_(None))


def _equal(key: OrderKey, bound: Any) -> ColumnElement[bool]:
    return key.expression.is_(None) if bound is None else key.expression == bound


def check_token(keys: Sequence[OrderKey], token: PageToken) -> None:
    if token.signature != signature(keys) or len(token.values) != len(keys):
        raise InvalidInputError("token: it belongs to a search with another sortby")


def _after_bound(keys: Sequence[OrderKey], bounds: Sequence[Any]) -> ColumnElement[bool]:
    """Rows after the position whose keys are `bounds` (SQL values, None for NULLs)."""
    simple = all(not key.is_property for key in keys) and len({k.descending for k in keys}) == 1
    if simple and all(bound is not None for bound in bounds):
        left = tuple_(*(key.expression for key in keys))
        right = tuple_(*bounds)
        return left < right if keys[0].descending else left > right
    branches = []
    for index, key in enumerate(keys):
        equal_prefix = [_equal(k, b) for k, b in zip(keys[:index], bounds, strict=False)]
        branches.append(and_(true(), *equal_prefix, _after(key, bounds[index])))
    return or_(*branches)


def after_clause(keys: Sequence[OrderKey], token: PageToken) -> ColumnElement[bool]:
    """Rows after the token's position, its values bound in the clause (forward only: the
    collection search gives no `prev` links)."""
    check_token(keys, token)
    if token.backward:
        raise InvalidInputError("token: this search pages forward only")
    return _after_bound(
        keys,
        [None if v is None else k.bound(v) for k, v in zip(keys, token.values, strict=True)],
    )


def after_placeholders(keys: Sequence[OrderKey], nulls: Sequence[bool]) -> ColumnElement[bool]:
    """`after_clause` for any token whose NULLs sit where `nulls` says, its values left as
    the named parameters of `token_parameters` (the clause's shape depends only on where
    the NULLs are, so a statement built once serves every such token)."""
    return _after_bound(
        keys,
        [
            None if null else key.placeholder(i)
            for i, (key, null) in enumerate(zip(keys, nulls, strict=True))
        ],
    )


def token_parameters(token: PageToken) -> dict[str, Any]:
    """The values for `after_placeholders`' parameters."""
    return {f"token_{i}": value for i, value in enumerate(token.values) if value is not None}


def reversed_keys(keys: Sequence[OrderKey]) -> list[OrderKey]:
    """The exact reverse of the order of `keys`, NULLs included: a key ascending with NULLs
    last becomes descending with NULLs first and the other way round (`order_clause`), so
    "after a position" in the reversed order is "before it" in the original one. A `prev`
    page is the first rows after the token in this order, read back to front."""
    return [replace(key, descending=not key.descending) for key in keys]


def token_after(keys: Sequence[OrderKey], row: Any, backward: bool = False) -> PageToken:
    """The token for the row's position; the row carries the keys as `k0 .. kn`.
    `backward` makes it a `prev` token: the rows before that position."""
    values = tuple(getattr(row, f"k{index}") for index in range(len(keys)))
    return PageToken(values, signature(keys), backward)
