"""Space, time and CRS of a dataset (`catalogue.dataset_grid`), on the union of the cases the
files harvester and the cube builder each handled before they shared one reading: cftime
calendars, CF `axis` and `standard_name` attributes, lat/lon and latitude/longitude names,
x/y, projected and geographic grids. Every case is written to NetCDF and read back, so the
attributes are the ones a real file decodes to; both readers must then agree with it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cftime
import fsspec
import numpy as np
import pytest
import rioxarray  # noqa: F401 - .rio accessor for writing the grid mapping
import xarray as xr

from catalogue.dataset_grid import file_crs, is_lat_lon, spatial_dims, time_dim
from cubes.errors import InputError
from cubes.inputs import open_item
from cubes.spec import InputSpec
from ingest.metadata.datacube import CubeMetadataError, read_netcdf

XS = [4.0e6 + 30 * i for i in range(4)]
YS = [3.0e6 - 30 * i for i in range(3)]
LONS = [5.0, 5.1, 5.2, 5.3]
LATS = [50.0, 49.9, 49.8]
DAYS = np.array(["2020-01-01", "2020-02-01"], dtype="datetime64[ns]")
NOLEAP = [cftime.DatetimeNoLeap(2020, 1, 1), cftime.DatetimeNoLeap(2020, 2, 1)]
DEGREES_NORTH = {"units": "degrees_north"}
DEGREES_EAST = {"units": "degrees_east"}


@dataclass(frozen=True)
class Case:
    """A dataset and what must be read from it (crs None: none can be found)."""

    dims: tuple[str, ...]
    coords: dict[str, Any]
    y: str
    x: str
    time: str | None = None
    crs: int | None = None
    write_crs: str | None = None


def _dataset(case: Case) -> xr.Dataset:
    shape = tuple(len(np.asarray(case.coords[d][1])) for d in case.dims)
    dataset = xr.Dataset(
        {"v": (case.dims, np.ones(shape, np.float32))},
        coords=case.coords,
    )
    if case.write_crs is not None:
        dataset = dataset.rio.write_crs(case.write_crs)
    return dataset


CASES = {
    "x/y projected, grid mapping": Case(
        ("y", "x"), {"y": ("y", YS), "x": ("x", XS)}, "y", "x", crs=3035, write_crs="EPSG:3035"
    ),
    "X/Y upper case": Case(
        ("Y", "X"), {"Y": ("Y", YS), "X": ("X", XS)}, "Y", "X", crs=3035, write_crs="EPSG:3035"
    ),
    "lat/lon without grid mapping": Case(
        ("lat", "lon"), {"lat": ("lat", LATS), "lon": ("lon", LONS)}, "lat", "lon", crs=4326
    ),
    "latitude/longitude, CF units": Case(
        ("latitude", "longitude"),
        {
            "latitude": ("latitude", LATS, DEGREES_NORTH),
            "longitude": ("longitude", LONS, DEGREES_EAST),
        },
        "latitude",
        "longitude",
        crs=4326,
    ),
    "CF axis X/Y on other names, degrees_north": Case(
        ("row", "col"),
        {
            "row": ("row", LATS, {"axis": "Y", **DEGREES_NORTH}),
            "col": ("col", LONS, {"axis": "X", **DEGREES_EAST}),
        },
        "row",
        "col",
        crs=4326,
    ),
    "CF projection_x/y_coordinate standard names": Case(
        ("northing", "easting"),
        {
            "northing": ("northing", YS, {"standard_name": "projection_y_coordinate"}),
            "easting": ("easting", XS, {"standard_name": "projection_x_coordinate"}),
        },
        "northing",
        "easting",
        crs=32632,
        write_crs="EPSG:32632",
    ),
    "datetime64 time": Case(
        ("time", "y", "x"),
        {"time": ("time", DAYS), "y": ("y", YS), "x": ("x", XS)},
        "y",
        "x",
        time="time",
        crs=3035,
        write_crs="EPSG:3035",
    ),
    "cftime noleap calendar under another name": Case(
        ("t", "lat", "lon"),
        {"t": ("t", NOLEAP), "lat": ("lat", LATS), "lon": ("lon", LONS)},
        "lat",
        "lon",
        time="t",
        crs=4326,
    ),
    "projected without any CRS": Case(
        ("y", "x"), {"y": ("y", YS), "x": ("x", XS)}, "y", "x", crs=None
    ),
}


@pytest.fixture(params=list(CASES), ids=list(CASES))
def written(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Case, Path]:
    case = CASES[request.param]
    path = tmp_path / "case.nc"
    _dataset(case).to_netcdf(path)
    return case, path


def test_the_shared_reading_finds_space_time_and_crs(written: tuple[Case, Path]) -> None:
    case, path = written
    with xr.open_dataset(path, decode_coords="all") as dataset:
        dims = spatial_dims(dataset)
        assert dims is not None and (dims.y, dims.x) == (case.y, case.x)
        assert time_dim(dataset) == case.time
        found = file_crs(dataset)
        geographic = is_lat_lon(dataset, dims)
    if case.crs is None:
        assert found is None and not geographic
    elif found is None:
        assert geographic and case.crs == 4326
    else:
        from pyproj import CRS

        assert CRS.from_user_input(found).to_epsg() == case.crs


def test_ingest_and_cubes_read_a_file_alike(written: tuple[Case, Path]) -> None:
    """The files harvester's description and the cube builder's opening agree."""
    case, path = written
    item = _item(path)
    if case.crs is None:
        with pytest.raises(CubeMetadataError, match="no coordinate reference system"):
            read_netcdf(fsspec.filesystem("file"), str(path), True)
        with pytest.raises(InputError, match="has no CRS"):
            open_item(item, InputSpec(collection="c"), "cube", "in")
        return
    info = read_netcdf(fsspec.filesystem("file"), str(path), True)
    opened = open_item(item, InputSpec(collection="c"), "cube", "in")
    dimensions = info.dimensions
    assert dimensions[case.x]["type"] == "spatial" and dimensions[case.y]["type"] == "spatial"
    assert info.projection["proj:code"] == f"EPSG:{case.crs}" and opened.crs.epsg == case.crs
    assert opened.dataset["v"].dims[-2:] == ("y", "x")
    assert (info.time_range is not None) == (case.time is not None)
    assert ("time" in opened.dataset["v"].dims) == (case.time is not None)
    if case.time is not None:
        assert dimensions[case.time]["type"] == "temporal"
        assert info.time_range == (
            datetime(2020, 1, 1, tzinfo=UTC),
            datetime(2020, 2, 1, tzinfo=UTC),
        )


def test_a_dataset_without_spatial_dimensions_is_refused_alike(tmp_path: Path) -> None:
    path = tmp_path / "flat.nc"
    xr.Dataset({"v": (("station",), np.ones(3, np.float32))}).to_netcdf(path)
    with xr.open_dataset(path) as dataset:
        assert spatial_dims(dataset) is None
    with pytest.raises(CubeMetadataError, match="no spatial dimensions .* among: station"):
        read_netcdf(fsspec.filesystem("file"), str(path), True)
    with pytest.raises(InputError, match="has no spatial dimensions"):
        open_item(_item(path), InputSpec(collection="c"), "cube", "in")


def _item(path: Path) -> dict[str, Any]:
    geometry = {"type": "Polygon", "coordinates": [[[0, 40], [20, 40], [20, 60], [0, 60], [0, 40]]]}
    return {
        "type": "Feature",
        "stac_version": "1.1.0",
        "id": "n",
        "collection": "c",
        "geometry": geometry,
        "bbox": [0, 40, 20, 60],
        "properties": {"datetime": "2020-01-01T00:00:00Z"},
        "assets": {"data": {"href": str(path), "type": "application/x-netcdf", "roles": ["data"]}},
        "links": [],
    }
