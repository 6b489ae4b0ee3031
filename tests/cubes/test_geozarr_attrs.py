"""GeoZarr attributes of a cube store (issue 18) as GDAL 3.13 reads them: the `proj:` CRS
in exactly one field, and `multiscales` scales with a factor per axis of the arrays."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from pyproj import CRS

from catalogue.cube_layout import Level, levels_from_attrs, multiscales_attrs
from cubes.pyramid import proj_attrs, shared_dims

LEVELS = [
    Level("0", 1.0, (160, 200), (30.0, 0.0, 0.0, 0.0, -30.0, 0.0)),
    Level("1", 2.0, (80, 100), (60.0, 0.0, 0.0, 0.0, -60.0, 0.0), "average"),
]


def test_an_epsg_crs_is_stated_by_its_code_only() -> None:
    assert proj_attrs(CRS.from_epsg(3035)) == {"proj:code": "EPSG:3035"}


def test_a_crs_without_epsg_code_is_stated_as_wkt2_only() -> None:
    crs = CRS.from_proj4("+proj=laea +lat_0=52 +lon_0=11 +x_0=0 +y_0=0 +ellps=GRS80 +units=m")
    attrs = proj_attrs(crs)
    assert list(attrs) == ["proj:wkt2"] and CRS.from_wkt(attrs["proj:wkt2"]) == crs


def test_shared_dimensions_give_a_scale_factor_per_dimension_from_level_0() -> None:
    layout = multiscales_attrs(LEVELS, "average", ("time", "y", "x"))["multiscales"]["layout"]
    assert [entry["transform"]["scale"] for entry in layout] == [[1.0, 1.0, 1.0], [1.0, 2.0, 2.0]]
    assert [entry.get("derived_from") for entry in layout] == [None, "0"]
    assert [level.scale for level in levels_from_attrs({"multiscales": {"layout": layout}})] == [
        1.0,
        2.0,
    ]


def test_without_shared_dimensions_scales_cover_y_and_x_and_name_no_source() -> None:
    """GDAL 3.13 then takes a level for every array whose y/x sizes match its shape."""
    layout = multiscales_attrs(LEVELS, "average")["multiscales"]["layout"]
    assert layout[1]["transform"]["scale"] == [2.0, 2.0]
    assert not [entry for entry in layout if "derived_from" in entry]
    assert levels_from_attrs({"multiscales": {"layout": layout}})[1].scale == 2.0


@pytest.mark.parametrize(
    ("dims", "shared"),
    [
        ([("time", "y", "x"), ("time", "y", "x")], ("time", "y", "x")),
        ([("time", "y", "x"), ("y", "x")], None),  # a static layer beside a series
        ([("time", "member", "y", "x")], ("time", "member", "y", "x")),
        ([("time", "y", "x"), ()], ("time", "y", "x")),  # the grid mapping is not gridded
    ],
)
def test_shared_dims(dims: list[tuple[str, ...]], shared: tuple[str, ...] | None) -> None:
    dataset = xr.Dataset(
        {f"v{i}": (d, np.zeros((1,) * len(d), np.float32)) for i, d in enumerate(dims)}
    )
    assert shared_dims(dataset) == shared
