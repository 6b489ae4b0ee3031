"""Items kept as the bytes they arrived in until they are known to have changed.

An unchanged rerun of a STAC API source reads every page again, and parsing each item into
dicts (and freeing them) was two thirds of its CPU (bench/results/code_figures.md). For the
unchanged-or-not decision an item needs only its id, collection, `properties.updated` and
datetime; msgspec reads those into a small struct and skips the rest of the bytes without
building anything. The item is parsed in full (orjson) only when it is new or changed.
orjson cannot decode a subset; msgspec can, which is why both are used.

The fingerprint of an item without `updated` is the SHA-256 of its bytes as served. Unlike
a hash of the parsed item it changes when a server reorders keys; the item is then read
and written again, and the catalogue skips the identical row (`upsert_items`).
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec
import orjson


class _Properties(msgspec.Struct):
    updated: Any = None
    datetime: Any = None
    start_datetime: Any = None


class ItemHead(msgspec.Struct):
    """What a listing needs of an item before deciding to read it."""

    id: Any = None
    collection: Any = None
    properties: _Properties | None = None


class _Page(msgspec.Struct):
    features: list[msgspec.Raw] | None = None
    links: list[Any] | None = None


_HEAD = msgspec.json.Decoder(ItemHead)
_PAGE = msgspec.json.Decoder(_Page)


def item_head(raw: bytes) -> ItemHead | None:
    """The head of one item's JSON; None when it is not an object of the expected shape
    (the caller then parses it in full and reports what is wrong)."""
    try:
        return _HEAD.decode(raw)
    except msgspec.DecodeError:  # ValidationError is a DecodeError
        return None


def raw_fingerprint(raw: bytes, head: ItemHead) -> str:
    """`updated:<timestamp>` when the item has one, else a hash of its bytes."""
    updated = head.properties.updated if head.properties is not None else None
    if isinstance(updated, str) and updated:
        return f"updated:{updated}"
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def page_with_raw_features(text: str | bytes) -> dict[str, Any]:
    """A search page whose `features` are each item's bytes; any other document parsed in
    full. Members of a page besides `features` and `links` are dropped (paging needs only
    those two)."""
    data = text.encode() if isinstance(text, str) else text
    try:
        page = _PAGE.decode(data)
    except msgspec.DecodeError:
        page = None
    if page is None or page.features is None:
        return orjson.loads(data)
    return {
        "type": "FeatureCollection",
        "features": [bytes(feature) for feature in page.features],
        "links": page.links or [],
    }
