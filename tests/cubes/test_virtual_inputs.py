"""NetCDF inputs with a `references` asset (what `virtual_refs` harvests) are read through
their Kerchunk references, and the cube is the one the files themselves give; GeoTIFF inputs
are read from the file, references or not."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import xarray as xr
from pyproj import CRS

from catalogue.repositories.items import get_item
from catalogue.repositories.jobs import JobStatus
from cubes.errors import InputError
from cubes.inputs import open_item
from cubes.spec import InputSpec
from ingest.metadata.references import (
    HDF5_SIGNATURE,
    file_references,
    reference_asset,
    write_references,
)
from tests.cubes import data
from tests.cubes.conftest import build, seed

pytestmark = pytest.mark.slow
INPUTS = {"cci-biomass": ("agb", "bilinear"), "disturbance": ("annual_disturbances", "nearest")}


def with_references(source: data.Source, folder: Path, collection: str) -> dict[str, Any]:
    """The source's item in `collection`, with references to its file; its data asset names
    a file that is not there, so only a read through the references can succeed."""
    refs_path = folder / f"{collection}.json"
    write_references(file_references(str(source.path), HDF5_SIGNATURE, {}), str(refs_path))
    item = copy.deepcopy(source.item)
    item["collection"] = collection
    item["assets"]["data"]["href"] = str(folder / "moved-away.nc")
    item["assets"]["references"] = reference_asset(str(refs_path), str(source.path), {})
    return item


def cube_spec(cube_id: str, suffix: str) -> dict[str, Any]:
    return {
        "id": cube_id,
        "collection": "cubes",
        "grid": data.GRID,
        "inputs": [
            {"collection": f"{name}{suffix}", "variables": [variable], "resampling": how}
            for name, (variable, how) in INPUTS.items()
        ],
    }


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, data.Source]:
    folder = tmp_path_factory.mktemp("inputs")
    return {"cci-biomass": data.cci_biomass(folder), "disturbance": data.disturbance(folder)}


async def test_a_cube_built_through_references_equals_the_one_built_from_the_files(
    module_database, sources, compute_pool, tmp_path_factory
) -> None:
    refs = tmp_path_factory.mktemp("refs")
    virtual = [with_references(s, refs, f"{name}-virtual") for name, s in sources.items()]
    await seed(module_database, [s.item for s in sources.values()] + virtual)
    root = tmp_path_factory.mktemp("cubes")
    specs = [cube_spec("from-files", ""), cube_spec("from-refs", "-virtual")]
    results = await build(module_database, specs, root, compute_pool)
    assert [r.status for r in results] == [JobStatus.SUCCEEDED] * 2, [r.message for r in results]
    async with module_database.read() as conn:
        hrefs = [
            (await get_item(conn, "cubes", cube_id))["assets"]["zarr"]["href"]
            for cube_id in ("from-files", "from-refs")
        ]
    files, through_refs = (xr.open_zarr(h, mask_and_scale=False).load() for h in hrefs)
    assert set(files.data_vars) == {"agb", "annual_disturbances"}
    files.attrs, through_refs.attrs = {}, {}  # title and build time differ, as they should
    # the same CRS, though its WKT may be spelled by either PROJ on the machine (pyproj's or
    # rasterio's: "ETRS89 ensemble" or "ETRS89" datum, seen in CI), so compared as a CRS
    assert CRS.from_wkt(files.spatial_ref.attrs["crs_wkt"]) == CRS.from_wkt(
        through_refs.spatial_ref.attrs["crs_wkt"]
    )
    xr.testing.assert_identical(without_wkt(files), without_wkt(through_refs))


def without_wkt(cube: xr.Dataset) -> xr.Dataset:
    """The cube with its CRS spelled as an EPSG code only."""
    cube = cube.copy()
    for name in [*cube.data_vars, "spatial_ref"]:
        attrs = cube[name].attrs
        for key in ("spatial_ref", "crs_wkt", "_CRS", "horizontal_datum_name"):
            attrs.pop(key, None)
    return cube


def test_missing_references_are_an_input_error_naming_them(sources, tmp_path: Path) -> None:
    item = with_references(sources["cci-biomass"], tmp_path, "cci-virtual")
    Path(item["assets"]["references"]["href"]).unlink()
    with pytest.raises(InputError) as raised:
        open_item(item, InputSpec(collection="cci-virtual"), "cube", "input 1 (cci-virtual)")
    assert str(tmp_path / "cci-virtual.json") in str(raised.value)


def test_a_geotiff_input_is_read_from_its_file_not_its_references(tmp_path: Path) -> None:
    """rioxarray reads the TIFF (band names from descriptions or the asset's `bands`, any
    compression GDAL has); the references, here pointing at nothing, are not used."""
    source = data.biomass(tmp_path)
    item = copy.deepcopy(source.item)
    item["assets"]["references"] = reference_asset(str(tmp_path / "gone.json"), "x.tif", {})
    opened = open_item(item, InputSpec(collection="biomass"), "cube", "input 1 (biomass)")
    plain = open_item(source.item, InputSpec(collection="biomass"), "cube", "input 1 (biomass)")
    xr.testing.assert_identical(opened.dataset, plain.dataset)
    assert len(opened.dataset.data_vars) > 1  # one variable per band, named as the file says
