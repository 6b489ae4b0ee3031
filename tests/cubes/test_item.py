"""The published item: valid STAC (core, datacube, projection, zarr, xarray-assets), fields as
DESIGN.md describes them, and an asset that opens with no other knowledge."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pystac
import pytest
import xarray as xr
from pyproj import Transformer
from pystac import STACObjectType
from shapely.geometry import Point, shape
from sqlalchemy import func, select

from catalogue.filters import filter_clause, parse_filter
from catalogue.models import ItemRow
from catalogue.repositories.collections import get_collection
from catalogue.repositories.items import get_item
from catalogue.repositories.jobs import JobStatus
from catalogue.serializers import row_to_collection, row_to_item
from catalogue.web_map_links import WEB_MAP_LINKS_EXTENSION
from tests.cubes import data
from tests.cubes.conftest import build, seed
from tests.cubes.stac import EXTENSIONS, ITEM_SCHEMA, validate

items = ItemRow.__table__


def item_cube() -> dict[str, Any]:
    return {
        "id": "stac-cube",
        "collection": "cubes",
        "title": "A cube",
        "description": "Biomass, ensemble and forest types on one grid",
        "grid": data.GRID,
        "time": {"period": "1Y", "method": "mean"},
        "inputs": [
            {"collection": "cci-biomass", "resampling": "bilinear"},
            {"collection": "forest-age", "resampling": "nearest"},
            {"collection": "forest-type", "resampling": "mode"},
        ],
    }


@pytest.fixture(scope="module")
async def published(module_database, compute_pool, tmp_path_factory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("inputs")
    sources = [data.cci_biomass(folder), data.forest_age(folder), data.forest_type(folder)]
    await seed(module_database, [source.item for source in sources])
    root = tmp_path_factory.mktemp("cubes")
    [result] = await build(module_database, [item_cube()], root, compute_pool)
    assert result.status is JobStatus.SUCCEEDED, result.message
    async with module_database.read() as conn:
        item = await get_item(conn, "cubes", "stac-cube")
        collection = await get_collection(conn, "cubes")
    return {"item": item, "collection": collection}


@pytest.fixture(scope="module")
def item(published) -> dict[str, Any]:
    return published["item"]


def served(item: dict[str, Any]) -> dict[str, Any]:
    """The item as the API returns it: structural links are added at response time."""
    return row_to_item(copy.deepcopy(item), "http://testserver/")


def test_item_is_valid_stac_with_its_four_extensions(item) -> None:
    assert sorted(item["stac_extensions"]) == sorted(EXTENSIONS)
    validated = validate(served(item))
    # served, a cube item also declares the web-map-links of its map tiles
    assert set(validated) == {ITEM_SCHEMA, *EXTENSIONS, WEB_MAP_LINKS_EXTENSION}


def test_an_invalid_datacube_field_is_caught_by_the_same_validation(item) -> None:
    broken = served(item)
    broken["properties"] = {**broken["properties"]}
    broken["properties"]["cube:variables"] = {"agb": {"dimensions": "time"}}
    with pytest.raises(pystac.errors.STACValidationError):
        validate(broken)


def test_spatial_dimensions(item) -> None:
    dims = item["properties"]["cube:dimensions"]
    half = data.RES / 2
    assert dims["x"] == {
        "type": "spatial", "axis": "x", "reference_system": 3035, "step": 30.0,
        "extent": [data.WEST + half, data.BBOX[2] - half],
        "description": "x coordinate of projection",
    }  # fmt: skip
    assert dims["y"]["extent"] == [data.BBOX[1] + half, data.NORTH - half]
    assert dims["y"]["step"] == -30.0 and dims["y"]["axis"] == "y"


def test_temporal_dimension_of_a_yearly_aggregate_has_a_step(item) -> None:
    time = item["properties"]["cube:dimensions"]["time"]
    assert time["type"] == "temporal" and time["step"] == "P1Y"
    assert time["extent"] == ["2007-01-01T00:00:00Z", "2016-01-01T00:00:00Z"]
    properties = item["properties"]
    assert properties["datetime"] is None
    assert properties["start_datetime"] == "2007-01-01T00:00:00Z"
    assert properties["end_datetime"] == "2016-12-31T23:59:59Z"


def test_an_unreduced_ensemble_is_an_additional_dimension(item) -> None:
    member = item["properties"]["cube:dimensions"]["member"]
    assert member == {"type": "other", "values": [1, 2, 3, 4, 5], "extent": [1, 5]}


def test_variables_carry_type_unit_nodata_and_data_type(item) -> None:
    variables = item["properties"]["cube:variables"]
    assert set(variables) == {"agb", "forest_age", "forest_type"}
    assert variables["agb"] == {
        "dimensions": ["time", "y", "x"], "type": "data", "data_type": "float32",
        "description": "above-ground biomass", "unit": "Mg/ha", "nodata": "nan",
    }  # fmt: skip
    assert variables["forest_age"]["dimensions"] == ["member", "y", "x"]
    assert variables["forest_type"]["data_type"] == "uint8"
    assert variables["forest_type"]["nodata"] == 0


def test_projection_fields(item) -> None:
    properties = item["properties"]
    assert properties["proj:code"] == "EPSG:3035"
    assert properties["proj:shape"] == [data.HEIGHT, data.WIDTH]
    assert properties["proj:transform"] == [30.0, 0.0, data.WEST, 0.0, -30.0, data.NORTH]
    assert properties["proj:bbox"] == data.BBOX


def test_geometry_covers_the_grid_in_wgs84(item) -> None:
    footprint = shape(item["geometry"])
    to_wgs84 = Transformer.from_crs("EPSG:3035", "EPSG:4326", always_xy=True)
    west, south, east, north = data.BBOX
    for x, y in [(west, south), (west, north), (east, north), (east, south)]:
        assert footprint.buffer(1e-9).contains(Point(*to_wgs84.transform(x, y)))
    assert item["bbox"] == pytest.approx(list(footprint.bounds))


def test_zarr_asset_fields(item) -> None:
    asset = item["assets"]["zarr"]
    assert asset["type"] == "application/vnd.zarr" and asset["roles"] == ["data"]
    assert (asset["zarr:consolidated"], asset["zarr:zarr_format"], asset["zarr:node_type"]) == (
        True, 2, "group",
    )  # fmt: skip
    assert asset["xarray:open_kwargs"] == {
        "consolidated": True,
        "zarr_format": 2,
        "chunks": {},
        "mask_and_scale": {"forest_type": False},  # the classes (mode); agb, age decoded
    }
    assert asset["xarray:storage_options"] == {}
    assert asset["href"].startswith("/") and "://" not in asset["href"]


def test_xr_open_zarr_with_the_open_kwargs_alone(item) -> None:
    asset = item["assets"]["zarr"]
    cube = xr.open_zarr(asset["href"], **asset["xarray:open_kwargs"])
    assert set(cube.data_vars) == {"agb", "forest_age", "forest_type"}
    assert cube["agb"].chunks is not None  # lazy, chunked as stored


@pytest.mark.parametrize("reader", ["open_zarr", "xpystac"])
def test_open_kwargs_keep_classes_integers_and_mask_continuous_nodata(item, reader) -> None:
    asset = item["assets"]["zarr"]
    if reader == "open_zarr":
        cube = xr.open_zarr(asset["href"], **asset["xarray:open_kwargs"])
    else:
        cube = xr.open_dataset(pystac.Item.from_dict(item).assets["zarr"], engine="stac")
    stored = xr.open_zarr(asset["href"], mask_and_scale=False, consolidated=True)
    assert cube["forest_type"].dtype == np.uint8  # not float32 with NaN
    np.testing.assert_array_equal(cube["forest_type"].values, stored["forest_type"].values)
    assert cube["agb"].dtype.kind == "f" and np.isnan(cube["agb"].values).any()
    assert "_FillValue" not in cube["agb"].attrs  # decoded: nodata became NaN
    assert xr.open_zarr(asset["href"], consolidated=True)["forest_type"].dtype == np.float32


def test_xpystac_opens_the_asset(item) -> None:
    asset = pystac.Item.from_dict(item).assets["zarr"]
    cube = xr.open_dataset(asset, engine="stac")
    assert cube.sizes["y"] == data.HEIGHT and cube.sizes["x"] == data.WIDTH
    assert np.isfinite(cube["agb"].isel(time=0).values).any()


def test_collection_created_with_extent_and_summaries(published, item) -> None:
    collection = published["collection"]
    validate(row_to_collection(copy.deepcopy(collection), "http://testserver/"),
             STACObjectType.COLLECTION)  # fmt: skip
    assert collection["extent"]["spatial"]["bbox"] == [item["bbox"]]
    assert collection["extent"]["temporal"]["interval"] == [
        ["2007-01-01T00:00:00Z", "2016-12-31T23:59:59Z"]
    ]
    assert collection["summaries"] == {"proj:code": ["EPSG:3035"]}


def test_a_geographic_grid_with_a_time_axis_gives_a_valid_item(tmp_path) -> None:
    """No catalogue needed: build lazily, describe, validate (EPSG:4326 grid, time values)."""
    from catalogue.cube_layout import Level
    from cubes.build import build_cube
    from cubes.cf import cf_dataset
    from cubes.grid import target_geobox
    from cubes.pyramid import Pyramid
    from cubes.resolve import ResolvedInput
    from cubes.spec import CubeSpec
    from cubes.to_item import cube_item

    source = data.cci_biomass(tmp_path)
    spec = CubeSpec.model_validate({
        "id": "geo", "collection": "c",
        "grid": {"crs": "EPSG:4326", "bbox": [5.52, 50.03, 5.59, 50.06], "resolution": 0.001,
                 "tile_size": 32},
        "inputs": [{"collection": "cci-biomass", "resampling": "bilinear"}],
    })  # fmt: skip
    geobox = target_geobox(spec.grid, spec.id)
    built = build_cube(spec, [ResolvedInput(0, spec.inputs[0], [source.item])], geobox, None)
    dataset = cf_dataset(built, spec, geobox)
    assert dataset["x"].attrs["standard_name"] == "longitude"
    pyramid = Pyramid([Level("0")], None)
    item = cube_item(dataset, built, spec, geobox, "/cubes/c/geo/v.zarr", {}, pyramid)
    validate(served(item))
    dims = item["properties"]["cube:dimensions"]
    assert dims["x"]["reference_system"] == 4326 and dims["y"]["step"] == pytest.approx(-0.001)
    assert dims["time"]["values"] == [f"{t:%Y-%m-%dT%H:%M:%SZ}" for t in source.times]
    assert item["properties"]["proj:code"] == "EPSG:4326"


def test_categorical_variables_are_integer_classes_by_mode_or_cf_flags() -> None:
    from cubes.build import BuiltCube, Layer
    from cubes.to_item import categorical_variables

    def layer(dtype: str, resampling: str, **attrs: Any) -> tuple[xr.DataArray, Layer]:
        array = xr.DataArray(np.zeros((2, 2), dtype), dims=("y", "x"), attrs=attrs)
        return array, Layer(array, 0, "input", resampling)

    cases = {
        "types": layer("uint8", "mode"),
        "flags": layer("uint8", "nearest", flag_values=[0, 1]),
        "height_cm": layer("uint16", "bilinear"),  # continuous integers: masked
        "counts": layer("int16", "nearest"),  # no flags, not mode: masked
        "mean_types": layer("float32", "mode"),  # already float: nothing to keep
    }
    dataset = xr.Dataset({name: array for name, (array, _) in cases.items()})
    built = BuiltCube(layers={name: built for name, (_, built) in cases.items()})
    assert categorical_variables(dataset, built) == ["flags", "types"]


async def test_the_built_item_is_found_by_its_cube_properties(module_database, item) -> None:
    """What a user filters on (README "Finding cubes") read from the item the builder
    published: its variables, units, dimensions, time step and x resolution."""
    text = (
        "A_CONTAINS(cube:variable_names, ('agb', 'forest_type')) "
        "AND A_CONTAINS(cube:variable_units, ('Mg/ha')) "
        "AND A_CONTAINS(cube:dimension_names, ('member', 'time')) "
        "AND cube:time_step = 'P1Y' AND cube:resolution BETWEEN 29 AND 31"
    )
    statement = select(items.c.id).where(filter_clause(parse_filter(text, "cql2-text")))
    async with module_database.read() as conn:
        found = (await conn.execute(statement)).scalars().all()
        facts = (
            await conn.execute(
                select(func.cubestac_cube_facts(items.c.properties)).where(items.c.id == item["id"])
            )
        ).scalar_one()
    assert found == [item["id"]]
    variables, dimensions = (item["properties"][k] for k in ("cube:variables", "cube:dimensions"))
    assert {name: sorted(value) if isinstance(value, list) else value
            for name, value in facts.items()} == {
        "cube:variable_names": sorted(variables),
        "cube:variable_units": sorted(v["unit"] for v in variables.values() if "unit" in v),
        "cube:dimension_names": sorted(dimensions),
        "cube:time_step": "P1Y",
        "cube:resolution": 30.0,
    }  # fmt: skip
