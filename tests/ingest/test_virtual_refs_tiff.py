"""`virtual_refs` for GeoTIFF/COG files: references to the full-resolution image that open as
rioxarray opens the file (`band_data (band, y, x)`, x/y and `spatial_ref` inline, the TIFF's
nodata as fill value), and TIFFs virtual-tiff cannot express keep their items, named in a
warning."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import xarray as xr
from rasterio.transform import from_origin
from sqlalchemy import URL

from catalogue.repositories.jobs import JobStatus
from tests.ingest.range_server import range_server
from tests.ingest.test_virtual_refs import Harvest, cube_root, harvest_refs, items, source

pytestmark = pytest.mark.slow
__all__ = ["cube_root", "harvest_refs"]  # fixtures, imported for this module's tests

ORIGIN = (4_000_000.0, 3_000_000.0)  # EPSG:3035


def write_tiff(
    path: Path, count: int = 1, nodata: float | None = None, scale: float = 1.0, **extra: Any
) -> Path:
    """A tiled, deflate-compressed GeoTIFF of 300 x 200 pixels in 128-pixel tiles (partial
    edge tiles), with real zeros in every band."""
    path.parent.mkdir(parents=True, exist_ok=True)
    dtype = extra.pop("dtype", "uint16")
    data = (np.arange(count * 300 * 200).reshape(count, 300, 200) % 251).astype(dtype)
    profile: dict[str, Any] = {
        "driver": "GTiff", "width": 200, "height": 300, "count": count, "dtype": dtype,
        "crs": "EPSG:3035", "transform": from_origin(*ORIGIN, 30, 30), "nodata": nodata,
        "tiled": True, "blockxsize": 128, "blockysize": 128, "compress": "deflate",
        "interleave": "band", **extra,
    }  # fmt: skip
    with rasterio.open(path, "w", **profile) as dataset:
        dataset.write(data)
        if scale != 1.0:
            dataset.scales, dataset.offsets = (scale,) * count, (5.0,) * count
        dataset.update_tags(TIFFTAG_DATETIME="2019:06:01 00:00:00")
    return path


def assert_opens_as_rioxarray(href: str, original: Path, **open_kwargs: Any) -> xr.Dataset:
    """The references open as `xr.open_dataset(tif, engine="rasterio")` opens the file:
    identical raw (`mask_and_scale=False`), the same values masked -- rioxarray makes every
    masked read float, nodata or not; the references keep the file's dtype when there is no
    nodata. The references add CF's `grid_mapping` attribute (rioxarray keeps it in
    `encoding`) and leave out GDAL metadata items (TIFFTAG_DATETIME...) and a scale of 1
    and offset of 0."""
    raw = xr.open_dataset(href, engine="kerchunk", mask_and_scale=False, **open_kwargs)
    assert raw["band_data"].attrs.pop("grid_mapping") == "spatial_ref"
    with xr.open_dataset(original, engine="rasterio", mask_and_scale=False) as expected:
        for name, trivial in [("TIFFTAG_DATETIME", None), ("scale_factor", 1), ("add_offset", 0)]:
            if expected["band_data"].attrs.get(name) == trivial or trivial is None:
                expected["band_data"].attrs.pop(name, None)
        xr.testing.assert_identical(raw.load(), expected.load())
        assert raw.rio.crs == expected.rio.crs
        assert raw.rio.transform() == expected.rio.transform()
    opened = xr.open_dataset(href, engine="kerchunk", **open_kwargs)
    with xr.open_dataset(original, engine="rasterio") as expected:
        # float32 (rioxarray) against float64 (xarray's choice for scaled data): 1e-7 apart
        np.testing.assert_allclose(opened["band_data"], expected["band_data"], rtol=1e-6)
    return opened


async def test_a_tiff_without_nodata_opens_as_the_file_with_its_zeros(
    harvest_refs: Harvest, fresh_db_url: URL, cube_root: Path, tmp_path: Path
) -> None:
    original = write_tiff(tmp_path / "files" / "canopy.tif")
    [outcome] = await harvest_refs(source(f"{tmp_path / 'files'}/*.tif"))
    assert outcome.status is JobStatus.SUCCEEDED, outcome.message
    [item] = (await items(fresh_db_url)).values()
    asset = item["assets"]["references"]
    assert asset["href"] == str(cube_root.resolve() / "refs" / "biomass" / "canopy.json")
    assert asset["xarray:open_kwargs"] == {"engine": "kerchunk"}
    opened = assert_opens_as_rioxarray(asset["href"], original)
    assert opened["band_data"].dims == ("band", "y", "x")
    assert opened.rio.crs.to_epsg() == 3035
    assert float(opened["band_data"].min()) == 0.0  # a zero is data, not masked
    assert opened["band_data"].dtype == np.uint16  # no nodata: nothing to mask
    refs = json.loads(Path(asset["href"]).read_text())["refs"]
    assert json.loads(refs["band_data/.zarray"])["fill_value"] is None


async def test_nodata_is_the_fill_value_and_bands_share_the_band_axis(
    harvest_refs: Harvest, fresh_db_url: URL, tmp_path: Path
) -> None:
    original = write_tiff(tmp_path / "files" / "bands.tif", count=3, nodata=7)
    [outcome] = await harvest_refs(source(f"{tmp_path / 'files'}/*.tif"))
    assert outcome.status is JobStatus.SUCCEEDED, outcome.message
    [item] = (await items(fresh_db_url)).values()
    href = item["assets"]["references"]["href"]
    opened = assert_opens_as_rioxarray(href, original)
    assert opened["band"].values.tolist() == [1, 2, 3]
    assert int(opened["band_data"].isnull().sum()) > 0  # nodata masked, as rioxarray does


async def test_a_float_tiff_with_nan_nodata(
    harvest_refs: Harvest, fresh_db_url: URL, tmp_path: Path
) -> None:
    original = write_tiff(tmp_path / "files" / "agb.tif", nodata=float("nan"), dtype="float32")
    [outcome] = await harvest_refs(source(f"{tmp_path / 'files'}/*.tif"))
    assert outcome.status is JobStatus.SUCCEEDED, outcome.message
    [item] = (await items(fresh_db_url)).values()
    assert_opens_as_rioxarray(item["assets"]["references"]["href"], original)


async def test_gdal_scale_and_offset_are_applied_as_rioxarray_applies_them(
    harvest_refs: Harvest, fresh_db_url: URL, tmp_path: Path
) -> None:
    original = write_tiff(tmp_path / "files" / "scaled.tif", count=2, nodata=0, scale=0.01)
    [outcome] = await harvest_refs(source(f"{tmp_path / 'files'}/*.tif"))
    assert outcome.status is JobStatus.SUCCEEDED, outcome.message
    [item] = (await items(fresh_db_url)).values()
    opened = assert_opens_as_rioxarray(item["assets"]["references"]["href"], original)
    assert float(opened["band_data"].max()) == pytest.approx(5 + 250 * 0.01)


async def test_an_http_tiff_gets_references_to_its_url(
    harvest_refs: Harvest, fresh_db_url: URL, tmp_path: Path
) -> None:
    original = write_tiff(tmp_path / "served" / "canopy.tif", nodata=0)
    with range_server(tmp_path / "served") as base:
        [outcome] = await harvest_refs(source(f"{base}/*.tif"))
        assert outcome.status is JobStatus.SUCCEEDED, outcome.message
        [item] = (await items(fresh_db_url)).values()
        href = item["assets"]["references"]["href"]
        assert f'"{base}/canopy.tif"' in Path(href).read_text()
        assert_opens_as_rioxarray(href, original)


async def test_tiffs_virtual_tiff_cannot_express_keep_their_items_and_are_named(
    harvest_refs: Harvest,
    fresh_db_url: URL,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Pixel-interleaved bands (Zarr 2 has no transpose codec), strips that do not divide
    the height, JPEG: each item is kept without references; the good file gets its own."""
    folder = tmp_path / "files"
    write_tiff(folder / "good.tif")
    write_tiff(folder / "interleaved.tif", count=3, interleave="pixel")
    write_tiff(folder / "striped.tif", tiled=False, blockysize=128)
    write_tiff(folder / "photo.tif", dtype="uint8", compress="jpeg")
    with caplog.at_level(logging.WARNING, logger="ingest.sources.files"):
        [outcome] = await harvest_refs(source(f"{folder}/*.tif"))
    assert outcome.status is JobStatus.SUCCEEDED, outcome.message
    stored = await items(fresh_db_url)
    assert sorted(stored) == ["good", "interleaved", "photo", "striped"]
    assert [key for key, item in stored.items() if "references" in item["assets"]] == ["good"]
    warned = " ".join(record.getMessage() for record in caplog.records)
    for name, reason in [
        ("interleaved", "transpose"),
        ("striped", "rows per strip"),
        ("photo", "JPEG"),
    ]:
        assert f"{folder}/{name}.tif: no virtual references: virtual-tiff cannot" in warned
        assert reason in warned
