"""Open what you find (issue 6): a cube built into a local root, the API on 127.0.0.1 under
uvicorn serving it under /cubes; pystac-client finds the item, and xr.open_zarr, xpystac
and GDAL open the asset lazily. Requests are counted at the server."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pystac
import pytest
import xarray as xr
from pyproj import CRS
from pystac_client import Client

from api import create_app
from catalogue.repositories.jobs import JobStatus
from tests.cubes import data
from tests.cubes.conftest import build, seed
from tests.cubes.opening import (
    ASGIRequestLog,
    RequestLog,
    chunk_arrays,
    chunk_keys,
    is_metadata,
    metadata_before_first_chunk,
    metadata_keys,
    pixel_series_keys,
)
from tests.helpers import live_server, make_settings

pytestmark = pytest.mark.slow

COLLECTION = "opened"
ROW, COL = 100, 150  # a pixel in chunk (1, 2) of the 64 px tiles


def cube_spec(
    cube_id: str, *inputs: dict[str, Any], zarr_format: int = 2, **fields: Any
) -> dict[str, Any]:
    """Unsharded here (one file per chunk, one GET each); the sharded v3 cube's reads are
    in `test_readers_formats.py`."""
    return {
        "id": cube_id,
        "collection": COLLECTION,
        "grid": data.GRID,
        "inputs": list(inputs),
        "zarr_format": zarr_format,
        **fields,
    }


BIOMASS = {"collection": "cci-biomass", "resampling": "bilinear"}
TYPES = {"collection": "forest-type", "resampling": "mode"}
CUBES = {2: "biomass-types", 3: "biomass-types-v3"}  # Zarr format -> cube id
SPECS = [
    cube_spec(CUBES[2], BIOMASS, TYPES),
    cube_spec(CUBES[3], BIOMASS, TYPES, zarr_format=3, sharding=False),
    cube_spec("doomed", TYPES),
]


@dataclass
class Served:
    base: str
    root: Path
    log: RequestLog


@pytest.fixture(scope="module")
async def cube_root(module_database, compute_pool, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("inputs")
    await seed(module_database, [data.cci_biomass(folder).item, data.forest_type(folder).item])
    root = tmp_path_factory.mktemp("cubes")
    results = await build(module_database, SPECS, root, compute_pool)
    assert all(r.status is JobStatus.SUCCEEDED for r in results), [r.message for r in results]
    return root


@pytest.fixture(scope="module")
def served(module_db_url, cube_root: Path) -> Iterator[Served]:
    log = RequestLog("/cubes/")
    app = create_app(make_settings(module_db_url, cube_root=str(cube_root)))
    app.add_middleware(ASGIRequestLog, log=log)
    with live_server(app) as base:
        yield Served(base, cube_root, log)


def find(served: Served, cube_id: str) -> pystac.Item:
    client = Client.open(served.base)
    bbox = [5.0, 40.0, 15.0, 60.0]  # around the test grid (EPSG:3035 near 10 E, 52 N)
    items = {i.id: i for i in client.search(collections=[COLLECTION], bbox=bbox).items()}
    assert set(items) == {spec["id"] for spec in SPECS}
    return items[cube_id]


def local_store(served: Served, href: str) -> Path:
    return served.root / href.split("/cubes/", 1)[1]


def test_pystac_client_finds_the_cube_with_an_http_href_under_cubes(served: Served) -> None:
    asset = find(served, CUBES[2]).assets["zarr"]
    assert asset.href.startswith(f"{served.base}/cubes/{COLLECTION}/biomass-types/")
    assert asset.href.endswith(".zarr/0") and local_store(served, asset.href).is_dir()
    assert asset.media_type == "application/vnd.zarr"
    assert asset.extra_fields["xarray:storage_options"] == {}
    assert asset.extra_fields["xarray:open_kwargs"]["consolidated"] is True


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_open_zarr_reads_consolidated_metadata_then_only_the_chunks_it_needs(
    served: Served, zarr_format: int
) -> None:
    asset = find(served, CUBES[zarr_format]).assets["zarr"]
    assert asset.extra_fields["xarray:open_kwargs"]["zarr_format"] == zarr_format
    store_path = "/cubes/" + asset.href.split("/cubes/", 1)[1]
    served.log.take()
    cube = xr.open_zarr(asset.href, **asset.extra_fields["xarray:open_kwargs"])
    opening = served.log.take()
    before = metadata_before_first_chunk(opening)
    assert {path.rsplit("/", 1)[1] for _, path in before} == metadata_keys(zarr_format)
    assert len(before) == len(metadata_keys(zarr_format)), opening  # each read once
    # Then the index coordinates (x, y, time), which xarray loads to build its indexes;
    # no data chunk and no other metadata.
    assert set(chunk_arrays(opening[len(before) :], store_path)) == {"x", "y", "time"}, opening
    assert not [path for _, path in opening[len(before) :] if is_metadata(path)], opening

    series = cube["agb"].isel(y=ROW, x=COL).values
    reading = served.log.take()
    expected = pixel_series_keys(cube["agb"], ROW, COL, zarr_format)
    assert sorted(chunk_keys(reading, store_path)) == sorted(expected)
    assert {method for method, _ in opening + reading} == {"GET"}  # no HEADs, no listings
    assert len(reading) == cube.sizes["time"]  # no metadata re-reads, no other chunks

    on_disk = xr.open_zarr(
        local_store(served, asset.href), **asset.extra_fields["xarray:open_kwargs"]
    )
    np.testing.assert_array_equal(series, on_disk["agb"].isel(y=ROW, x=COL).values)
    assert np.isfinite(series).all() and series.shape == (4,)


def test_every_value_over_http_equals_the_store_on_disk(served: Served) -> None:
    asset = find(served, CUBES[2]).assets["zarr"]
    kwargs = asset.extra_fields["xarray:open_kwargs"]
    over_http = xr.open_zarr(asset.href, **kwargs).load()
    on_disk = xr.open_zarr(local_store(served, asset.href), **kwargs).load()
    xr.testing.assert_identical(over_http, on_disk)
    assert set(over_http.data_vars) >= {"agb", "forest_type"}


def test_xpystac_opens_the_asset_as_it_is(served: Served) -> None:
    asset = find(served, CUBES[2]).assets["zarr"]
    through_stac = xr.open_dataset(asset, engine="stac").load()
    on_disk = xr.open_zarr(
        local_store(served, asset.href), **asset.extra_fields["xarray:open_kwargs"]
    )
    xr.testing.assert_identical(through_stac, on_disk.load())


@pytest.mark.skipif(shutil.which("gdalinfo") is None, reason="gdalinfo absent (apt gdal-bin)")
def test_gdal_reads_the_grid_and_crs_over_vsicurl(served: Served) -> None:
    item = find(served, CUBES[2])
    href = item.assets["zarr"].href
    info = gdalinfo(f'ZARR:"/vsicurl/{href}":/forest_type')
    height, width = item.properties["proj:shape"]
    assert info["size"] == [width, height]
    assert CRS.from_wkt(info["coordinateSystem"]["wkt"]).to_epsg() == 3035
    assert info["geoTransform"] == pytest.approx(gdal_transform(item.properties["proj:transform"]))


def gdalinfo(name: str) -> dict[str, Any]:
    """gdalinfo in its own process (GDAL holds the GIL while it waits on HTTP)."""
    config = {"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR", "CPL_VSIL_CURL_USE_HEAD": "NO"}
    args = ["gdalinfo", "-json", "--config", "GDAL_HTTP_MAX_RETRY", "0"]
    for key, value in config.items():
        args += ["--config", key, value]
    done = subprocess.run([*args, name], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def gdal_transform(stac: list[float]) -> list[float]:
    a, b, c, d, e, f = stac[:6]
    return [c, a, b, f, d, e]


def test_a_cube_whose_store_was_removed_answers_404_on_its_asset(served: Served) -> None:
    href = find(served, "doomed").assets["zarr"].href
    assert httpx.get(f"{href}/.zmetadata").status_code == 200
    shutil.rmtree(local_store(served, href))
    for method in ("GET", "HEAD"):
        for key in (".zmetadata", "forest_type/0.0", ""):
            response = httpx.request(method, f"{href}/{key}")
            assert response.status_code == 404, (method, key, response.status_code)
    with pytest.raises(FileNotFoundError):
        xr.open_zarr(href, consolidated=True, zarr_format=2)
    assert find(served, "doomed").assets["zarr"].href == href  # the item itself still answers
