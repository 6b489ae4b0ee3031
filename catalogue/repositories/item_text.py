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


EMPTY_OBJECT = literal_column("'{}'::jsonb")
PathTree = dict[str, "PathTree | None"]


def path_tree(paths: tuple[tuple[str, ...], ...]) -> PathTree:
    """Dotted include paths as a tree of member names; None marks a whole member (which
    wins over deeper paths below it, as in `api.fields.FieldSelection.apply`)."""
    tree: PathTree = {}
    for path in paths:
        node: PathTree | None = tree
        for depth, name in enumerate(path):
            assert node is not None
            if depth == len(path) - 1:
                node[name] = None
            elif name in node and node[name] is None:
                break  # the whole member is kept already
            else:
                node = node.setdefault(name, {})
    return tree


def _selected(document: Any, tree: PathTree) -> Any:
    """The members of the JSONB object `document` that `tree` names, as a JSONB object.

    As `FieldSelection.apply` does it: a missing member is left out, and a member with
    paths below it becomes an object of those (an empty one when it is not an object)."""
    body = EMPTY_OBJECT
    for name, below in tree.items():
        key = literal(name)  # bound: member names come from the request
        value = document.op("->")(key)
        if below is not None:
            value = case(
                (func.jsonb_typeof(value) == "object", _selected(value, below)),
                else_=EMPTY_OBJECT,
            )
        member = func.jsonb_build_object(key, value)
        body = body.op("||")(case((document.op("?")(key), member), else_=EMPTY_OBJECT))
    return body


def item_text_columns(
    collection: Any,
    item_id: Any,
    content: Any,
    paths: tuple[tuple[str, ...], ...] | None = None,
) -> tuple[Any, ...]:
    """The columns, read from `items` or from a subquery holding its three columns.

    With `paths` (a Fields selection's include paths, split at the dots), the body holds
    only what they select, and the links are left out: what a selection that does not ask
    for `links` needs. A `fields=id,properties.datetime` page of 100 items then carries an
    id and a datetime per item instead of whole items, and the API sends it as it is.
    """
    if paths is None:
        body = content.op("-")(literal_column("'links'"))
        links = func.coalesce(content.op("->")(literal_column("'links'")), literal_column("'[]'"))
    else:
        body = _selected(content, path_tree(paths))
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
