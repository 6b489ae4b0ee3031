"""`stac-static` items whose GeoTIFF assets lack grid or data types are completed from the
file's header (`read_raster_headers`, issue 13): the fields are added at the asset level
under the projection version the item declares, what the item says is never overwritten,
and a file that cannot be read (or is not local/HTTP) leaves the item as it was."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from catalogue.projection import PROJECTION_EXTENSION
from catalogue.repositories.jobs import JobStatus
from demo.files import serve_files
from tests.helpers import free_port
from tests.ingest.conftest import rows, validate_items

pytestmark = pytest.mark.slow

COG = "image/tiff; application=geotiff; profile=cloud-optimized"
V2 = "https://stac-extensions.github.io/projection/v2.0.0/schema.json"
TRANSFORM = [30.0, 0.0, 4_000_020.0, 0.0, -30.0, 3_000_000.0]
RING = [[5.52, 50.01], [5.53, 50.01], [5.53, 50.02], [5.52, 50.02], [5.52, 50.01]]


def item(item_id: str, asset: dict[str, Any], **properties: Any) -> dict[str, Any]:
    extensions = properties.pop("extensions", [])
    return {
        "type": "Feature",
        "stac_version": "1.1.0",
        "stac_extensions": extensions,
        "id": item_id,
        "collection": "maps",
        "geometry": {"type": "Polygon", "coordinates": [RING]},
        "bbox": [5.52, 50.01, 5.53, 50.02],
        "properties": {"datetime": "2020-06-01T00:00:00Z", **properties},
        "links": [{"rel": "collection", "href": "./collection.json"}],
        "assets": {"data": {"roles": ["data"], **asset}},
    }


COMPLETE = item(
    "complete",
    {"href": "./classes.tif", "type": COG, "bands": [{"data_type": "uint8"}]},
    extensions=[PROJECTION_EXTENSION],
    **{"proj:epsg": 3035, "proj:code": "EPSG:3035", "proj:shape": [16, 24]},
    **{"proj:transform": TRANSFORM},
)
ITEMS = [
    item("bare", {"href": "./classes.tif", "type": COG}),
    item(
        "v2",
        {"href": "./classes.tif", "bands": [{"name": "classes"}]},  # no type: by suffix
        extensions=[V2],
        **{"proj:code": "EPSG:3035"},
    ),
    item("other-crs", {"href": "./classes.tif", "type": COG}, **{"proj:code": "EPSG:32632"}),
    COMPLETE,
    item("on-s3", {"href": "s3://bucket/classes.tif", "type": COG}),
    item("missing", {"href": "./nope.tif", "type": COG}),
    item("netcdf", {"href": "./classes.nc", "type": "application/x-netcdf"}),
]


@pytest.fixture(scope="module")
def upstream(tmp_path_factory) -> Iterator[str]:
    """The catalog and its COG, served over HTTP by a child process."""
    folder = tmp_path_factory.mktemp("upstream")
    profile = {
        "driver": "COG", "width": 24, "height": 16, "count": 1, "dtype": "uint8",
        "crs": "EPSG:3035", "transform": from_origin(4_000_020.0, 3_000_000.0, 30, 30),
        "nodata": 0,
    }  # fmt: skip
    with rasterio.open(folder / "classes.tif", "w", **profile) as dataset:
        dataset.write(np.ones((1, 16, 24), np.uint8))
    links = [{"rel": "item", "href": f"./{entry['id']}.json"} for entry in ITEMS]
    collection = {
        "type": "Collection", "stac_version": "1.1.0", "id": "maps", "description": "Maps",
        "license": "CC-BY-4.0", "links": links,
        "extent": {"spatial": {"bbox": [[5.52, 50.01, 5.53, 50.02]]},
                   "temporal": {"interval": [["2020-01-01T00:00:00Z", None]]}},
    }  # fmt: skip
    (folder / "collection.json").write_text(json.dumps(collection))
    for entry in ITEMS:
        (folder / f"{entry['id']}.json").write_text(json.dumps(entry))
    with serve_files(folder, free_port(), folder.parent / "files.log") as url:
        yield url


def source(url: str, **extra: Any) -> dict[str, Any]:
    return {"id": "maps", "kind": "stac-static", "url": f"{url}/collection.json", **extra}


async def harvested(harvest, catalogue, config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    [outcome] = await harvest(config)
    assert outcome.status is JobStatus.SUCCEEDED, outcome.message
    assert (outcome.counts.new, outcome.counts.failed) == (len(ITEMS), 0)
    return {row.id: row.content for row in await rows(catalogue, "SELECT id, content FROM items")}


async def test_missing_grid_and_data_types_are_read_from_the_files(
    harvest, catalogue, upstream: str
) -> None:
    items = await harvested(harvest, catalogue, source(upstream))
    assert validate_items(list(items.values())) == len(ITEMS)

    bare = items["bare"]
    assert bare["stac_extensions"] == [PROJECTION_EXTENSION]
    asset = bare["assets"]["data"]
    assert (asset["proj:epsg"], asset["proj:code"]) == (3035, "EPSG:3035")
    assert (asset["proj:shape"], asset["proj:transform"]) == ([16, 24], TRANSFORM)
    assert asset["proj:bbox"] == [4_000_020.0, 2_999_520.0, 4_000_740.0, 3_000_000.0]
    assert asset["bands"] == [{"data_type": "uint8", "nodata": 0}]

    v2 = items["v2"]  # projection v2.0.0 stays v2.0.0: no proj:epsg, which it forbids
    assert v2["stac_extensions"] == [V2] and "proj:epsg" not in v2["assets"]["data"]
    assert v2["assets"]["data"]["proj:shape"] == [16, 24]
    assert v2["assets"]["data"]["bands"] == [{"name": "classes", "data_type": "uint8", "nodata": 0}]

    other = items["other-crs"]["assets"]["data"]  # the item's CRS wins; no grid of another
    assert not any(name.startswith("proj:") for name in other)
    assert other["bands"] == [{"data_type": "uint8", "nodata": 0}]

    for untouched in ("on-s3", "missing", "netcdf"):
        assert strip_links(items[untouched]) == strip_links(ITEMS_BY_ID[untouched])
    assert strip_links(items["complete"]) == strip_links(COMPLETE)


async def test_reading_headers_can_be_switched_off(harvest, catalogue, upstream: str) -> None:
    items = await harvested(harvest, catalogue, source(upstream, read_raster_headers=False))
    assert strip_links(items["bare"]) == strip_links(ITEMS_BY_ID["bare"])


ITEMS_BY_ID = {entry["id"]: entry for entry in ITEMS}


def strip_links(document: dict[str, Any]) -> dict[str, Any]:
    stripped = copy.deepcopy(document)
    stripped.pop("links", None)
    stripped["assets"]["data"].pop("href")  # made absolute on harvest
    return stripped


def test_unreadable_files_are_reported_in_the_log(tmp_path: Path) -> None:
    """Pure check of the completion on a path that does not exist: nothing changes."""
    import asyncio

    from ingest.metadata.completion import HeaderReader, complete_item

    document = copy.deepcopy(ITEMS_BY_ID["missing"])
    added = asyncio.run(complete_item(document, str(tmp_path / "x.json"), HeaderReader().read))
    assert added == [] and document == ITEMS_BY_ID["missing"]
