"""What the API reads of an item: the columns that let PostgreSQL print its JSON.

The document without `links` as JSONB text output, its stored links as text, and the two
ids the structural links need. PostgreSQL prints the JSON (C code, and it had to print it
anyway to send it); Python never parses it (see `catalogue.serializers.item_json_text`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Text, case, cast, func, literal, literal_column

from catalogue.models import ItemRow
from catalogue.serializers import StoredItemText

items = ItemRow.__table__


def item_text_columns(
    collection: Any, item_id: Any, content: Any, members: tuple[str, ...] | None = None
) -> tuple[Any, ...]:
    """The columns, read from `items` or from a subquery holding its three columns.

    With `members`, the body holds only those top-level members of the item (those it has)
    and the links are left out: what a Fields selection that does not ask for `links`
    needs. A `fields=id,properties.datetime` page of 100 items then carries the ids and
    properties instead of whole items (the API still applies the exact selection).
    """
    if members is None:
        body = content.op("-")(literal_column("'links'"))
        links = func.coalesce(content.op("->")(literal_column("'links'")), literal_column("'[]'"))
    else:
        body = literal_column("'{}'::jsonb")
        for name in members:  # bound: member names come from the request
            member = func.jsonb_build_object(literal(name), content.op("->")(literal(name)))
            body = body.op("||")(
                case((content.op("?")(literal(name)), member), else_=literal_column("'{}'::jsonb"))
            )
        links = literal_column("'[]'")
    return (
        collection.label("item_collection"),
        item_id.label("item_id"),
        cast(body, Text).label("item_body"),
        cast(links, Text).label("item_links"),
    )


ITEM_TEXT_COLUMNS = item_text_columns(items.c.collection, items.c.id, items.c.content)


def stored_item_text(row: Any) -> StoredItemText:
    """A row whose first four columns are `item_text_columns` (by position: cheaper than
    by name, per item of a page)."""
    return StoredItemText(row[0], row[1], row[2], row[3])
