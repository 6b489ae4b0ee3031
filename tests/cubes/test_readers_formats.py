"""The same cube written as Zarr v2 and as Zarr v3 with sharding (issue 18), built by the
real runner into a local root and served by the API under uvicorn on 127.0.0.1: every
layout of the store is sharded as configured, and every reader the README's table names
opens what it says -- xarray and xpystac over HTTP (with suffix byte ranges for the
shard indexes), the API's own tiles and EDR queries, rioxarray level by level, and GDAL
3.6 (Debian 12's `gdalinfo`, the only GDAL that installs here): the v2 cube opens, the v3
cube does not (GDAL 3.6 knows only a draft of Zarr v3; sharding reads from GDAL 3.13 on).

These tests back the README's table "Which readers open which format"."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pystac
import pytest
import rioxarray  # noqa: F401 - registers the `.rio` accessor
import xarray as xr
import zarr
from pyproj import Transformer
from starlette.types import ASGIApp, Receive, Scope, Send

from api import create_app
from catalogue.cube_layout import (
    DATA_ASSET,
    MULTISCALES_UUID,
    PYRAMID_ASSET,
    TIMESERIES_ASSET,
    group_url,
    levels_from_attrs,
    store_url,
)
from catalogue.repositories.jobs import JobStatus
from tests.api.map_client import tile_pixel, web_mercator
from tests.cubes import data
from tests.cubes.conftest import build, seed
from tests.helpers import live_server, make_settings

pytestmark = pytest.mark.slow

COLLECTION = "formats"
INNER = 32  # the v3 cube's inner chunk: a tile (64 px) is a shard of 2 x 2 inner chunks
CUBES = {"v2": "formats-v2", "v3-sharded": "formats-v3"}
FORMATS = list(CUBES)
INPUTS = [
    {"collection": "cci-biomass", "resampling": "bilinear", "variables": ["agb"]},
    {"collection": "forest-type", "resampling": "mode"},
]


def spec(cube_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": cube_id,
        "collection": COLLECTION,
        "grid": data.GRID,
        "inputs": INPUTS,
        "timeseries": True,
        **fields,
    }


SPECS = [
    spec(CUBES["v2"], zarr_format=2),
    spec(CUBES["v3-sharded"], zarr_format=3, sharding={"chunks": INNER}),
]


@dataclass
class RangeLog:
    """(path, Range header, status) of every request under /cubes/."""

    entries: list[tuple[str, str | None, int]] = field(default_factory=list)

    def take(self) -> list[tuple[str, str | None, int]]:
        entries, self.entries = self.entries, []
        return entries


class RangeRecorder:
    def __init__(self, app: ASGIApp, log: RangeLog) -> None:
        self.app = app
        self.log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/cubes/"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        byte_range = headers.get(b"range")
        path = scope["path"]

        async def sending(message: Any) -> None:
            if message["type"] == "http.response.start":
                self.log.entries.append(
                    (path, byte_range.decode() if byte_range else None, message["status"])
                )
            await send(message)

        await self.app(scope, receive, sending)


@dataclass
class Served:
    base: str
    root: Path
    log: RangeLog


@pytest.fixture(scope="module")
async def cube_root(module_database, compute_pool, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("inputs")
    await seed(module_database, [data.cci_biomass(folder).item, data.forest_type(folder).item])
    root = tmp_path_factory.mktemp("cubes")
    results = await build(module_database, SPECS, root, compute_pool)
    assert all(r.status is JobStatus.SUCCEEDED for r in results), [r.message for r in results]
    return root


@pytest.fixture(scope="module")
def served(module_db_url, cube_root: Path) -> Iterator[Served]:
    log = RangeLog()
    app = create_app(make_settings(module_db_url, cube_root=str(cube_root)))
    app.add_middleware(RangeRecorder, log=log)
    with live_server(app) as base:
        yield Served(base, cube_root, log)


def item(served: Served, fmt: str) -> pystac.Item:
    url = f"{served.base}/collections/{COLLECTION}/items/{CUBES[fmt]}"
    return pystac.Item.from_dict(httpx.get(url).raise_for_status().json())


def local(served: Served, href: str) -> Path:
    return served.root / href.split("/cubes/", 1)[1]


def open_asset(asset: pystac.Asset, href: str | Path | None = None) -> xr.Dataset:
    return xr.open_zarr(str(href or asset.href), **asset.extra_fields["xarray:open_kwargs"])


# -- the store ----------------------------------------------------------------------------


def test_every_layout_of_the_v3_cube_is_sharded_by_tile_with_inner_chunks(served) -> None:
    store = local(served, item(served, "v3-sharded").assets[PYRAMID_ASSET].href)
    root = zarr.open_group(store, mode="r")
    assert root.metadata.zarr_format == 3
    levels = levels_from_attrs(dict(root.attrs))
    assert [level.path for level in levels] == ["0", "1", "2"]
    for level in levels:
        agb = root[f"{level.path}/agb"]
        assert isinstance(agb, zarr.Array)
        assert agb.shards[1:] == (data.TILE, data.TILE), level.path  # steps: as written
        assert agb.chunks == (1, INNER, INNER), level.path  # one step per inner chunk
    series = root["timeseries/agb"]
    assert isinstance(series, zarr.Array) and series.shards is not None
    steps, inner = series.chunks[0], series.chunks[1]
    assert steps == series.shape[0] and series.chunks == (steps, inner, inner)
    assert series.shards[0] == steps and series.shards[1] % inner == 0
    # consolidated: the root's zarr.json alone describes every group and array
    consolidated = root.metadata.consolidated_metadata
    assert consolidated is not None
    assert {"0/agb", "2/forest_type", "timeseries/agb"} <= set(consolidated.flattened_metadata)


def test_the_v2_cube_has_one_chunk_per_tile(served) -> None:
    store = local(served, item(served, "v2").assets[PYRAMID_ASSET].href)
    agb = zarr.open_group(store, mode="r")["0/agb"]
    assert isinstance(agb, zarr.Array) and agb.metadata.zarr_format == 2
    assert agb.chunks == (1, data.TILE, data.TILE) and agb.shards is None


# -- xarray and xpystac over HTTP ---------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_open_zarr_over_http_reads_what_is_on_disk(served, fmt: str) -> None:
    asset = item(served, fmt).assets[DATA_ASSET]
    over_http = open_asset(asset).load()
    xr.testing.assert_identical(over_http, open_asset(asset, local(served, asset.href)).load())
    assert over_http["forest_type"].dtype == np.uint8 and over_http.sizes["time"] == 4


def test_the_sharded_cube_opens_in_one_request_then_reads_index_and_inner_chunk(served) -> None:
    asset = item(served, "v3-sharded").assets[DATA_ASSET]
    served.log.take()
    cube = open_asset(asset)
    opening = served.log.take()
    assert opening[0][0].endswith("/0/zarr.json") and opening[0][1] is None
    assert not [path for path, _, _ in opening[1:] if path.endswith("zarr.json")], opening
    value = cube["agb"].isel(time=1, y=100, x=150).values  # tile (1, 2), inner chunk (1, 0)
    reading = served.log.take()
    shard = [entry for entry in reading if entry[0].endswith("/agb/c/1/1/2")]
    assert len(shard) == len(reading) == 2, reading  # the shard's index, then one chunk
    (_, index_range, index_status), (_, chunk_range, chunk_status) = shard
    assert index_range is not None and index_range.startswith("bytes=-"), index_range
    assert chunk_range is not None and not chunk_range.startswith("bytes=-"), chunk_range
    assert (index_status, chunk_status) == (206, 206)
    on_disk = open_asset(asset, local(served, asset.href))
    assert value == on_disk["agb"].isel(time=1, y=100, x=150).values


def test_a_window_reads_its_shard_index_once(served) -> None:
    """The item's open_kwargs chunk a sharded cube by shard, so one dask task reads a
    window of one shard: one index request, then only the inner chunks under it (zarr
    coalesces neighbouring ones); `chunks={}` would read the index once per inner chunk."""
    assets = item(served, "v3-sharded").assets
    assert assets[DATA_ASSET].extra_fields["xarray:open_kwargs"]["chunks"] == {
        "y": data.TILE,
        "x": data.TILE,
    }
    assert item(served, "v2").assets[DATA_ASSET].extra_fields["xarray:open_kwargs"]["chunks"] == {}
    cube = open_asset(assets[DATA_ASSET])
    served.log.take()
    window = cube["agb"].isel(time=0, y=slice(16, 48), x=slice(80, 90)).values  # 2 of 4
    reading = served.log.take()
    assert {path.rsplit("/agb/", 1)[1] for path, _, _ in reading} == {"c/0/0/1"}, reading
    ranges = [byte_range or "" for _, byte_range, _ in reading]
    assert [r.startswith("bytes=-") for r in ranges].count(True) == 1, reading
    assert 2 <= len(reading) <= 3, reading  # the index, then the two chunks (coalesced?)
    on_disk = open_asset(assets[DATA_ASSET], local(served, assets[DATA_ASSET].href))
    np.testing.assert_array_equal(
        window, on_disk["agb"].isel(time=0, y=slice(16, 48), x=slice(80, 90)).values
    )


@pytest.mark.parametrize("fmt", FORMATS)
def test_xpystac_opens_every_asset(served, fmt: str) -> None:
    assets = item(served, fmt).assets
    for key in (DATA_ASSET, TIMESERIES_ASSET):
        through_stac = xr.open_dataset(assets[key], engine="stac").load()
        on_disk = open_asset(assets[key], local(served, assets[key].href)).load()
        xr.testing.assert_identical(through_stac, on_disk)


@pytest.mark.parametrize("fmt", FORMATS)
def test_open_datatree_over_http_lists_every_level(served, fmt: str) -> None:
    asset = item(served, fmt).assets[PYRAMID_ASSET]
    tree = xr.open_datatree(asset.href, engine="zarr", **asset.extra_fields["xarray:open_kwargs"])
    assert set(tree.children) == {"0", "1", "2", "timeseries"}
    assert tree["2"].to_dataset().sizes["x"] == 50


# -- the API's tiles and EDR --------------------------------------------------------------


def lonlat(row: int, col: int) -> tuple[float, float]:
    to_wgs84 = Transformer.from_crs(data.GRID_CRS, 4326, always_xy=True)
    return to_wgs84.transform(
        data.WEST + (col + 0.5) * data.RES, data.NORTH - (row + 0.5) * data.RES
    )


@pytest.mark.parametrize("zoom", [12, 15, 17])
def test_map_tiles_of_both_formats_are_the_same_image(served, zoom: int) -> None:
    tile, _, _ = tile_pixel(web_mercator(), *lonlat(80, 100), zoom)
    images = []
    for fmt in FORMATS:
        url = (
            f"{served.base}/collections/{COLLECTION}/items/{CUBES[fmt]}/tiles/WebMercatorQuad/"
            f"{tile.z}/{tile.x}/{tile.y}.png"
        )
        for variable in ("agb", "forest_type"):
            response = httpx.get(url, params={"variable": variable, "time": "2"})
            assert response.status_code == 200, response.text
            images.append((variable, response.content))
    assert images[:2] == images[2:]


@pytest.mark.parametrize("query", ["position", "area"])
def test_edr_answers_of_both_formats_are_the_same(served, query: str) -> None:
    if query == "position":
        coords = "POINT({} {})".format(*lonlat(60, 66))
    else:
        corners = [lonlat(20, 30), lonlat(20, 120), lonlat(110, 120), lonlat(20, 30)]
        coords = "POLYGON(({}))".format(", ".join(f"{lon} {lat}" for lon, lat in corners))
    answers = []
    for fmt in FORMATS:
        response = httpx.get(
            f"{served.base}/collections/{COLLECTION}/items/{CUBES[fmt]}/{query}",
            params={"coords": coords, "parameter-name": "agb", "f": "csv"},
        )
        assert response.status_code == 200, response.text
        answers.append(response.text)
    assert answers[0] == answers[1] and len(answers[0].splitlines()) == 5  # header + 4 steps


# -- GeoZarr attributes and rioxarray -----------------------------------------------------


PROJ_UUID = "f17cb550-5864-4468-aeb7-f3180cfb622f"
SPATIAL_UUID = "689b58e2-cf7b-45e0-9fff-9cfc0883d6b4"
CRS_FIELDS = ("proj:code", "proj:wkt2", "proj:projjson")


def geo_facts(attrs: dict[str, Any]) -> None:
    """What GeoZarr's `proj:` and `spatial:` conventions ask of a group: both registered by
    UUID, exactly one CRS field (the schema's `oneOf`) and never null, y/x named."""
    assert {PROJ_UUID, SPATIAL_UUID} <= {c["uuid"] for c in attrs["zarr_conventions"]}
    crs_fields = {k: v for k, v in attrs.items() if k in CRS_FIELDS}
    assert crs_fields == {"proj:code": "EPSG:3035"}
    assert attrs["spatial:dimensions"] == ["y", "x"]
    assert attrs["spatial:registration"] == "pixel"


def gridded_dims(array: Any) -> tuple[str, ...]:
    """An array's dimension names, in v2 (`_ARRAY_DIMENSIONS`) and v3 (`dimension_names`)."""
    assert isinstance(array, zarr.Array)
    names = getattr(array.metadata, "dimension_names", None)
    return tuple(names if names is not None else array.attrs["_ARRAY_DIMENSIONS"])


@pytest.mark.parametrize("fmt", FORMATS)
def test_geozarr_attributes_on_the_root_and_every_group(served, fmt: str) -> None:
    """The root holds `multiscales` (as GDAL 3.13 looks for it: on the grandparent of an
    array `<level>/<variable>`) and the full resolution's `proj:` / `spatial:`; each level
    group and the time-series group their own, which its arrays inherit."""
    store = local(served, item(served, fmt).assets[PYRAMID_ASSET].href)
    root = zarr.open_group(store, mode="r")
    attrs = dict(root.attrs)
    geo_facts(attrs)
    assert attrs["spatial:transform"] == [data.RES, 0.0, data.WEST, 0.0, -data.RES, data.NORTH]
    names = {convention["name"] for convention in attrs["zarr_conventions"]}
    assert names == {"multiscales", "proj:", "spatial:"}
    assert MULTISCALES_UUID in {c["uuid"] for c in attrs["zarr_conventions"]}
    layout = attrs["multiscales"]["layout"]
    assert [entry["asset"] for entry in layout] == ["0", "1", "2"]
    for entry in layout:
        group = root[entry["asset"]]
        geo_facts(dict(group.attrs))
        assert group.attrs["spatial:transform"] == entry["spatial:transform"]
        assert group.attrs["spatial:shape"] == entry["spatial:shape"]
        dims = {name: gridded_dims(group[name]) for name in ("agb", "forest_type")}
        assert dims == {"agb": ("time", "y", "x"), "forest_type": ("y", "x")}  # mixed
        for name in dims:
            assert list(group[name].shape[-2:]) == entry["spatial:shape"], name
        # GDAL 3.13 checks a `derived_from` level's scale against each array's dimensions
        # and drops the level for arrays of another length: with mixed dimensions, a scale
        # over y and x and no `derived_from`, so every array keeps every level
        factor = layout[0]["spatial:shape"][1] / entry["spatial:shape"][1]
        assert entry["transform"]["scale"] == [factor, factor]
        assert "derived_from" not in entry
    series = dict(root["timeseries"].attrs)
    geo_facts(series)
    assert series["spatial:transform"] == attrs["spatial:transform"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_rioxarray_opens_each_level_with_its_crs_and_transform(served, fmt: str) -> None:
    asset = item(served, fmt).assets[PYRAMID_ASSET]
    store = store_url(asset.href)
    levels = levels_from_attrs(dict(zarr.open_group(local(served, store), mode="r").attrs))
    kwargs = asset.extra_fields["xarray:open_kwargs"]
    for level in levels:
        dataset = xr.open_zarr(group_url(store, level.path), **kwargs)  # over HTTP
        variable = dataset["agb"]
        assert variable.rio.crs.to_epsg() == 3035
        assert level.transform is not None
        assert tuple(variable.rio.transform())[:6] == pytest.approx(level.transform)
        assert variable.rio.shape == level.shape


# -- GDAL 3.6 (gdalinfo), and so QGIS on Debian 12 -------------------------------------------

needs_gdal = pytest.mark.skipif(shutil.which("gdalinfo") is None, reason="no gdal-bin")
GDAL_CONFIG = {
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "CPL_VSIL_CURL_USE_HEAD": "NO",
    "GDAL_HTTP_MAX_RETRY": "0",
}


def gdal(*args: str) -> subprocess.CompletedProcess[str]:
    """A GDAL command in its own process (GDAL holds the GIL while it waits on HTTP)."""
    config = [part for key, value in GDAL_CONFIG.items() for part in ("--config", key, value)]
    return subprocess.run([args[0], *config, *args[1:]], capture_output=True, text=True, timeout=60)


def gdal_name(group: str, variable: str, step: int) -> str:
    """GDAL's name for one time step of a variable (3-D arrays need the extra index)."""
    return f'ZARR:"/vsicurl/{group}":/{variable}:{step}'


@needs_gdal
def test_gdal_3_6_reads_every_level_of_the_v2_cube_over_http(served) -> None:
    asset = item(served, "v2").assets[PYRAMID_ASSET]
    store = store_url(asset.href)
    levels = levels_from_attrs(dict(zarr.open_group(local(served, store), mode="r").attrs))
    for level in levels:
        name = gdal_name(group_url(store, level.path), "agb", 2)
        done = gdal("gdalinfo", "-json", name)
        assert done.returncode == 0, done.stderr
        info = json.loads(done.stdout)
        assert level.shape is not None and level.transform is not None
        assert info["size"] == [level.shape[1], level.shape[0]]
        a, b, c, d, e, f = level.transform
        assert info["geoTransform"] == pytest.approx([c, a, b, f, d, e])
        assert 'ID["EPSG",3035]' in info["coordinateSystem"]["wkt"]
        row, col = level.shape[0] // 2, level.shape[1] // 3
        value = gdal("gdallocationinfo", "-valonly", name, str(col), str(row))
        assert value.returncode == 0, value.stderr
        expected = xr.open_zarr(group_url(store, level.path), mask_and_scale=False)["agb"]
        assert float(value.stdout) == pytest.approx(float(expected[2, row, col]), rel=1e-6)


@needs_gdal
def test_gdal_3_6_does_not_open_the_v3_sharded_cube(served) -> None:
    """Honest: GDAL 3.6 knows only a draft of Zarr v3, which the final spec's `zarr.json`
    is not; sharding reads from GDAL 3.13 on."""
    href = item(served, "v3-sharded").assets[DATA_ASSET].href
    version = gdal("gdalinfo", "--version").stdout
    assert version.startswith("GDAL 3.6"), version  # the row of the README this backs
    for name in (gdal_name(href, "agb", 2), f'ZARR:"{local(served, href)}":/agb:2'):
        done = gdal("gdalinfo", name)
        assert done.returncode != 0 and "unable to open" in done.stderr, done.stderr
