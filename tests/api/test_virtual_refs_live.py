"""Harvested NetCDF files opened through their references, served by the API on 127.0.0.1:
pystac-client finds the item, and xpystac and `xr.open_dataset(href, engine="kerchunk")`
open the file lazily as Zarr, with the values the file itself gives."""

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
from tests.ingest.test_virtual_refs import make_netcdf, source

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
    """A NetCDF file harvested with `virtual_refs: true` from a local folder or from a
    range-capable HTTP server, and the API serving the catalogue and the cube root."""
    original = make_netcdf(tmp_path / "files")
    settings = make_settings(fresh_db_url, cube_root=str(tmp_path / "cubes"))
    served: list[str] = []
    with range_server(tmp_path / "files", served) as files:
        url = f"{files}/*.nc" if request.param == "http" else f"{tmp_path / 'files'}/*.nc"
        configs = parse_sources({"sources": [source(url)]})
        [outcome] = await run_ingest(settings, configs, LogProgress())
        assert outcome.status is JobStatus.SUCCEEDED, outcome.message
        served.clear()
        with live_server(create_app(settings)) as api:
            yield Served(api, original, served, request.param == "http")


def references_asset(harvested: Served) -> pystac.Asset:
    [item] = Client.open(harvested.api).search(collections=["biomass"]).items()
    return item.assets["references"]


def assert_lazy_then_equal(opened: xr.Dataset, harvested: Served) -> None:
    """Opening reads the references only (coordinates are inline); values come with
    `load`, as byte ranges of the file, and equal what the file gives."""
    assert not [path for path in harvested.served if path.endswith(".nc")]
    with xr.open_dataset(harvested.original) as expected:
        xr.testing.assert_identical(opened.load(), expected.load())
    if harvested.remote:
        assert set(harvested.served) == {"/biomass.nc"}  # chunk reads, over HTTP


def test_the_references_asset_is_an_http_url_under_cubes(harvested: Served) -> None:
    asset = references_asset(harvested)
    assert asset.href == f"{harvested.api}/cubes/refs/biomass/biomass.json"
    assert asset.media_type == "application/json"
    assert asset.roles == ["index", "references"]


def test_xpystac_opens_the_asset(harvested: Served) -> None:
    opened = xpystac.core.to_xarray(references_asset(harvested))
    assert_lazy_then_equal(opened, harvested)


def test_xarray_stac_engine_opens_the_asset(harvested: Served) -> None:
    opened = xr.open_dataset(references_asset(harvested), engine="stac")
    assert_lazy_then_equal(opened, harvested)


def test_xarray_kerchunk_engine_opens_the_url(harvested: Served) -> None:
    asset = references_asset(harvested)
    opened = xr.open_dataset(asset.href, **asset.extra_fields["xarray:open_kwargs"])
    assert_lazy_then_equal(opened, harvested)


def test_rioxarray_finds_the_grid_of_the_opened_references(harvested: Served) -> None:
    """rioxarray's accessor on the dataset the references open: the file's CRS and
    transform, from the grid mapping stored inline in the references."""
    asset = references_asset(harvested)
    opened = xr.open_dataset(asset.href, engine="kerchunk", decode_coords="all")
    with xr.open_dataset(harvested.original, decode_coords="all") as expected:
        assert opened["agb"].rio.crs == expected["agb"].rio.crs
        assert opened["agb"].rio.crs.to_epsg() == 3035
        assert opened.rio.transform() == expected.rio.transform()


def test_gdal_and_rasterio_do_not_open_references(harvested: Served) -> None:
    """GDAL reads Kerchunk JSON from 3.11 on; Debian 12's GDAL 3.6 (gdalinfo) and the GDAL
    3.10 in rasterio's wheel (rioxarray.open_rasterio) refuse the asset: they open the
    `data` asset (the NetCDF file) instead. This test fails when they learn it."""
    href = references_asset(harvested).href
    with pytest.raises(rasterio.errors.RasterioIOError, match="not recognized"):
        rioxarray.open_rasterio(href)
    if shutil.which("gdalinfo") is None:
        pytest.skip("no gdalinfo")
    for name in (f"/vsicurl/{href}", f'ZARR:"/vsicurl/{href}"'):
        ran = subprocess.run(["gdalinfo", name], capture_output=True, text=True, timeout=60)
        assert ran.returncode != 0, (name, ran.stdout)
