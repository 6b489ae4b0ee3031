"""`ingest.raw_items`: the head of an item read from its bytes, without parsing the rest."""

from __future__ import annotations

import hashlib

import orjson
import pytest

from ingest.raw_items import item_head, page_with_raw_features, raw_fingerprint
from tests.helpers import make_item


def test_the_head_holds_what_the_listing_needs() -> None:
    item = make_item("a-1", "c", when=None)
    item["properties"]["updated"] = "2024-01-02T03:04:05Z"
    head = item_head(orjson.dumps(item))
    assert head is not None
    assert (head.id, head.collection) == ("a-1", "c")
    assert head.properties is not None
    assert head.properties.datetime == item["properties"]["datetime"]
    assert raw_fingerprint(orjson.dumps(item), head) == "updated:2024-01-02T03:04:05Z"


def test_without_updated_the_fingerprint_hashes_the_bytes() -> None:
    raw = orjson.dumps(make_item("a-2", "c"))
    head = item_head(raw)
    assert head is not None
    assert raw_fingerprint(raw, head) == "sha256:" + hashlib.sha256(raw).hexdigest()
    changed = raw.replace(b'"a-2"', b'"a-3"')
    assert raw_fingerprint(changed, item_head(changed)) != raw_fingerprint(raw, head)


@pytest.mark.parametrize(
    "raw",
    [b"42", b'"text"', b"[1, 2]", b'{"id": "x", "properties": "not an object"}', b"{broken"],
)
def test_what_is_not_an_item_object_has_no_head(raw: bytes) -> None:
    assert item_head(raw) is None


def test_pages_keep_item_bytes_and_other_documents_are_parsed_whole() -> None:
    items = [make_item("p-1", "c"), make_item("p-2", "c")]
    next_link = {"rel": "next", "href": "http://127.0.0.1/search?token=x"}
    page = {"type": "FeatureCollection", "features": items, "links": [next_link]}
    split = page_with_raw_features(orjson.dumps(page).decode())
    assert [orjson.loads(raw) for raw in split["features"]] == items
    assert split["links"] == [next_link]
    landing = {"type": "Catalog", "id": "root", "links": [], "conformsTo": ["x"]}
    assert page_with_raw_features(orjson.dumps(landing)) == landing
    with pytest.raises(orjson.JSONDecodeError):
        page_with_raw_features("{not json")
