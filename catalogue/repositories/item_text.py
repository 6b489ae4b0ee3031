"""What the API reads of an item: the columns that let PostgreSQL print its JSON.

The document without `links` as JSONB text output, its stored links as text, and the two
ids the structural links need. PostgreSQL prints the JSON (C code, and it had to print it
anyway to send it); Python never parses it (see `catalogue.serializers.item_json_text`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Text, case, cast, func, literal, literal_column

from catalogue.models import ItemRow
from catalogue.serializers import StoredItemText

items = ItemRow.__table__


EMPTY_OBJECT: ColumnElement[Any] = literal_column("'{}'::jsonb")
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


def _member(document: Any, name: str, below: PathTree | None) -> Any:
    """`{name: ...}` of what `below` selects of the member (all of it when None), or `{}`
    when the document has no such member."""
    key = literal(name)  # bound: member names come from the request
    value = document.op("->")(key)
    if below is not None:
        value = case(
            (func.jsonb_typeof(value) == "object", _selected(value, below)),
            else_=EMPTY_OBJECT,
        )
    member = func.jsonb_build_object(key, value)
    return case((document.op("?")(key), member), else_=EMPTY_OBJECT)


def _selected(document: Any, tree: PathTree, columns: dict[str, Any] | None = None) -> Any:
    """The members of the JSONB object `document` that `tree` names, as a JSONB object.

    As `FieldSelection.apply` does it: a missing member is left out, and a member with
    paths below it becomes an object of those (an empty one when it is not an object).
    `columns` are members every item has that are also stored as columns (JSONB values):
    read from there, so that the item's document is not decompressed at all when nothing
    else is selected (`fields=id,properties.datetime`; bench/results/code_figures.md).
    """
    body: ColumnElement[Any] = EMPTY_OBJECT
    for name, below in tree.items():
        column = (columns or {}).get(name)
        if column is None:
            body = body.op("||")(_member(document, name, below))
            continue
        value = column if below is None else _selected(column, below)
        body = body.op("||")(func.jsonb_build_object(literal(name), value))
    return body


def item_text_columns(
    collection: Any,
    item_id: Any,
    content: Any,
    paths: tuple[tuple[str, ...], ...] | None = None,
    properties: Any | None = None,
) -> tuple[Any, ...]:
    """The columns, read from `items` or from a subquery holding its three columns (and
    `properties`, which `paths` may read instead of the document's).

    With `paths` (a Fields selection's include paths, split at the dots), the body holds
    only what they select, and the links are left out: what a selection that does not ask
    for `links` needs. A `fields=id,properties.datetime` page of 100 items then carries an
    id and a datetime per item instead of whole items, and the API sends it as it is.
    """
    links: ColumnElement[Any]
    if paths is None:
        body = content.op("-")(literal_column("'links'"))
        links = func.coalesce(content.op("->")(literal_column("'links'")), literal_column("'[]'"))
    else:
        columns = {"id": func.to_jsonb(item_id), "collection": func.to_jsonb(collection)}
        if properties is not None:
            columns["properties"] = properties
        body = _selected(content, path_tree(paths), columns)
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
