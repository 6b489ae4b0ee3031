"""Versioned cubes (issue 18, `store: icechunk`): each build one commit on `main` of the
cube's Icechunk repository; the item's `zarr` asset opens the latest version and links the
one before; a past version opens by its snapshot id; a failed build leaves no commit; 100
readers reading while a rebuild commits each see one version whole.

Versions are told apart by value: a processing hook adds `OFFSET` (an environment
variable, read when the hook runs) to the input, so build k holds the first build's values
plus its offset, everywhere."""

from __future__ import annotations

import copy
import hashlib
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pystac
import pytest
import rasterio.errors
import rioxarray  # the .rio accessor, and open_rasterio
import xarray as xr
from pydantic import ValidationError
from pyproj import CRS, Transformer

from api.versions import version_item
from catalogue.icechunk_repo import ICECHUNK_MEDIA_TYPE, open_repository, version_store
from catalogue.repositories.items import get_item
from catalogue.repositories.jobs import JobStatus
from catalogue.serializers import row_to_item
from catalogue.storage_extension import STORAGE_EXTENSION, S3Access, storage_scheme
from catalogue.version_links import VERSION_EXTENSION as VERSION_SCHEMA
from cubes.spec import CubeSpec
from tests.cubes import data
from tests.cubes.conftest import build, seed
from tests.cubes.test_remote import s3  # noqa: F401 - moto's S3 server, a fixture
from tests.stac_schemas import validate_offline

HOOK = """
import os

import xarray as xr


def shift(ds: xr.Dataset) -> xr.Dataset:
    if os.environ.get("ICECHUNK_TEST_FAIL"):
        raise RuntimeError("the build breaks before its commit")
    offset = float(os.environ["ICECHUNK_TEST_OFFSET"])
    return ds.map(lambda v: v + offset, keep_attrs=True)
"""
READERS = 100


def cube(**extra: Any) -> dict[str, Any]:
    return {
        "id": "biomass",
        "collection": "versioned",
        "grid": data.GRID,
        "store": "icechunk",
        "timeseries": True,
        "inputs": [
            {"collection": "cci-biomass", "resampling": "bilinear", "processing": "vhook:shift"}
        ],
        **extra,
    }


@pytest.fixture
def hook_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "config"
    folder.mkdir()
    (folder / "vhook.py").write_text(HOOK)
    return folder


async def built(database, pool, root: Path | str, config: Path, monkeypatch, offset: float) -> Any:
    monkeypatch.setenv("ICECHUNK_TEST_OFFSET", str(offset))
    [result] = await build(database, [cube()], root, pool, config)
    return result


async def item_of(database) -> dict[str, Any]:
    async with database.read() as conn:
        return await get_item(conn, "versioned", "biomass")


def the_gdal_readers_do_not_open(repository: str) -> None:
    """Honest cells of the README's readers table: an Icechunk repository is not a Zarr
    layout GDAL knows (its metadata lives in snapshot files), so neither Debian's GDAL 3.6
    nor rasterio's GDAL (rioxarray's `open_rasterio`) opens it."""
    if shutil.which("gdalinfo") is not None:
        done = subprocess.run(
            ["gdalinfo", f'ZARR:"{repository}":/agb'], capture_output=True, text=True, timeout=60
        )
        assert done.returncode != 0, done.stdout
    with pytest.raises(rasterio.errors.RasterioIOError):
        rioxarray.open_rasterio(f'ZARR:"{repository}":/agb')


def latest(repository: str) -> xr.Dataset:
    return xr.open_zarr(version_store(open_repository(repository)), consolidated=False)


async def test_each_build_is_a_commit_and_the_item_links_the_one_before(
    database, compute_pool, tmp_path, hook_dir, monkeypatch, client
) -> None:
    await seed(database, [data.cci_biomass(tmp_path).item])
    root = tmp_path / "cubes"
    first = await built(database, compute_pool, root, hook_dir, monkeypatch, 0)
    old_item = await item_of(database)
    second = await built(database, compute_pool, root, hook_dir, monkeypatch, 1000)
    item = await item_of(database)
    assert first.status is second.status is JobStatus.SUCCEEDED, second.message

    asset = item["assets"]["zarr"]
    repository = str(root / "versioned" / "biomass" / "cube.icechunk")
    assert asset["href"] == repository and asset["type"] == ICECHUNK_MEDIA_TYPE
    assert "latest-version" in asset["roles"] and "data" in asset["roles"]
    repo = open_repository(repository)
    tip = repo.lookup_branch("main")
    assert item["properties"]["version"] == tip != old_item["properties"]["version"]
    history = [snapshot.id for snapshot in repo.ancestry(branch="main")]
    assert history[:2] == [tip, old_item["properties"]["version"]] and len(history) == 3
    [predecessor] = [link for link in item["links"] if link["rel"] == "predecessor-version"]
    assert predecessor["href"] == f"./biomass/versions/{old_item['properties']['version']}"
    assert not [link for link in old_item["links"] if link["rel"] == "predecessor-version"]
    # the staged Zarr stores are gone: the folder holds the repository alone
    assert [p.name for p in (root / "versioned" / "biomass").iterdir()] == ["cube.icechunk"]
    the_gdal_readers_do_not_open(repository)

    new = latest(repository).load()
    assert new.rio.crs == CRS.from_user_input(data.GRID_CRS)  # rioxarray's accessor reads it
    past = xr.open_zarr(
        repo.readonly_session(snapshot_id=old_item["properties"]["version"]).store,
        consolidated=False,
    ).load()
    np.testing.assert_allclose(new["agb"].values, past["agb"].values + 1000, atol=0.01)
    # level 0 is the root, so the levels do not align as a datatree: open_groups reads them
    groups = xr.open_groups(version_store(repo), engine="zarr", consolidated=False)
    assert {"/", "/1", "/2", "/timeseries"} <= set(groups)
    assert groups["/"].attrs["multiscales"]["layout"][0]["asset"] == "."
    assert groups["/1"].sizes["x"] == groups["/"].sizes["x"] // 2
    series = xr.open_zarr(version_store(repo), group="timeseries", consolidated=False)
    np.testing.assert_array_equal(series["agb"].values, new["agb"].values)

    await the_api_serves_both_versions(client, old_item["properties"]["version"], tip, past, new)


async def the_api_serves_both_versions(
    client, old: str, tip: str, past: xr.Dataset, new: xr.Dataset
) -> None:
    """The item links its versions by absolute URLs; a past version's item opens that
    version (asset field `version`); tiles and EDR answer from the item's version."""
    url = "http://testserver/collections/versioned/items/biomass"
    served = (await client.get(url)).json()
    assert VERSION_SCHEMA in validate_offline(served)
    rels = {link["rel"]: link["href"] for link in served["links"]}
    assert rels["latest-version"] == url
    assert rels["predecessor-version"] == f"{url}/versions/{old}"
    assert "successor-version" not in rels and "version" not in served["assets"]["zarr"]

    response = await client.get(rels["predecessor-version"])
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/geo+json"
    version = response.json()
    assert VERSION_SCHEMA in validate_offline(version)
    rels = {link["rel"]: link["href"] for link in version["links"]}
    assert version["properties"]["version"] == old
    assert rels["self"] == f"{url}/versions/{old}" and rels["latest-version"] == url
    assert rels["successor-version"] == f"{url}/versions/{tip}"
    assert "predecessor-version" not in rels  # the first version
    asset = version["assets"]["zarr"]
    assert asset["version"] == old and "latest-version" not in asset["roles"]
    pinned = open_repository(asset["href"]).readonly_session(snapshot_id=asset["version"])
    reopened = xr.open_zarr(pinned.store, **asset["xarray:open_kwargs"])
    xr.testing.assert_equal(reopened["agb"].load(), past["agb"])
    current = (await client.get(f"{url}/versions/{tip}")).json()
    assert current["properties"]["version"] == tip and current["assets"]["zarr"]["version"] == tip
    assert {link["rel"] for link in current["links"]} >= {"predecessor-version", "latest-version"}

    for missing in ("0" * 20, "not-a-snapshot"):
        assert (await client.get(f"{url}/versions/{missing}")).status_code == 404

    row, col = 40, 50
    x, y = float(new["x"][col]), float(new["y"][row])
    lon, lat = Transformer.from_crs(data.GRID_CRS, "EPSG:4326", always_xy=True).transform(x, y)
    response = await client.get(
        f"{url}/position", params={"coords": f"POINT({lon} {lat})", "parameter-name": "agb"}
    )
    assert response.status_code == 200, response.text
    got = [np.nan if v is None else v for v in response.json()["ranges"]["agb"]["values"]]
    np.testing.assert_allclose(got, new["agb"].values[:, row, col], rtol=1e-6)
    [xyz] = [link["href"] for link in served["links"] if link["rel"] == "xyz"]
    tile = await client.get(xyz.replace("{z}/{x}/{y}", "0/0/0"))
    assert tile.status_code == 200 and tile.headers["content-type"] == "image/png", tile.text


async def test_a_failed_rebuild_leaves_no_commit_and_the_previous_version_serving(
    database, compute_pool, tmp_path, hook_dir, monkeypatch
) -> None:
    await seed(database, [data.cci_biomass(tmp_path).item])
    root = tmp_path / "cubes"
    await built(database, compute_pool, root, hook_dir, monkeypatch, 7)
    before = await item_of(database)
    repository = before["assets"]["zarr"]["href"]
    history = [s.id for s in open_repository(repository).ancestry(branch="main")]
    monkeypatch.setenv("ICECHUNK_TEST_FAIL", "1")
    failed = await built(database, compute_pool, root, hook_dir, monkeypatch, 9)
    assert failed.status is JobStatus.FAILED and "breaks before its commit" in failed.message
    assert [s.id for s in open_repository(repository).ancestry(branch="main")] == history
    assert await item_of(database) == before
    assert [p.name for p in (root / "versioned" / "biomass").iterdir()] == ["cube.icechunk"]


async def test_readers_during_a_republish_each_see_one_version_whole(
    database, compute_pool, tmp_path, hook_dir, monkeypatch
) -> None:
    """READERS threads open the latest version and read all of `agb` (48 chunks) again and
    again while a rebuild commits; every read must equal one build's values exactly (a
    digest of the bytes), and a read started after the commit the new build's."""
    await seed(database, [data.cci_biomass(tmp_path).item])
    root = tmp_path / "cubes"
    await built(database, compute_pool, root, hook_dir, monkeypatch, 0)
    repository = (await item_of(database))["assets"]["zarr"]["href"]
    done = threading.Event()
    seen: list[list[str]] = [[] for _ in range(READERS)]
    errors: list[BaseException] = []
    start = threading.Barrier(READERS + 1)

    def read(index: int) -> None:
        try:
            start.wait()
            while True:
                finished = done.is_set()  # one more read after the commit
                seen[index].append(digest(latest_without_dask(repository)))
                if finished:
                    return
        except BaseException as error:  # noqa: BLE001 - reported by the test below
            errors.append(error)

    threads = [threading.Thread(target=read, args=(i,)) for i in range(READERS)]
    for thread in threads:
        thread.start()
    start.wait()
    try:
        result = await built(database, compute_pool, root, hook_dir, monkeypatch, 500)
    finally:
        done.set()
        for thread in threads:
            thread.join(timeout=300)
    assert result.status is JobStatus.SUCCEEDED, result.message
    assert not errors, errors[:3]
    history = [s.id for s in open_repository(repository).ancestry(branch="main")]
    old, new = (digest(latest_at(repository, snapshot)) for snapshot in history[1::-1])
    assert old != new
    reads = [value for values in seen for value in values]
    assert set(reads) <= {old, new}
    assert all(values[-1] == new for values in seen)
    assert len(reads) >= 2 * READERS


def latest_without_dask(repository: str) -> xr.Dataset:
    """What a reader in its own process does: open the latest version and read it through
    zarr in the calling thread. With dask chunks, `.values` would go to the build's own
    distributed client (the test's default scheduler), and 100 readers' graphs would queue
    ahead of the rebuild they are meant to overlap, starving it for many minutes."""
    return xr.open_zarr(version_store(open_repository(repository)), consolidated=False, chunks=None)


def digest(cube: xr.Dataset) -> str:
    return hashlib.sha256(np.ascontiguousarray(cube["agb"].values).tobytes()).hexdigest()


def latest_at(repository: str, snapshot: str) -> xr.Dataset:
    store = open_repository(repository).readonly_session(snapshot_id=snapshot).store
    return xr.open_zarr(store, consolidated=False)


def test_icechunk_takes_zarr_format_3_only_and_the_message_names_the_fields() -> None:
    with pytest.raises(ValidationError) as raised:
        CubeSpec.model_validate(cube(zarr_format=2))
    assert "store: icechunk" in str(raised.value) and "zarr_format" in str(raised.value)
    assert CubeSpec.model_validate(cube()).zarr_format == 3
    with pytest.raises(ValidationError) as raised:
        CubeSpec.model_validate(cube(store="lakefs"))
    assert "store" in str(raised.value) and "'icechunk'" in str(raised.value)


async def test_on_s3_the_item_opens_the_latest_version_and_a_past_one_by_its_id(
    database,
    compute_pool,
    tmp_path,
    hook_dir,
    monkeypatch,
    s3,  # noqa: F811
) -> None:
    """A cube root on S3 (moto): the repository is an S3 prefix, the item says how to reach
    it (storage options, storage extension); icechunk opens the latest and a past version
    from those fields. xpystac 0.5 refuses the `custom-s3` scheme a non-AWS endpoint gets;
    given the `aws-s3` scheme an item on AWS has (moto standing in through
    AWS_ENDPOINT_URL), it opens the latest version and, from `/versions/{id}`'s item, the
    past one."""
    boto3.client("s3", endpoint_url=s3).create_bucket(Bucket="cubes")
    await seed(database, [data.cci_biomass(tmp_path).item])
    root = "s3://cubes/root"
    await built(database, compute_pool, root, hook_dir, monkeypatch, 0)
    old = (await item_of(database))["properties"]["version"]
    await built(database, compute_pool, root, hook_dir, monkeypatch, 1000)
    item = await item_of(database)

    asset = item["assets"]["zarr"]
    assert asset["href"] == f"{root}/versioned/biomass/cube.icechunk"
    options = asset["xarray:storage_options"]
    assert options["endpoint_url"] == s3 and not {"key", "secret"} & set(options)
    [ref] = asset["storage:refs"]
    scheme = item["properties"]["storage:schemes"][ref]
    assert item["storage:schemes"] == item["properties"]["storage:schemes"]  # for xpystac
    assert scheme["type"] == "custom-s3" and scheme["bucket"] == "cubes"
    as_served = row_to_item(copy.deepcopy(item), "http://t/")  # with its structural links
    assert {VERSION_SCHEMA, STORAGE_EXTENSION} <= set(validate_offline(as_served))
    listing = boto3.client("s3", endpoint_url=s3).list_objects_v2(Bucket="cubes")
    keys = [entry["Key"] for entry in listing["Contents"]]
    assert all(key.startswith("root/versioned/biomass/cube.icechunk/") for key in keys), keys

    repo = open_repository(asset["href"], options)
    new = xr.open_zarr(version_store(repo), consolidated=False).load()
    past = xr.open_zarr(version_store(repo, old), consolidated=False).load()
    np.testing.assert_allclose(new["agb"].values, past["agb"].values + 1000, atol=0.01)

    with pytest.raises(ValueError, match="Only S3 buckets"):
        xr.open_dataset(pystac.Item.from_dict(copy.deepcopy(item)).assets["zarr"], engine="stac")
    on_aws = storage_scheme("cubes", S3Access(region="us-east-1"))
    latest_item = as_on_aws(item, ref, on_aws)
    opened = xr.open_dataset(latest_item.assets["zarr"], engine="stac")
    xr.testing.assert_equal(opened["agb"].load(), new["agb"])
    served = version_item(asset["href"], options, old)
    assert served is not None and served["assets"]["zarr"]["version"] == old
    opened = xr.open_dataset(as_on_aws(served, ref, on_aws).assets["zarr"], engine="stac")
    xr.testing.assert_equal(opened["agb"].load(), past["agb"])


def as_on_aws(item: dict[str, Any], ref: str, scheme: dict[str, Any]) -> pystac.Item:
    changed = copy.deepcopy(item)
    changed["storage:schemes"][ref] = scheme
    return pystac.Item.from_dict(changed)
