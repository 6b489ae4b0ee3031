"""Harvested GeoTIFF items open in the readers people run, with nothing passed by hand
(issue 13): GDAL 3.6's STACIT driver on a live search URL, stackstac 0.5.1 and odc-stac 0.5.3
on items from pystac-client. Two tiny COG tiles of one uint8 class map are harvested by a
`files` source from the demo's file server (a child process on 127.0.0.1, so that GDAL's
reads in this process are answered) and served by the API under uvicorn on 127.0.0.1."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import odc.stac
import pytest
import rasterio
import stackstac
from pystac_client import Client
from rasterio.transform import from_origin
from sqlalchemy import URL

from api import create_app
from catalogue.extensions import RASTER_EXTENSION
from catalogue.projection import PROJECTION_EXTENSION
from catalogue.repositories.jobs import JobStatus
from demo.files import serve_files
from ingest.config import parse_sources
from ingest.progress import LogProgress
from ingest.runner import run_ingest
from tests.conftest import clone_database
from tests.helpers import free_port, live_server, make_settings
from tests.ingest.conftest import validate_items

pytestmark = pytest.mark.slow

COLLECTION = "forest-classes"
# EPSG:3035; the origin is a multiple of the pixel size, since stackstac snaps its grid so
WEST, NORTH, RES = 4_000_020.0, 3_000_000.0, 30.0
HEIGHT, HALF = 48, 32  # each tile is 48 x 32 px; side by side they make 48 x 64


def classes() -> np.ndarray:
    """Classes 1..4 (no nodata pixel, so every reader returns them as stored)."""
    rows, cols = np.indices((HEIGHT, 2 * HALF))
    return (1 + (rows // 7 + cols // 5) % 4).astype(np.uint8)


def write_tiles(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    whole = classes()
    for index, name in enumerate(("west", "east")):
        profile = {
            "driver": "COG", "width": HALF, "height": HEIGHT, "count": 1, "dtype": "uint8",
            "crs": "EPSG:3035", "nodata": 0,
            "transform": from_origin(WEST + index * HALF * RES, NORTH, RES, RES),
        }  # fmt: skip
        with rasterio.open(folder / f"types_{name}.tif", "w", **profile) as dataset:
            dataset.write(whole[None, :, index * HALF : (index + 1) * HALF])
            dataset.update_tags(TIFFTAG_DATETIME="2020:06:01 00:00:00")


@dataclass
class Served:
    base: str
    items: list[dict[str, Any]]

    @property
    def search(self) -> str:
        return f"{self.base}/search?collections={COLLECTION}"


@pytest.fixture(scope="module")
def harvested_db(server_url: URL, template_url: URL, tmp_path_factory) -> URL:
    return clone_database(server_url, template_url)


@pytest.fixture(scope="module")
def files_url(tmp_path_factory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("tiles")
    write_tiles(folder)
    with serve_files(folder, free_port(), folder.parent / "files.log") as url:
        yield url


@pytest.fixture(scope="module")
async def harvested(harvested_db: URL, files_url: str) -> URL:
    config = {
        "id": "classes", "kind": "files", "url": f"{files_url}/*.tif",
        "collection": {"id": COLLECTION, "title": "Forest classes", "license": "CC-BY-4.0"},
    }  # fmt: skip
    [outcome] = await run_ingest(
        make_settings(harvested_db), parse_sources({"sources": [config]}), LogProgress()
    )
    assert outcome.status is JobStatus.SUCCEEDED and outcome.counts.new == 2, outcome.message
    return harvested_db


@pytest.fixture(scope="module")
def served(harvested: URL) -> Iterator[Served]:
    with live_server(create_app(make_settings(harvested))) as base:
        items = list(Client.open(base).search(collections=[COLLECTION]).items_as_dicts())
        yield Served(base, items)


def test_items_carry_proj_epsg_and_proj_code_under_projection_v1_2(served: Served) -> None:
    assert len(served.items) == 2
    for item in served.items:
        properties = item["properties"]
        assert PROJECTION_EXTENSION in item["stac_extensions"]
        assert (properties["proj:epsg"], properties["proj:code"]) == (3035, "EPSG:3035")
        assert properties["proj:shape"] == [HEIGHT, HALF]
        assert item["assets"]["data"]["bands"][0]["data_type"] == "uint8"
    assert validate_items(served.items, unmirrored=(RASTER_EXTENSION,)) == 2


def gdal(*args: str) -> str:
    result = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_gdal_stacit_mosaics_the_search_with_size_crs_and_values(
    served: Served, tmp_path: Path
) -> None:
    name = f'STACIT:"{served.search}":asset=data'
    info = json.loads(gdal("gdalinfo", "-json", name))
    assert info["size"] == [2 * HALF, HEIGHT]
    assert info["coordinateSystem"]["wkt"].rstrip().endswith('ID["EPSG",3035]]')
    assert info["geoTransform"] == [WEST, RES, 0.0, NORTH, 0.0, -RES]
    assert info["bands"][0]["type"] == "Byte"
    gdal("gdal_translate", "-q", name, str(tmp_path / "mosaic.tif"))
    with rasterio.open(tmp_path / "mosaic.tif") as mosaic:
        np.testing.assert_array_equal(mosaic.read(1), classes())


def test_stackstac_stacks_the_items_without_being_told_the_crs(served: Served) -> None:
    # stackstac 0.5.1 reads only `proj:epsg`; pystac >= 1.12 drops it when it migrates an
    # item to projection v2, so stackstac gets the items as plain dicts
    stack = stackstac.stack(served.items, assets=["data"])
    assert stack.attrs["crs"] == "epsg:3035" and stack.attrs["resolution"] == RES
    assert (stack.sizes["y"], stack.sizes["x"]) == (HEIGHT, 2 * HALF)
    window = stackstac.mosaic(stack).sel(band="data").isel(y=slice(10, 20), x=slice(25, 40))
    np.testing.assert_array_equal(window.values, classes()[10:20, 25:40])  # across both tiles


def test_odc_stac_loads_the_classes_as_uint8_without_crs_or_resolution(served: Served) -> None:
    items = list(Client.open(served.base).search(collections=[COLLECTION]).items())
    loaded = odc.stac.load(items, bands=["data"])
    assert loaded["data"].dtype == np.uint8
    assert loaded.odc.crs.epsg == 3035 and loaded.odc.geobox.resolution.x == RES
    np.testing.assert_array_equal(loaded["data"].isel(time=0).values, classes())
