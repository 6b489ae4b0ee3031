"""A harvested GeoTIFF opened through its references, served by the API on 127.0.0.1:
xpystac, `xr.open_dataset(asset, engine="stac")` and `engine="kerchunk"` open it lazily,
equal to rioxarray's read of the file, and rioxarray's `.rio` finds its CRS and transform;
GDAL 3.6 and rasterio's GDAL refuse the references."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pystac
import pytest
import rasterio.errors
import rioxarray
import xarray as xr
import xpystac.core
from pystac_client import Client
from sqlalchemy import URL

from api import create_app
from catalogue.repositories.jobs import JobStatus
from ingest.config import parse_sources
from ingest.progress import LogProgress
from ingest.runner import run_ingest
from tests.helpers import live_server, make_settings
from tests.ingest.range_server import range_server
from tests.ingest.test_virtual_refs import source
from tests.ingest.test_virtual_refs_tiff import write_tiff

pytestmark = pytest.mark.slow


@dataclass
class Served:
    api: str
    original: Path
    served: list[str]  # what the file server was asked for (nothing for local files)
    remote: bool


@pytest.fixture(params=["local", "http"])
async def harvested(
    request: pytest.FixtureRequest, fresh_db_url: URL, tmp_path: Path
) -> Iterator[Served]:
    """A 2-band GeoTIFF with nodata harvested with `virtual_refs: true` from a local folder
    or a range-capable HTTP server, and the API serving the catalogue and the cube root."""
    original = write_tiff(tmp_path / "files" / "canopy.tif", count=2, nodata=7)
    settings = make_settings(fresh_db_url, cube_root=str(tmp_path / "cubes"))
    served: list[str] = []
    with range_server(tmp_path / "files", served) as files:
        url = f"{files}/*.tif" if request.param == "http" else f"{tmp_path / 'files'}/*.tif"
        [outcome] = await run_ingest(
            settings, parse_sources({"sources": [source(url)]}), LogProgress()
        )
        assert outcome.status is JobStatus.SUCCEEDED, outcome.message
        served.clear()
        with live_server(create_app(settings)) as api:
            yield Served(api, original, served, request.param == "http")


def references_asset(harvested: Served) -> pystac.Asset:
    [item] = Client.open(harvested.api).search(collections=["biomass"]).items()
    asset = item.assets["references"]
    assert asset.href == f"{harvested.api}/cubes/refs/biomass/canopy.json"
    return asset


def assert_lazy_then_equal(opened: xr.Dataset, harvested: Served) -> None:
    """Opening reads the references only; values come with `load`, as byte ranges of the
    file, and equal rioxarray's read (its `xr.open_dataset(engine="rasterio")`: nodata
    masked, float32); the grid comes from the inline `spatial_ref`."""
    assert not [path for path in harvested.served if path.endswith(".tif")]
    assert opened["band_data"].dims == ("band", "y", "x")
    with xr.open_dataset(harvested.original, engine="rasterio") as expected:
        expected["band_data"].attrs.pop("TIFFTAG_DATETIME")
        opened["band_data"].attrs.pop("grid_mapping")
        xr.testing.assert_identical(opened.load(), expected.load())
        assert opened.rio.crs == expected.rio.crs
        assert opened.rio.transform() == expected.rio.transform()
    if harvested.remote:
        assert set(harvested.served) == {"/canopy.tif"}  # chunk reads, over HTTP


def test_xpystac_opens_the_asset(harvested: Served) -> None:
    assert_lazy_then_equal(xpystac.core.to_xarray(references_asset(harvested)), harvested)


def test_xarray_stac_engine_opens_the_asset(harvested: Served) -> None:
    opened = xr.open_dataset(references_asset(harvested), engine="stac")
    assert_lazy_then_equal(opened, harvested)


def test_xarray_kerchunk_engine_opens_the_url(harvested: Served) -> None:
    asset = references_asset(harvested)
    opened = xr.open_dataset(asset.href, **asset.extra_fields["xarray:open_kwargs"])
    assert_lazy_then_equal(opened, harvested)


def test_gdal_and_rasterio_do_not_open_references(harvested: Served) -> None:
    """As for NetCDF: Debian 12's GDAL 3.6 (gdalinfo) and the GDAL 3.10 in rasterio's wheel
    (rioxarray.open_rasterio) refuse Kerchunk JSON; they open the `data` asset, the TIFF
    itself. This test fails when they learn it."""
    href = references_asset(harvested).href
    with pytest.raises(rasterio.errors.RasterioIOError, match="not recognized"):
        rioxarray.open_rasterio(href)
    if shutil.which("gdalinfo") is None:
        pytest.skip("no gdalinfo")
    for name in (f"/vsicurl/{href}", f'ZARR:"/vsicurl/{href}"'):
        ran = subprocess.run(["gdalinfo", name], capture_output=True, text=True, timeout=60)
        assert ran.returncode != 0, (name, ran.stdout)
