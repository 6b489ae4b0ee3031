"""Open what you find, on S3 (issue 6): a cube root `s3://` on moto's S3 server (127.0.0.1).
The item's `xarray:storage_options` are all a reader needs: the test drops every AWS_*
variable before opening. With `CUBESTAC_CUBE_PUBLIC_BASE`, the API hands out the bucket's
HTTP URLs instead. Requests are counted at moto."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
import xarray as xr
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from pystac_client import Client
from werkzeug.serving import make_server

from api import create_app
from catalogue.errors import NotFoundError
from catalogue.repositories.items import get_item
from catalogue.repositories.jobs import JobStatus
from cubes.runner import RunContext, run_cubes
from cubes.spec import CubeSpec
from tests.cubes import data
from tests.cubes.conftest import build, seed
from tests.cubes.opening import (
    RequestLog,
    WSGIRequestLog,
    chunk_arrays,
    chunk_keys,
    is_metadata,
    metadata_before_first_chunk,
    metadata_keys,
    pixel_series_keys,
)
from tests.helpers import live_server, make_settings

pytestmark = pytest.mark.slow

BUCKET, PREFIX, PRIVATE = "cubes", "root", "private"
ROOT = f"s3://{BUCKET}/{PREFIX}"
ROW, COL = 20, 70  # in chunk (0, 1) of the 64 px tiles
AWS_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")
SET_BY_RUNS = ("AWS_S3_ENDPOINT", "AWS_HTTPS", "AWS_VIRTUAL_HOSTING", "AWS_ENDPOINT_URL_S3")


def spec(cube_id: str) -> dict[str, Any]:
    return {
        "id": cube_id,
        "collection": "opened",
        "grid": data.GRID,
        "grace_period": 0,
        "inputs": [
            {"collection": "cci-biomass", "resampling": "bilinear"},
            {"collection": "forest-type", "resampling": "mode"},
        ],
    }


@dataclass
class Moto:
    endpoint: str
    log: RequestLog


@pytest.fixture(scope="module")
def moto() -> Iterator[Moto]:
    """moto's S3 server app behind a request counter, in a thread: nothing here opens S3
    through GDAL (which would hold the GIL while the server thread needs it)."""
    log = RequestLog("/")
    app = WSGIRequestLog(DomainDispatcherApplication(create_backend_app), log)
    server = make_server("127.0.0.1", 0, app, True, request_handler=MotoRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    endpoint = f"http://127.0.0.1:{server.server_port}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_ACCESS_KEY_ID", "test")
        patch.setenv("AWS_SECRET_ACCESS_KEY", "test")
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        patch.setenv("AWS_ENDPOINT_URL", endpoint)
        try:
            make_buckets(endpoint)
            yield Moto(endpoint, log)
        finally:
            for name in SET_BY_RUNS:
                os.environ.pop(name, None)
            server.shutdown()
            thread.join(timeout=10)


def make_buckets(endpoint: str) -> None:
    """BUCKET readable by everyone (a bucket policy, as on AWS), PRIVATE not."""
    s3 = boto3.client("s3", endpoint_url=endpoint)
    for bucket in (BUCKET, PRIVATE):
        s3.create_bucket(Bucket=bucket)
    public_read = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{BUCKET}/*",
            }
        ],
    }
    s3.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(public_read))


@pytest.fixture(scope="module")
async def published(module_database, compute_pool, moto: Moto, tmp_path_factory) -> dict:
    """The same cube built onto S3 (readers anonymous) and onto a local folder."""
    folder = tmp_path_factory.mktemp("inputs")
    await seed(module_database, [data.cci_biomass(folder).item, data.forest_type(folder).item])
    context = RunContext(module_database, ROOT, compute_pool, cube_anon=True)
    [on_s3] = await run_cubes([CubeSpec.model_validate(spec("on-s3"))], context)
    local_root = tmp_path_factory.mktemp("cubes")
    [on_disk] = await build(module_database, [spec("on-disk")], local_root, compute_pool)
    assert on_s3.status is on_disk.status is JobStatus.SUCCEEDED, on_s3.message + on_disk.message
    async with module_database.read() as conn:
        item = await get_item(conn, "opened", "on-s3")
    return {"item": item, "local": Path(str(on_disk.href))}


@pytest.fixture
def no_aws(monkeypatch) -> None:
    """A reader with no AWS configuration at all: what the item says must be enough."""
    for name in (*AWS_VARIABLES, "AWS_ENDPOINT_URL", *SET_BY_RUNS):
        monkeypatch.delenv(name, raising=False)


def test_the_item_carries_the_s3_url_and_what_a_reader_needs(published, moto: Moto) -> None:
    asset = published["item"]["assets"]["zarr"]
    assert asset["href"].startswith(f"{ROOT}/opened/on-s3/") and asset["href"].endswith(".zarr/0")
    options = {"endpoint_url": moto.endpoint, "anon": True, "max_concurrency": 1}
    assert asset["xarray:storage_options"] == options
    assert not {"key", "secret", "token"} & set(asset["xarray:storage_options"])  # no secrets


def test_open_zarr_with_the_item_options_alone_reads_only_what_it_needs(
    published, moto: Moto, no_aws: None
) -> None:
    asset = published["item"]["assets"]["zarr"]
    store_path = "/" + asset["href"].removeprefix("s3://")
    moto.log.take()
    cube = xr.open_zarr(
        asset["href"],
        storage_options=asset["xarray:storage_options"],
        **asset["xarray:open_kwargs"],
    )
    opening = moto.log.take()
    before = metadata_before_first_chunk(opening)
    assert {path.rsplit("/", 1)[1] for _, path in before} == metadata_keys(2), opening
    assert len(before) == len(metadata_keys(2)), opening
    assert set(chunk_arrays(opening[len(before) :], store_path)) == {"x", "y", "time"}, opening
    assert not [path for _, path in opening[len(before) :] if is_metadata(path)], opening

    series = cube["agb"].isel(y=ROW, x=COL).values
    reading = moto.log.take()
    assert sorted(chunk_keys(reading, store_path)) == pixel_series_keys(cube["agb"], ROW, COL, 2)
    assert {method for method, _ in opening + reading} == {"GET"}  # no HEADs, no listings
    assert len(reading) == cube.sizes["time"]

    on_disk = xr.open_zarr(published["local"], **asset["xarray:open_kwargs"])
    np.testing.assert_array_equal(series, on_disk["agb"].isel(y=ROW, x=COL).values)
    xr.testing.assert_equal(cube.load(), on_disk.load())  # values and coordinates


def test_xpystac_opens_the_s3_asset(published, no_aws: None, module_db_url) -> None:
    with live_server(create_app(make_settings(module_db_url, cube_root=ROOT))) as base:
        item = Client.open(base).get_collection("opened").get_item("on-s3")
    assert (
        item is not None and item.assets["zarr"].href == published["item"]["assets"]["zarr"]["href"]
    )
    cube = xr.open_dataset(item.assets["zarr"], engine="stac")
    # xpystac applies the asset's open_kwargs: class layers keep their stored dtype
    open_kwargs = published["item"]["assets"]["zarr"]["xarray:open_kwargs"]
    on_disk = xr.open_zarr(published["local"], **open_kwargs)
    assert cube["forest_type"].dtype == np.uint8
    xr.testing.assert_equal(cube.load(), on_disk.load())


def test_with_a_public_base_the_api_hands_out_http_urls_of_the_bucket(
    published, moto: Moto, module_db_url, no_aws: None
) -> None:
    public = f"{moto.endpoint}/{BUCKET}/{PREFIX}/"  # moto serves objects path-style
    settings = make_settings(module_db_url, cube_root=ROOT, cube_public_base=public)
    with live_server(create_app(settings)) as base:
        [item] = Client.open(base).search(collections=["opened"], ids=["on-s3"]).items()
    asset = item.assets["zarr"]
    stored = published["item"]["assets"]["zarr"]["href"]
    assert asset.href == public + stored.removeprefix(f"{ROOT}/")
    assert asset.extra_fields["xarray:storage_options"] == {}  # plain HTTP needs none
    moto.log.take()
    cube = xr.open_zarr(asset.href, **asset.extra_fields["xarray:open_kwargs"])
    assert len(metadata_before_first_chunk(moto.log.take())) == len(metadata_keys(2))
    on_disk = xr.open_zarr(published["local"], **asset.extra_fields["xarray:open_kwargs"])
    xr.testing.assert_equal(cube.load(), on_disk.load())


async def test_anonymous_items_on_a_private_bucket_fail_the_build_and_say_why(
    module_database, compute_pool, moto: Moto
) -> None:
    context = RunContext(module_database, f"s3://{PRIVATE}/cubes", compute_pool, cube_anon=True)
    [result] = await run_cubes([CubeSpec.model_validate(spec("private"))], context)
    assert result.status is JobStatus.FAILED
    assert "without credentials (CUBESTAC_CUBE_ANON is set" in result.message
    assert "Forbidden" in result.message
    async with module_database.read() as conn:
        with pytest.raises(NotFoundError):
            await get_item(conn, "opened", "private")  # nothing published
    leftovers = boto3.client("s3", endpoint_url=moto.endpoint).list_objects_v2(Bucket=PRIVATE)
    assert not [o["Key"] for o in leftovers.get("Contents", []) if ".zarr/" in o["Key"]]
