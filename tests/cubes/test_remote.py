"""Inputs over HTTP and S3, cube root on S3: moto's S3 server on 127.0.0.1 stands in for
the bucket and for a plain HTTP file server (DESIGN.md: real servers on loopback)."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import fsspec
import numpy as np
import pytest
import xarray as xr

from catalogue.cube_layout import store_url
from catalogue.repositories.items import get_item
from catalogue.repositories.jobs import JobStatus
from tests.cubes import data
from tests.cubes.conftest import build, seed
from tests.cubes.oracle import gdal_warp, sample_pixels
from tests.helpers import free_port

pytestmark = pytest.mark.slow


@pytest.fixture
def s3(monkeypatch) -> Iterator[str]:
    """moto's S3 server in its own process, credentials in the environment as boto, s3fs
    and GDAL read them. Its own process because GDAL holds the GIL while it opens a file
    over HTTP: a server thread in this process could never answer."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    endpoint = f"http://127.0.0.1:{port}"
    try:
        _wait_for(endpoint)
        for name, value in {
            "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint,
        }.items():  # fmt: skip
            monkeypatch.setenv(name, value)
        for name in ("AWS_S3_ENDPOINT", "AWS_HTTPS", "AWS_VIRTUAL_HOSTING", "AWS_ENDPOINT_URL_S3"):
            monkeypatch.delenv(name, raising=False)  # set by the run; removed afterwards
        yield endpoint
    finally:
        server.terminate()
        server.wait(timeout=10)


def _wait_for(endpoint: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(endpoint, timeout=1)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def upload(fs: fsspec.AbstractFileSystem, local: Path, key: str) -> None:
    fs.put(str(local), key, recursive=local.is_dir())


async def test_inputs_over_http_and_s3_into_a_cube_on_s3(
    database, compute_pool, tmp_path, s3
) -> None:
    fs = fsspec.filesystem("s3", endpoint_url=s3)
    fs.mkdir("inputs")
    fs.mkdir("cubes")
    forest_type = data.forest_type(tmp_path)
    biomass = data.biomass(tmp_path)
    cci = data.cci_biomass(tmp_path)
    age = data.forest_age(tmp_path)
    for source in (forest_type, biomass, cci, age):
        upload(fs, source.path, f"inputs/{source.path.name}")
    fs.chmod("inputs/forest_type.tif", acl="public-read")  # read over plain HTTP
    forest_type.item["assets"]["forest_type"]["href"] = f"{s3}/inputs/forest_type.tif"
    biomass.item["assets"]["data"]["href"] = "s3://inputs/biomass.tif"  # GDAL /vsis3/
    cci.item["assets"]["data"]["href"] = "s3://inputs/cci_biomass.nc"  # h5netcdf on s3fs
    age.item["assets"]["data"]["href"] = "s3://inputs/forest_age.zarr"  # zarr on s3fs
    await seed(database, [forest_type.item, biomass.item, cci.item, age.item])
    spec = {
        "id": "remote",
        "collection": "scs2",
        "grid": {**data.GRID, "tile_size": 256},  # few objects: moto answers slowly
        "grace_period": 0,
        "inputs": [
            {"collection": "forest-type", "resampling": "mode"},
            {"collection": "biomass", "resampling": "bilinear", "variables": ["canopy_height"]},
            {"collection": "cci-biomass", "resampling": "bilinear"},
            {"collection": "forest-age", "resampling": "nearest"},
        ],
    }
    [first] = await build(database, [spec], "s3://cubes/root", compute_pool)
    [second] = await build(database, [spec], "s3://cubes/root", compute_pool)
    assert first.status is second.status is JobStatus.SUCCEEDED, first.message + second.message
    async with database.read() as conn:
        item = await get_item(conn, "scs2", "remote")
    asset = item["assets"]["zarr"]
    assert asset["href"] == second.href and asset["href"].startswith("s3://cubes/root/scs2/remote/")
    assert asset["xarray:storage_options"] == {
        "endpoint_url": s3,
        "anon": False,
        "max_concurrency": 1,
    }

    cube = xr.open_zarr(
        asset["href"], storage_options=asset["xarray:storage_options"], mask_and_scale=False
    )
    expected = gdal_warp(forest_type.arrays["forest_type"], forest_type, "mode")
    rows, cols = sample_pixels()
    np.testing.assert_array_equal(cube["forest_type"].values[rows, cols], expected[rows, cols])
    height = gdal_warp(biomass.arrays["canopy_height"], biomass, "bilinear")
    got = cube["canopy_height"].values
    np.testing.assert_allclose(got[rows, cols], height[rows, cols], atol=1e-4)
    assert cube["agb"].sizes["time"] == 4 and cube["forest_age"].dims == ("member", "y", "x")
    versions = fs.ls("cubes/root/scs2/remote")
    assert [v.rsplit("/", 1)[-1] for v in versions] == [store_url(asset["href"]).rsplit("/", 1)[-1]]
