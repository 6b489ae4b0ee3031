"""`cubestac demo` end to end, as the README tells it: the demo world is harvested and built
into a cube, the API serves it on 127.0.0.1, pystac-client finds the cube item and
`xr.open_zarr` reads over HTTP exactly the values written on disk; the printed snippet runs
as pasted; and a second run writes nothing."""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx
import jsonschema
import numpy as np
import odc.stac
import pytest
import rasterio
import xarray as xr
import yaml
from pystac_client import Client
from sqlalchemy import URL

from api import create_app
from catalogue.settings import Settings
from cubestac.run_commands import CubestacConfig, validate_config
from demo.files import serve_files
from demo.session import (
    CUBE_COLLECTION,
    CUBE_ID,
    DemoOptions,
    DemoRun,
    demo_session,
    snippet,
    summary,
)
from tests.conftest import clone_database
from tests.helpers import free_port, live_server, make_settings

pytestmark = pytest.mark.slow


@dataclass
class FirstRun:
    run: DemoRun
    options: DemoOptions
    settings: Settings


@pytest.fixture(scope="module")
def first_run(
    server_url: URL, template_url: URL, tmp_path_factory: pytest.TempPathFactory
) -> FirstRun:
    """One demo run (world, harvest, cubes) into a catalogue and a cube root of its own."""
    folder = tmp_path_factory.mktemp("demo")
    settings = make_settings(
        clone_database(server_url, template_url), api_key=None, cube_root=str(folder / "cubes")
    )
    options = DemoOptions(folder, files_port=free_port())
    with demo_session(settings, options) as run:
        pass
    return FirstRun(run, options, settings)


def _stored_files(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def test_the_first_run_harvests_the_world_and_builds_the_cube(first_run: FirstRun) -> None:
    run = first_run.run
    assert run.world.created
    assert {o.source_id: o.counts.new for o in run.ingest} == {
        "demo-forest": 2,  # forest type and forest age, from the static catalog
        "demo-biomass": 4,  # one NetCDF per year
        "demo-canopy": 1,
    }
    assert all(o.counts.failed == 0 for o in run.ingest), [o.summary() for o in run.ingest]
    assert run.built == [CUBE_ID] and run.reused == []


def test_a_stac_client_opens_the_cube_over_http_with_the_values_on_disk(
    first_run: FirstRun,
) -> None:
    with live_server(create_app(first_run.settings)) as base:
        items = list(Client.open(base).search(collections=[CUBE_COLLECTION]).items())
        assert [item.id for item in items] == [CUBE_ID]
        asset = items[0].assets["zarr"]
        assert asset.href.startswith(f"{base}/cubes/{CUBE_COLLECTION}/{CUBE_ID}/")
        open_kwargs = asset.extra_fields["xarray:open_kwargs"]
        remote = xr.open_zarr(asset.href, **open_kwargs)
        local_path = Path(first_run.settings.cube_root or "") / asset.href.split("/cubes/", 1)[1]
        local = xr.open_zarr(local_path, **open_kwargs)
        assert set(remote.data_vars) == set(local.data_vars) == {
            "forest_type", "forest_age", "forest_age_spread", "canopy_height", "agb",
        }  # fmt: skip
        for name in local.data_vars:
            np.testing.assert_array_equal(remote[name].values, local[name].values)
        assert remote["forest_type"].encoding["dtype"] == np.uint8  # stored as classes
        assert remote["forest_type"].dtype == np.uint8  # and opened as classes
        assert open_kwargs["mask_and_scale"] == {"forest_type": False}
        assert np.isnan(remote["canopy_height"].values).any()  # the lake: masked
        assert remote.sizes == {"time": 4, "y": 400, "x": 480}
        landing = httpx.get(f"{base}/").json()
        rels = {link["rel"] for link in landing["links"]}
        assert {"self", "root", "data", "conformance", "service-desc", "search"} <= rels
        children = {link["href"] for link in landing["links"] if link["rel"] == "child"}
        assert f"{base}/collections/{CUBE_COLLECTION}" in children
        collection = httpx.get(f"{base}/collections/{CUBE_COLLECTION}").json()
        assert collection["title"] == "Demo cubes" and collection["extent"]["spatial"]["bbox"]
        thumbnail = items[0].assets["thumbnail"]
        answer = httpx.get(thumbnail.href, headers={"Origin": "https://stac-browser.example"})
        assert answer.status_code == 200 and answer.content.startswith(b"\x89PNG")
        assert answer.headers["access-control-allow-origin"] == "*"


def test_the_printed_snippet_runs_as_pasted(first_run: FirstRun) -> None:
    with live_server(create_app(first_run.settings)) as base:
        namespace: dict[str, object] = {}
        with contextlib.redirect_stdout(io.StringIO()) as printed:
            exec(snippet(base), namespace)  # noqa: S102 - the README's snippet, run as a user would
    cube = namespace["cube"]
    assert isinstance(cube, xr.Dataset)
    storm = printed.getvalue().strip().splitlines()[-1]
    before, *after = (float(v) for v in storm.strip("[]").split())
    assert before > 100 and after[0] < 10 < before  # felled in 2018, regrowing since


def test_the_printed_viewer_url_opens_the_viewer_on_the_cube(first_run: FirstRun) -> None:
    with live_server(create_app(first_run.settings)) as base:
        [line] = [ln for ln in summary(first_run.run, base).splitlines() if ln.startswith("viewer")]
        url = line.split()[1]
        assert url == f"{base}/viewer?collection={CUBE_COLLECTION}&item={CUBE_ID}"
        page = httpx.get(url)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        # what the page lists: the items with cube:variables (harvested NetCDFs described
        # with the datacube extension too) that the API serves as cubes (a zarr asset)
        body = {"filter-lang": "cql2-json", "limit": 100, "filter": {"op": "not", "args": [
            {"op": "isNull", "args": [{"property": "cube:variables"}]}]}}  # fmt: skip
        found = httpx.post(f"{base}/search", json=body).json()["features"]
        cubes = [(item["collection"], item["id"]) for item in found if "zarr" in item["assets"]]
        assert cubes == [(CUBE_COLLECTION, CUBE_ID)]


def test_a_second_run_writes_nothing_new(first_run: FirstRun) -> None:
    root = Path(first_run.settings.cube_root or "")
    before = _stored_files(root)
    with demo_session(first_run.settings, first_run.options) as run:
        pass
    assert not run.world.created
    for outcome in run.ingest:
        assert (outcome.counts.new, outcome.counts.changed) == (0, 0), outcome.summary()
    assert run.built == [] and run.reused == [CUBE_ID]
    assert _stored_files(root) == before


def test_the_written_config_is_valid_for_cubestac_run(first_run: FirstRun) -> None:
    config = first_run.run.config
    validate_config(config)  # what `cubestac run` checks before it starts
    jsonschema.validate(yaml.safe_load(config.read_text()), CubestacConfig.model_json_schema())
    assert (config.parent / "demo_processing.py").is_file()


def test_cubestac_ingest_reruns_the_config_while_the_demo_serves_its_world(
    first_run: FirstRun,
) -> None:
    settings = first_run.settings
    assert settings.database_url is not None
    env = {**os.environ, "DATABASE_URL": settings.database_url.get_secret_value()}
    with demo_session(settings, first_run.options) as run:
        done = subprocess.run(
            [str(Path(sys.executable).parent / "cubestac"), "ingest", str(run.config)],
            env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 3 and all("0 new, 0 changed" in line for line in lines), lines


def test_a_busy_files_port_is_refused_naming_the_option(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(OSError, match=f"port {port} .* in use.*--files-port"):
            with serve_files(tmp_path, port, tmp_path / "files.log"):
                pass


def test_harvested_demo_rasters_open_in_gdal_and_odc_stac_unaided(
    first_run: FirstRun, tmp_path: Path
) -> None:
    """The stac-static forest-type item and the files canopy-height item carry grid, CRS
    (`proj:epsg` too) and band data types: GDAL's STACIT and odc-stac need nothing else."""
    options = first_run.options
    with (
        serve_files(options.world, options.files_port, tmp_path / "files.log"),
        live_server(create_app(first_run.settings)) as base,
    ):
        files = {
            "forest-type": "data/forest_type.tif",
            "canopy-height": "files/canopy/canopy_height.tif",
        }
        for collection, path in files.items():
            with rasterio.open(options.world / path) as dataset:
                size = [dataset.width, dataset.height]
            name = f'STACIT:"{base}/search?collections={collection}":asset=data'
            result = subprocess.run(
                ["gdalinfo", "-json", name], capture_output=True, text=True, timeout=120
            )
            assert result.returncode == 0, result.stderr
            info = json.loads(result.stdout)
            assert info["size"] == size
            assert info["coordinateSystem"]["wkt"].rstrip().endswith('ID["EPSG",3035]]')
        items = list(Client.open(base).search(collections=["forest-type"]).items())
        loaded = odc.stac.load(items, bands=["data"])
    assert loaded["data"].dtype == np.uint8
    assert loaded.odc.crs.epsg == 3035 and loaded.odc.geobox.resolution.x == 50.0
    assert set(np.unique(loaded["data"].values)) <= {0, 1, 2, 3, 4}


def test_the_demo_cube_has_levels_classes_and_the_timeseries_layout(first_run: FirstRun) -> None:
    from demo.world import FOREST_CLASSES

    with live_server(create_app(first_run.settings)) as base:
        item = httpx.get(f"{base}/collections/{CUBE_COLLECTION}/items/{CUBE_ID}").json()
        assets = item["assets"]
        assert {"zarr", "zarr-multiscales", "zarr-timeseries"} <= set(assets)
        levels = assets["zarr-multiscales"]["multiscales"]["levels"]
        assert [level["shape"] for level in levels] == [[400, 480], [200, 240]]  # tiles of 256
        kwargs = assets["zarr"]["xarray:open_kwargs"]
        series = xr.open_zarr(assets["zarr-timeseries"]["href"], **kwargs)
        cube = xr.open_zarr(assets["zarr"]["href"], **kwargs)
        assert series["agb"].encoding["chunks"] == (4, 64, 64)
        np.testing.assert_array_equal(series["agb"].values, cube["agb"].values)
        coarse = xr.open_zarr(f"{assets['zarr-multiscales']['href']}/1", **kwargs)
        assert set(np.unique(coarse["forest_type"].values)) <= {0, *FOREST_CLASSES}
    classes = item["properties"]["cube:variables"]["forest_type"]["classification:classes"]
    assert [(c["value"], c["name"]) for c in classes] == list(FOREST_CLASSES.items())
    assert cube["forest_type"].attrs["flag_meanings"] == " ".join(FOREST_CLASSES.values())
