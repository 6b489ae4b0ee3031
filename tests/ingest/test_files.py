"""`files`: GeoTIFF (COG), NetCDF and Zarr that the tests generate, on moto's S3 server,
in a local folder and behind an HTTP directory listing."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import pytest
import rasterio
import rioxarray  # noqa: F401 - .rio accessor for writing the grid mapping
import xarray as xr
from moto.server import ThreadedMotoServer
from rasterio.transform import from_origin

from catalogue.extensions import RASTER_EXTENSION
from catalogue.repositories.jobs import JobStatus
from tests.helpers import free_port
from tests.ingest.catalogs import file_server
from tests.ingest.conftest import rows, scalar, validate_items

pytestmark = pytest.mark.slow
ORIGIN = (4_000_000.0, 3_000_000.0)  # EPSG:3035, central Europe


def write_geotiff(path: Path, stamp: str | None, value: int = 7) -> None:
    data = (np.arange(64 * 64, dtype="uint16").reshape(1, 64, 64) % 250) + value
    profile = {
        "driver": "COG", "width": 64, "height": 64, "count": 1, "dtype": "uint16",
        "crs": "EPSG:3035", "transform": from_origin(*ORIGIN, 30, 30), "nodata": 0,
    }  # fmt: skip
    with rasterio.open(path, "w", **profile) as dataset:
        dataset.write(data)
        if stamp:
            dataset.update_tags(TIFFTAG_DATETIME=stamp)


def cube(times: list[str]) -> xr.Dataset:
    shape = (len(times), 16, 16)
    dataset = xr.Dataset(
        {"agb": (("time", "y", "x"), np.random.default_rng(1).random(shape).astype("float32"))},
        coords={
            "time": np.array(times, dtype="datetime64[ns]"),
            "y": ORIGIN[1] - 100.0 * np.arange(16) - 50,
            "x": ORIGIN[0] + 100.0 * np.arange(16) + 50,
        },
    )
    dataset["agb"].attrs = {"units": "Mg/ha", "long_name": "above-ground biomass"}
    dataset["agb"].encoding["_FillValue"] = np.float32("nan")
    return dataset.rio.write_crs("EPSG:3035")


def make_files(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    write_geotiff(folder / "canopy_2019.tif", None)
    write_geotiff(folder / "forest_type.tif", "2020:05:01 00:00:00")
    cube(["2010-01-01", "2011-01-01", "2012-01-01"]).to_netcdf(folder / "biomass.nc")
    cube(["2018-06-01"]).to_zarr(folder / "age.zarr", zarr_format=2, consolidated=True)
    (folder / "broken.tif").write_bytes(b"II*\x00 this is not a tiff")


@pytest.fixture(scope="module")
def s3() -> Iterator[dict[str, Any]]:
    """moto's S3 in server mode on 127.0.0.1; yields the fsspec storage options."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    options = {
        "endpoint_url": f"http://127.0.0.1:{server._server.server_port}",  # noqa: SLF001
        "key": "testing",
        "secret": "testing",
    }
    previous = os.environ.get("AWS_DEFAULT_REGION")
    os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
    try:
        yield options
    finally:
        server.stop()
        if previous is None:
            os.environ.pop("AWS_DEFAULT_REGION", None)


@pytest.fixture
def bucket(s3: dict[str, Any], tmp_path: Path) -> str:
    """A new bucket holding the generated files; returns its s3:// folder URL."""
    filesystem = fsspec.filesystem("s3", skip_instance_cache=True, **s3)
    name = f"forest-{tmp_path.name.lower().replace('_', '-')[-40:]}"
    filesystem.mkdir(name)
    make_files(tmp_path / "files")
    filesystem.put(str(tmp_path / "files") + "/", f"{name}/data/", recursive=True)
    return f"s3://{name}/data"


def source(url: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": "forest-files",
        "kind": "files",
        "url": url,
        "collection": {"id": "forest", "title": "Forest layers", "license": "CC-BY-4.0"},
        "datetime_pattern": r"_(?P<year>\d{4})\.",
        "retry_wait_s": 0.05,
        **extra,
    }


async def test_s3_files_become_valid_items_then_an_unchanged_rerun_reads_nothing(
    harvest, catalogue, bucket: str, s3: dict[str, Any]
) -> None:
    config = source(f"{bucket}/*", storage_options=s3)
    [first] = await harvest(config)
    [second] = await harvest(config)
    assert first.status is JobStatus.SUCCEEDED, first.message
    assert (first.counts.new, first.counts.failed) == (4, 1)
    assert first.problems[0].url == f"{bucket}/broken.tif"
    assert "cannot be read as geotiff" in first.problems[0].reason
    assert (second.counts.new, second.counts.changed, second.counts.unchanged) == (0, 0, 4)
    items = {row.id: row.content for row in await rows(catalogue, "SELECT id, content FROM items")}
    assert set(items) == {"canopy_2019", "forest_type", "biomass", "age"}
    assert validate_items(list(items.values()), unmirrored=(RASTER_EXTENSION,)) == 4

    canopy = items["canopy_2019"]
    assert canopy["properties"]["start_datetime"] == "2019-01-01T00:00:00Z"  # the pattern
    assert canopy["properties"]["proj:code"] == "EPSG:3035"  # projection v1.2.0: both
    assert canopy["properties"]["proj:epsg"] == 3035
    assert canopy["properties"]["proj:shape"] == [64, 64]
    band = canopy["assets"]["data"]["bands"][0]
    assert band["data_type"] == "uint16" and band["nodata"] == 0
    assert band["statistics"]["minimum"] >= 7 and band["raster:sampling"] == "area"
    assert canopy["assets"]["data"]["type"].endswith("profile=cloud-optimized")
    assert items["forest_type"]["properties"]["datetime"] == "2020-05-01T00:00:00Z"  # TIFF tag

    biomass = items["biomass"]["properties"]
    assert (biomass["start_datetime"], biomass["end_datetime"]) == (
        "2010-01-01T00:00:00Z",
        "2012-01-01T00:00:00Z",
    )
    assert biomass["cube:dimensions"]["x"]["reference_system"] == 3035
    assert (biomass["proj:epsg"], biomass["proj:code"]) == (3035, "EPSG:3035")
    assert biomass["cube:variables"]["agb"] == {
        "type": "data",
        "dimensions": ["time", "y", "x"],
        "unit": "Mg/ha",
        "description": "above-ground biomass",
        "shape": [3, 16, 16],
        "data_type": "float32",
        "nodata": "nan",
    }
    zarr = items["age"]["assets"]["data"]
    assert zarr["type"] == "application/vnd.zarr" and zarr["href"] == f"{bucket}/age.zarr"
    assert (zarr["zarr:zarr_format"], zarr["zarr:consolidated"]) == (2, True)
    assert zarr["xarray:storage_options"] == {"endpoint_url": s3["endpoint_url"]}
    opened = xr.open_zarr(
        zarr["href"],
        storage_options={**s3, **zarr["xarray:storage_options"]},
        **zarr["xarray:open_kwargs"],
    )
    assert opened["agb"].shape == (1, 16, 16)

    collection = await scalar(catalogue, "SELECT content FROM collections WHERE id = 'forest'")
    west, south, east, north = collection["extent"]["spatial"]["bbox"][0]
    assert 5 < west < east < 6 and 49 < south < north < 51  # LAEA x=4000 km is ~5.5 E
    assert collection["extent"]["temporal"]["interval"] == [
        ["2010-01-01T00:00:00Z", "2020-05-01T00:00:00Z"]
    ]


async def test_a_changed_file_is_read_again(harvest, catalogue, tmp_path: Path) -> None:
    folder = tmp_path / "local"
    make_files(folder)
    config = source(f"{folder}/*.tif")
    await harvest(config)
    write_geotiff(folder / "canopy_2019.tif", None, value=100)
    [outcome] = await harvest(config)
    assert (outcome.counts.changed, outcome.counts.unchanged) == (1, 1)
    stats = await scalar(
        catalogue,
        "SELECT content->'assets'->'data'->'bands'->0->'statistics' FROM items WHERE id = :id",
        id="canopy_2019",
    )
    assert stats["minimum"] >= 100


async def test_an_http_directory_listing_is_globbed(harvest, catalogue, tmp_path: Path) -> None:
    make_files(tmp_path / "served")
    with file_server(tmp_path / "served") as base:
        [outcome] = await harvest(source(f"{base}/*.nc"))
    assert outcome.status is JobStatus.SUCCEEDED, outcome.message
    assert outcome.counts.new == 1
    href = await scalar(catalogue, "SELECT content->'assets'->'data'->>'href' FROM items")
    assert href == f"{base}/biomass.nc"


async def test_a_glob_that_matches_nothing_fails_the_source(harvest, tmp_path: Path) -> None:
    [outcome] = await harvest(source(f"{tmp_path}/nothing-here/*.tif"))
    assert outcome.status is JobStatus.FAILED
    assert "matches no files" in (outcome.message or "")
