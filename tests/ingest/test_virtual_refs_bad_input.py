"""`virtual_refs` with files it cannot reference: a corrupt NetCDF, a file that vanishes
between discovery and referencing, a damaged file whose metadata still reads, plain HDF5.
Each is reported naming the file; the other files of the source keep their references."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import xarray as xr
from sqlalchemy import URL

from catalogue.repositories.jobs import JobStatus
from ingest.metadata.datacube import CubeInfo
from ingest.sources import files
from tests.ingest.test_virtual_refs import (
    Harvest,
    cube_root,
    harvest_refs,
    items,
    make_netcdf,
    source,
)

pytestmark = pytest.mark.slow
__all__ = ["cube_root", "harvest_refs"]  # fixtures, imported for this module's tests


def folder_with_good_file(tmp_path: Path) -> Path:
    folder = tmp_path / "files"
    make_netcdf(folder)  # biomass.nc, referenced in every test
    return folder


async def test_a_corrupt_netcdf_is_a_problem_naming_it(
    harvest_refs: Harvest, fresh_db_url: URL, cube_root: Path, tmp_path: Path
) -> None:
    folder = folder_with_good_file(tmp_path)
    body = (folder / "biomass.nc").read_bytes()
    (folder / "truncated.nc").write_bytes(body[: len(body) // 2])
    [outcome] = await harvest_refs(source(f"{folder}/*.nc"))
    assert outcome.status is JobStatus.SUCCEEDED, outcome.message
    assert [(p.url, "cannot be read as netcdf" in p.reason) for p in outcome.problems] == [
        (str(folder / "truncated.nc"), True)
    ]
    stored = await items(fresh_db_url)
    assert set(stored) == {"biomass"}
    assert "references" in stored["biomass"]["assets"]
    assert sorted(p.name for p in (cube_root / "refs" / "biomass").iterdir()) == ["biomass.json"]


async def test_a_file_that_vanishes_before_referencing_is_a_problem_not_an_item(
    harvest_refs: Harvest,
    fresh_db_url: URL,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder = folder_with_good_file(tmp_path)
    make_netcdf(tmp_path / "other").rename(folder / "gone.nc")
    read_netcdf = files.read_netcdf

    def read_then_vanish(filesystem: Any, path: str, local: bool) -> CubeInfo:
        info = read_netcdf(filesystem, path, local)
        if path.endswith("gone.nc"):
            Path(path).unlink()  # after discovery and the metadata read, before referencing
        return info

    monkeypatch.setattr(files, "read_netcdf", read_then_vanish)
    [outcome] = await harvest_refs(source(f"{folder}/*.nc"))
    assert outcome.status is JobStatus.SUCCEEDED, outcome.message
    [problem] = outcome.problems
    assert problem.url == str(folder / "gone.nc")
    assert "vanished after it was listed" in problem.reason
    assert set(await items(fresh_db_url)) == {"biomass"}  # no item pointing at nothing


def damage_chunk_index(path: Path) -> None:
    """Break the signature of the file's one chunk B-tree (HDF5 v1 B-tree, node type 1):
    superblock, groups and attributes stay intact, so the metadata still reads."""
    body = bytearray(path.read_bytes())
    assert body.count(b"TREE\x01") == 1
    at = body.index(b"TREE\x01")
    body[at : at + 4] = b"XXXX"
    path.write_bytes(bytes(body))


async def test_a_file_whose_metadata_reads_but_not_its_chunk_index_keeps_its_item(
    harvest_refs: Harvest,
    fresh_db_url: URL,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """h5py's RuntimeError on a damaged B-tree is a verdict on the file: the item is
    harvested (its metadata is fine) without references, and the warning names the file."""
    folder = folder_with_good_file(tmp_path)
    damaged = make_netcdf(tmp_path / "other").rename(folder / "damaged.nc")
    damage_chunk_index(damaged)
    with caplog.at_level(logging.WARNING, logger="ingest.sources.files"):
        [outcome] = await harvest_refs(source(f"{folder}/*.nc"))
    assert outcome.status is JobStatus.SUCCEEDED, outcome.message
    assert outcome.problems == []
    stored = await items(fresh_db_url)
    assert "references" not in stored["damaged"]["assets"]
    assert "references" in stored["biomass"]["assets"]
    warned = " ".join(record.getMessage() for record in caplog.records)
    assert f"{damaged}: no virtual references: VirtualiZarr cannot reference it: " in warned
    assert "B-tree" in warned


async def test_a_plain_hdf5_file_with_a_grid_gets_references(
    harvest_refs: Harvest, fresh_db_url: URL, tmp_path: Path
) -> None:
    """HDF5 written by h5py (dimension scales, a CF grid mapping, no NetCDF-4 markers):
    `.h5` is harvested and referenced as NetCDF-4 is, and opens through its references as
    the file does."""
    folder = tmp_path / "files"
    folder.mkdir()
    with xr.open_dataset(make_netcdf(tmp_path / "nc"), decode_coords="all") as dataset:
        x, y = dataset["x"].values, dataset["y"].values
        values = dataset["agb"].values[0]
        wkt = dataset["spatial_ref"].attrs["crs_wkt"]
    with h5py.File(folder / "grid_2019.h5", "w") as h5:
        for name, axis in (("x", x), ("y", y)):
            h5[name] = axis
            h5[name].make_scale(name)
        data = h5.create_dataset("agb", data=values, chunks=(8, 8), compression="gzip")
        data.dims[0].attach_scale(h5["y"])
        data.dims[1].attach_scale(h5["x"])
        h5["spatial_ref"] = np.int64(0)  # a CF grid mapping, as GDAL and rioxarray write
        h5["spatial_ref"].attrs["crs_wkt"] = wkt
        data.attrs["grid_mapping"] = "spatial_ref"
    config = source(f"{folder}/*.h5", datetime_pattern=r"_(?P<year>\d{4})\.")
    [outcome] = await harvest_refs(config)
    assert outcome.status is JobStatus.SUCCEEDED, outcome.message
    assert outcome.problems == []
    [item] = (await items(fresh_db_url)).values()
    asset = item["assets"]["references"]
    with xr.open_dataset(folder / "grid_2019.h5") as expected:
        opened = xr.open_dataset(asset["href"], **asset["xarray:open_kwargs"])
        xr.testing.assert_identical(opened.load(), expected.load())
    np.testing.assert_array_equal(opened["agb"].values, values)


async def test_a_plain_hdf5_file_without_a_grid_is_a_problem_naming_it(
    harvest_refs: Harvest, tmp_path: Path
) -> None:
    folder = tmp_path / "files"
    folder.mkdir()
    with h5py.File(folder / "table.h5", "w") as h5:
        h5.create_dataset("counts", data=np.arange(64, dtype="f4").reshape(8, 8), chunks=(4, 4))
    [outcome] = await harvest_refs(source(f"{folder}/*.h5"))
    [problem] = outcome.problems
    assert problem.url == str(folder / "table.h5")
    assert "cannot be read as netcdf" in problem.reason
