"""Queryables follow the data: types seen, enums while few, updated by every write."""

from __future__ import annotations

from catalogue.repositories import collections as collection_repo
from catalogue.repositories import items as item_repo
from catalogue.repositories.queryables import MAX_ENUM_VALUES, list_queryables, property_names
from catalogue.serializers import item_to_row
from tests.helpers import make_collection, make_item


async def test_types_and_enums_are_derived_and_merged(database) -> None:
    async with database.write() as conn:
        await collection_repo.create_collection(conn, make_collection())
        first = [make_item("a", platform="s2a", gsd=10), make_item("b", platform="s2b", gsd=None)]
        await item_repo.upsert_items(conn, [item_to_row(item) for item in first])
        found = await list_queryables(conn, "test-collection")
        assert found["platform"] == ({"string"}, {"s2a", "s2b"})
        assert found["gsd"][0] == {"number", "null"}
        many = [make_item(f"m{i}", platform=f"p{i}") for i in range(MAX_ENUM_VALUES + 1)]
        await item_repo.upsert_items(conn, [item_to_row(item) for item in many])
        assert (await list_queryables(conn, "test-collection"))["platform"][1] is None
        assert {"platform", "gsd", "datetime", "id"} <= await property_names(conn)
