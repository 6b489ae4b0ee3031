"""`catalogue.projection.stated_crs`: the CRS an item's `proj:` fields state, read the same
way where the cube builder opens an asset and where a harvest completes an item's grid."""

from __future__ import annotations

from typing import Any

import pytest

from catalogue.projection import stated_crs
from ingest.metadata.completion import complete_asset
from ingest.metadata.geotiff import GridInfo

PROJJSON = {"type": "GeographicCRS", "name": "WGS 84"}


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"proj:code": "EPSG:3035", "proj:epsg": 4326}, "EPSG:3035"),
        ({"proj:epsg": 3035}, "EPSG:3035"),
        ({"proj:epsg": None, "proj:code": None, "proj:wkt2": "PROJCRS[...]"}, "PROJCRS[...]"),
        ({"proj:projjson": PROJJSON}, PROJJSON),
        ({"proj:epsg": None, "proj:code": None}, None),
        ({"proj:shape": [3, 4]}, None),
    ],
)
def test_the_stated_crs(fields: dict[str, Any], expected: Any) -> None:
    assert stated_crs(fields) == expected


@pytest.mark.parametrize(
    ("stated", "completed"),
    [
        ({}, True),
        ({"proj:epsg": 3035}, True),
        ({"proj:code": "EPSG:3035"}, True),
        ({"proj:epsg": 4326}, False),  # the item says another CRS: its grid is not the file's
        ({"proj:wkt2": "PROJCRS[...]"}, False),
    ],
)
def test_a_harvest_completes_the_grid_only_under_the_same_crs(
    stated: dict[str, Any], completed: bool
) -> None:
    item = {"stac_extensions": [], "properties": stated, "assets": {"data": {"href": "a.tif"}}}
    grid = GridInfo(
        {"proj:epsg": 3035, "proj:code": "EPSG:3035", "proj:shape": [3, 4]},
        [{"data_type": "uint8"}],
    )
    added = complete_asset(item, "data", grid)
    assert ("proj:shape" in added) is completed
