"""`virtual_refs`: a `files` source writes Kerchunk references for its NetCDF-4 files under
the cube root and adds a `references` asset that opens the file as Zarr."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import xarray as xr
from pydantic import ValidationError
from sqlalchemy import URL

from catalogue.extensions import XARRAY_EXTENSION
from catalogue.repositories.jobs import JobStatus
from ingest.config import parse_sources
from ingest.progress import LogProgress
from ingest.report import SourceOutcome
from ingest.runner import run_ingest
from tests.helpers import make_settings
from tests.ingest.conftest import rows, validate_items
from tests.ingest.range_server import range_server
from tests.ingest.test_files import cube

pytestmark = pytest.mark.slow
Harvest = Callable[..., Coroutine[Any, Any, list[SourceOutcome]]]
STRIPED = {  # 300 rows in strips of 128: virtual-tiff needs strips that divide the height
    "driver": "GTiff", "width": 20, "height": 300, "count": 1, "dtype": "uint8",
    "crs": "EPSG:3035", "transform": (30, 0, 4e6, 0, -30, 3e6), "blockysize": 128,
}  # fmt: skip


@pytest.fixture
def cube_root(tmp_path: Path) -> Path:
    return tmp_path / "cubes"


@pytest.fixture
def harvest_refs(fresh_db_url: URL, cube_root: Path) -> Harvest:
    """Run sources as `cubestac ingest` does, with CUBESTAC_CUBE_ROOT set."""

    async def run(*sources: dict[str, Any]) -> list[SourceOutcome]:
        configs = parse_sources({"sources": list(sources)})
        settings = make_settings(fresh_db_url, cube_root=str(cube_root))
        return await run_ingest(settings, configs, LogProgress())

    return run


def make_netcdf(folder: Path) -> Path:
    """A compressed, chunked NetCDF-4 file with a CF grid mapping and a time axis."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "biomass.nc"
    dataset = cube(["2010-01-01", "2011-01-01"])
    # in `encoding`, not to_netcdf's argument, which would drop rioxarray's `grid_mapping`
    dataset["agb"].encoding.update(zlib=True, chunksizes=(1, 8, 8), _FillValue=np.float32(-1))
    dataset.to_netcdf(path, engine="netcdf4")
    return path


def source(url: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": "refs",
        "kind": "files",
        "url": url,
        "collection": {"id": "biomass", "license": "CC-BY-4.0"},
        "virtual_refs": True,
        "retry_wait_s": 0.05,
        **extra,
    }


def assert_same(opened: xr.Dataset, original: Path) -> None:
    with xr.open_dataset(original) as expected:
        xr.testing.assert_identical(opened.load(), expected.load())


async def items(fresh_db_url: URL) -> dict[str, dict[str, Any]]:
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(fresh_db_url)
    try:
        found = await rows(engine, "SELECT id, content FROM items")
    finally:
        await engine.dispose()
    return {row.id: row.content for row in found}


async def test_netcdf_items_get_references_that_open_as_the_file(
    harvest_refs: Harvest, fresh_db_url: URL, cube_root: Path, tmp_path: Path
) -> None:
    original = make_netcdf(tmp_path / "files")
    [outcome] = await harvest_refs(source(f"{tmp_path / 'files'}/*.nc"))
    assert outcome.status is JobStatus.SUCCEEDED, outcome.message
    [item] = (await items(fresh_db_url)).values()
    asset = item["assets"]["references"]
    refs_path = cube_root.resolve() / "refs" / "biomass" / "biomass.json"
    assert asset == {
        "href": str(refs_path),
        "type": "application/json",
        "roles": ["index", "references"],
        "title": "Virtual Zarr (Kerchunk references)",
        "description": asset["description"],
        "xarray:open_kwargs": {"engine": "kerchunk"},
    }
    assert item["assets"]["data"]["href"] == str(original)  # the data asset stays
    assert XARRAY_EXTENSION in item["stac_extensions"]
    assert validate_items([item]) == 1
    opened = xr.open_dataset(asset["href"], **asset["xarray:open_kwargs"])
    assert_same(opened, original)


async def test_an_unchanged_rerun_does_not_rewrite_references(
    harvest_refs: Harvest, cube_root: Path, tmp_path: Path
) -> None:
    make_netcdf(tmp_path / "files")
    config = source(f"{tmp_path / 'files'}/*.nc")
    await harvest_refs(config)
    refs_path = cube_root / "refs" / "biomass" / "biomass.json"
    before = refs_path.stat()
    [outcome] = await harvest_refs(config)
    assert outcome.counts.unchanged == 1
    after = refs_path.stat()
    assert (after.st_mtime_ns, after.st_ino) == (before.st_mtime_ns, before.st_ino)


async def test_an_http_source_gets_references_to_its_urls(
    harvest_refs: Harvest, fresh_db_url: URL, tmp_path: Path
) -> None:
    original = make_netcdf(tmp_path / "served")
    with range_server(tmp_path / "served") as base:
        [outcome] = await harvest_refs(source(f"{base}/*.nc"))
        assert outcome.status is JobStatus.SUCCEEDED, outcome.message
        [item] = (await items(fresh_db_url)).values()
        refs = Path(item["assets"]["references"]["href"]).read_text()
        assert f'"{base}/biomass.nc"' in refs  # chunks are read from the server
        assert_same(
            xr.open_dataset(item["assets"]["references"]["href"], engine="kerchunk"), original
        )


async def test_files_that_cannot_be_referenced_keep_their_items_and_are_named(
    harvest_refs: Harvest,
    fresh_db_url: URL,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    folder = tmp_path / "files"
    folder.mkdir()
    with rasterio.open(folder / "canopy_2019.tif", "w", **STRIPED) as dataset:
        dataset.write(np.zeros((1, 300, 20), dtype="uint8"))
    cube(["2012-01-01"]).to_netcdf(folder / "classic.nc", format="NETCDF3_CLASSIC")
    config = source(f"{folder}/*", datetime_pattern=r"_(?P<year>\d{4})\.")
    with caplog.at_level(logging.WARNING, logger="ingest.sources.files"):
        [outcome] = await harvest_refs(config)
    assert outcome.status is JobStatus.SUCCEEDED, outcome.message
    assert outcome.counts.new == 2
    stored = await items(fresh_db_url)
    assert all("references" not in item["assets"] for item in stored.values())
    warned = " ".join(record.getMessage() for record in caplog.records)
    assert f"{folder}/canopy_2019.tif: no virtual references: virtual-tiff" in warned
    assert f"{folder}/classic.nc: no virtual references: NetCDF-3" in warned


async def test_without_a_cube_root_the_source_fails_and_says_what_to_set(
    fresh_db_url: URL, tmp_path: Path
) -> None:
    make_netcdf(tmp_path / "files")
    configs = parse_sources({"sources": [source(f"{tmp_path / 'files'}/*.nc")]})
    [outcome] = await run_ingest(make_settings(fresh_db_url), configs, LogProgress())
    assert outcome.status is JobStatus.FAILED
    assert "virtual_refs" in (outcome.message or "")
    assert "CUBESTAC_CUBE_ROOT" in (outcome.message or "")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("yes", "sources.0.files.virtual_refs"),
        ({"root": "https://example.org/refs"}, "unsupported URL scheme 'https'"),
        ({"format": "parquet"}, "virtual_refs.format"),
    ],
)
def test_a_bad_option_is_refused_with_its_path(value: Any, message: str) -> None:
    with pytest.raises(ValidationError) as raised:
        parse_sources({"sources": [source("/data/*.nc", virtual_refs=value)]})
    assert message in str(raised.value)


def test_sources_without_the_option_keep_their_digest() -> None:
    """Adding the option must not make every stored source read everything again."""
    [plain] = parse_sources({"sources": [source("/data/*.nc", virtual_refs=False)]})
    dumped = plain.model_dump(mode="json")
    assert dumped["virtual_refs"] is None
    [with_refs] = parse_sources({"sources": [source("/data/*.nc")]})
    assert plain.content_hash(2) != with_refs.content_hash(2)
    import hashlib

    import orjson

    from ingest.config import OPERATIONAL_FIELDS

    before = {k: v for k, v in dumped.items() if k not in OPERATIONAL_FIELDS | {"virtual_refs"}}
    before["harvester_version"] = 2
    digest = hashlib.sha256(orjson.dumps(before, option=orjson.OPT_SORT_KEYS)).hexdigest()
    assert plain.content_hash(2) == digest
