"""The demo world: seeded (the same values every time), in two CRSs, described by a static
STAC catalog whose links and asset hrefs resolve and whose items say what their files are
(grid, CRS, data types), and written only once."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pystac
import pystac.validation
import pytest
import rasterio
import xarray as xr
from pyproj import CRS

from demo.world import ensure_world
from tests.stac_schemas import fresh_schema_caches, offline_schemas


@pytest.fixture(scope="module")
def twins(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    first = ensure_world(tmp_path_factory.mktemp("one") / "world")
    second = ensure_world(tmp_path_factory.mktemp("two") / "world")
    return first.root, second.root


def _values(path: Path) -> dict[str, np.ndarray]:
    if path.suffix == ".tif":
        with rasterio.open(path) as dataset:
            return {"band": dataset.read(1)}
    with xr.open_dataset(path, mask_and_scale=False) as dataset:
        return {name: dataset[name].values for name in dataset.data_vars}


def test_the_same_seed_gives_the_same_values(twins: tuple[Path, Path]) -> None:
    one, two = twins
    files = sorted(p.relative_to(one) for p in one.rglob("*") if p.suffix in (".tif", ".nc"))
    assert len(files) == 7
    for name in files:
        a, b = _values(one / name), _values(two / name)
        assert a.keys() == b.keys()
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=str(name))


def test_inputs_come_in_two_crss(twins: tuple[Path, Path]) -> None:
    root = twins[0]
    with rasterio.open(root / "data" / "forest_type.tif") as forest_type:
        assert forest_type.crs.to_epsg() == 3035 and forest_type.dtypes == ("uint8",)
        assert forest_type.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
    with xr.open_dataset(root / "data" / "forest_age.nc") as forest_age:
        assert forest_age["forest_age"].dims == ("member", "lat", "lon")
        wkt = forest_age["spatial_ref"].attrs["crs_wkt"]
    assert CRS.from_wkt(wkt).to_epsg() == 4326


def test_the_static_catalog_resolves_to_the_files(twins: tuple[Path, Path]) -> None:
    catalog = pystac.Catalog.from_file(str(twins[0] / "stac" / "catalog.json"))
    items = list(catalog.get_items(recursive=True))
    assert sorted(item.id for item in items) == ["forest-age-2020", "forest-type-2020"]
    for item in items:
        href = Path(item.assets["data"].get_absolute_href() or "")
        assert href.is_file(), href


def test_an_existing_world_is_kept_untouched(twins: tuple[Path, Path]) -> None:
    root = twins[0]
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}
    again = ensure_world(root)
    assert not again.created
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()} == before


def test_catalog_items_validate_and_carry_grid_and_data_types(twins: tuple[Path, Path]) -> None:
    # the files as written (pystac would migrate them to projection v2, dropping proj:epsg)
    paths = (twins[0] / "stac").glob("*/*/*.json")
    items = {path.stem: json.loads(path.read_text()) for path in paths}
    with offline_schemas() as log, fresh_schema_caches():
        for document in items.values():
            pystac.validation.validate_dict(document)
    assert not log.refused, log.refused
    forest_type = items["forest-type-2020"]
    properties = forest_type["properties"]
    assert (properties["proj:epsg"], properties["proj:code"]) == (3035, "EPSG:3035")
    assert properties["proj:shape"] == [840, 1000]
    assert properties["proj:transform"][:3] == [50.0, 0.0, 4_279_000.0]
    band = forest_type["assets"]["data"]["bands"][0]
    assert (band["data_type"], band["nodata"]) == ("uint8", 0)
    forest_age = items["forest-age-2020"]["properties"]
    assert (forest_age["proj:epsg"], forest_age["proj:shape"]) == (4326, [268, 485])
    assert forest_age["cube:variables"]["forest_age"]["data_type"] == "float32"


def test_odc_stac_loads_the_forest_types_as_uint8_without_crs_or_resolution(
    twins: tuple[Path, Path],
) -> None:
    import odc.stac

    item = pystac.Item.from_file(
        str(twins[0] / "stac" / "forest-type" / "forest-type-2020" / "forest-type-2020.json")
    )
    loaded = odc.stac.load([item], bands=["data"])
    assert loaded["data"].dtype == np.uint8
    assert loaded.odc.crs.epsg == 3035 and loaded.odc.geobox.resolution.x == 50.0
    with rasterio.open(twins[0] / "data" / "forest_type.tif") as dataset:
        np.testing.assert_array_equal(loaded["data"].isel(time=0).values, dataset.read(1))
