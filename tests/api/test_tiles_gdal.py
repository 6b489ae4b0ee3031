"""A real WMTS client on the capabilities: GDAL's WMTS driver (gdalinfo, gdal_translate)
against the API on 127.0.0.1 (README "Map tiles")."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rio_tiler.colormap import cmap
from sqlalchemy import URL

from api import create_app
from catalogue.database import Database, create_engine
from tests.api import map_cubes
from tests.cubes.conftest import seed
from tests.helpers import live_server, make_settings

pytestmark = pytest.mark.skipif(shutil.which("gdalinfo") is None, reason="needs gdal-bin")


@pytest.fixture
async def served(fresh_db_url: URL, tmp_path: Path) -> Iterator[str]:
    store = tmp_path / "maps" / "map-cube" / "v1.zarr"
    map_cubes.write_store(store)
    settings = make_settings(fresh_db_url)
    database = Database(create_engine(settings))
    await seed(database, [map_cubes.cube_item(store)])
    await database.dispose()
    with live_server(create_app(settings)) as base:
        yield f"{base}/collections/maps/items/map-cube/WMTSCapabilities.xml"


@pytest.fixture(autouse=True)
def wms_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """GDAL's WMTS driver caches tiles in `./gdalwmscache` by default: keep them in tmp."""
    monkeypatch.setenv("GDAL_DEFAULT_WMS_CACHE_PATH", str(tmp_path / "gdalwmscache"))


def _gdal(*args: str) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_gdal_lists_every_variable_as_a_layer(served: str) -> None:
    listing = _gdal("gdalinfo", f"WMTS:{served}")
    for variable in ("biomass", "canopy", "forest_type"):
        assert f"layer={variable}" in listing


async def test_gdal_reads_the_layer_at_a_time(served: str, tmp_path: Path) -> None:
    info = _gdal("gdalinfo", f"WMTS:{served},layer=biomass")
    assert "Driver: WMTS" in info
    out = tmp_path / "biomass.tif"
    lon, lat = map_cubes.lonlat_of(640, 192)
    _gdal(
        "gdal_translate", "-q", "-projwin_srs", "EPSG:4326",
        "-projwin", str(lon - 0.001), str(lat + 0.001), str(lon + 0.001), str(lat - 0.001),
        "-oo", "EXTENDBEYONDDATELINE=NO", "-oo", "ZOOM_LEVEL=11",
        f"WMTS:{served},layer=biomass", str(out),
    )  # fmt: skip
    with rasterio.open(out) as dataset:
        pixels = dataset.read()
    colours = {tuple(int(v) for v in pixels[:, r, c]) for r, c in np.ndindex(pixels.shape[1:])}
    # the time dimension's default (the latest step) filled in {Time}: its colour
    value = map_cubes.biomass_value(640, 192, len(map_cubes.TIMES) - 1)
    low, high = 0.0, 220.0  # the default stretch (tests/api/test_tiles.py)
    assert colours == {tuple(cmap.get("viridis")[int(np.rint((value - low) / (high - low) * 255))])}
