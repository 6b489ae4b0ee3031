"""`/cubes/...`: a local cube root served read-only, confined to the root, cache-friendly."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from api import create_app
from tests.helpers import make_collection, make_item

STORE = "forest/forest-age/v20260101T000000.zarr"


@pytest.fixture
def cube_root(tmp_path: Path) -> Path:
    root = tmp_path / "cubes"
    store = root / STORE
    (store / "age").mkdir(parents=True)
    (store / ".zmetadata").write_text('{"zarr_consolidated_format": 1, "metadata": {}}')
    (store / "age" / "0.0").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "secret.txt").write_text("outside the root")
    os.symlink(tmp_path / "secret.txt", store / "escape")
    return root


@pytest.fixture
async def http(settings, database, cube_root: Path):
    app = create_app(settings.model_copy(update={"cube_root": str(cube_root)}), database=database)
    headers = {"Authorization": f"Bearer {settings.api_key.get_secret_value()}"}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t", headers=headers) as c:
        yield c


async def test_metadata_and_chunks_have_zarr_content_types(http: httpx.AsyncClient) -> None:
    meta = await http.get(f"/cubes/{STORE}/.zmetadata")
    assert meta.status_code == 200
    assert meta.headers["content-type"].startswith("application/json")
    assert "max-age" in meta.headers["cache-control"]
    chunk = await http.get(f"/cubes/{STORE}/age/0.0")
    assert chunk.headers["content-type"] == "application/octet-stream"
    assert chunk.content == bytes(range(256)) * 4


async def test_ranges_and_conditional_requests(http: httpx.AsyncClient) -> None:
    url = f"/cubes/{STORE}/age/0.0"
    part = await http.get(url, headers={"Range": "bytes=10-13"})
    assert part.status_code == 206
    assert part.content == bytes([10, 11, 12, 13])
    assert part.headers["content-range"] == "bytes 10-13/1024"
    beyond = await http.get(url, headers={"Range": "bytes=5000-6000"})
    assert beyond.status_code == 416
    assert (await http.get(url, headers={"Range": "bytes=x-y"})).status_code == 400
    etag = (await http.head(url)).headers["etag"]
    assert (await http.get(url, headers={"If-None-Match": etag})).status_code == 304


@pytest.mark.parametrize(
    "path",
    [
        "/cubes/../secret.txt",
        "/cubes/%2e%2e/secret.txt",
        "/cubes/..%2fsecret.txt",
        "/cubes/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/cubes//etc/passwd",
        "/cubes/%2fetc%2fpasswd",
        "/cubes/%252e%252e/secret.txt",  # double-encoded
        "/cubes/forest\\..\\..\\..\\secret.txt",
        "/cubes/..%5csecret.txt",
        f"/cubes/{STORE}/age/0.0%00",
        f"/cubes/{STORE}/escape",
        f"/cubes/{STORE}",
        "/cubes/forest/missing.zarr/.zmetadata",
    ],
)
async def test_nothing_outside_the_root_and_no_listings(http: httpx.AsyncClient, path: str) -> None:
    for method in ("GET", "HEAD"):
        response = await http.request(method, path)
        assert response.status_code == 404, (method, path, response.status_code)
        assert b"outside the root" not in response.content


async def test_cube_asset_hrefs_become_urls_under_cubes(http: httpx.AsyncClient, cube_root) -> None:
    await http.post("/collections", json=make_collection("forest"))
    item = make_item("forest-age", "forest")
    item["assets"] = {
        "zarr": {"href": str(cube_root / STORE), "type": "application/vnd.zarr", "roles": ["data"]}
    }
    created = await http.post("/collections/forest/items", json=item)
    assert created.status_code == 201
    assert created.json()["assets"]["zarr"]["href"] == f"http://t/cubes/{STORE}"  # as reads say
    item["properties"]["title"] = "replaced"
    replaced = await http.put("/collections/forest/items/forest-age", json=item)
    assert replaced.json()["assets"]["zarr"]["href"] == f"http://t/cubes/{STORE}"
    served = (await http.get("/collections/forest/items/forest-age")).json()
    assert served["assets"]["zarr"]["href"] == f"http://t/cubes/{STORE}"
    found = (await http.get("/search?ids=forest-age")).json()["features"][0]
    assert found["assets"]["zarr"]["href"] == f"http://t/cubes/{STORE}"


@pytest.mark.parametrize("encoding", ["gzip", "br"])
async def test_chunks_go_out_as_stored_to_any_origin(http: httpx.AsyncClient, encoding) -> None:
    """Chunks are compressed already; a compressed 206 would not be the range asked for."""
    url = f"/cubes/{STORE}/age/0.0"
    headers = {"Accept-Encoding": encoding, "Origin": "https://browser.example"}
    whole = await http.get(url, headers=headers)
    part = await http.get(url, headers={**headers, "Range": "bytes=0-511"})
    for response in (whole, part):
        assert "content-encoding" not in response.headers
        assert response.headers["access-control-allow-origin"] == "*"
    assert part.status_code == 206 and part.content == (bytes(range(256)) * 2)
    assert "content-range" in part.headers["access-control-expose-headers"].lower()


async def test_a_public_base_replaces_the_api_own_cubes_url(settings, database, cube_root) -> None:
    """CUBESTAC_CUBE_PUBLIC_BASE: a CDN or web server in front of the root serves the files."""
    public = settings.model_copy(
        update={"cube_root": str(cube_root), "cube_public_base": "https://cdn.example.org/c/"}
    )
    app = create_app(public, database=database)
    headers = {"Authorization": f"Bearer {settings.api_key.get_secret_value()}"}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t", headers=headers) as c:
        await c.post("/collections", json=make_collection("forest"))
        item = make_item("forest-age", "forest")
        item["assets"]["zarr"] = {
            "href": str(cube_root / STORE),
            "type": "application/vnd.zarr",
            "xarray:storage_options": {"anon": False},
        }
        assert (await c.post("/collections/forest/items", json=item)).status_code == 201
        served = (await c.get("/collections/forest/items/forest-age")).json()["assets"]
    assert served["zarr"]["href"] == f"https://cdn.example.org/c/{STORE}"
    assert served["zarr"]["xarray:storage_options"] == {}
    assert served["data"]["href"] == "https://example.com/data/forest-age.tif"  # not a cube


async def test_a_file_url_root_is_the_same_folder(settings, database, cube_root) -> None:
    """`CUBESTAC_CUBE_ROOT=file:///srv/cubes` serves and rewrites like `/srv/cubes` (the
    builder stores hrefs under the same resolved folder, catalogue.cube_root)."""
    from catalogue.cube_root import local_root, normalise_root

    url = f"file://{cube_root}"
    assert local_root(url) == local_root(str(cube_root)) == cube_root.resolve()
    assert normalise_root(url) == normalise_root(f"{cube_root}/") == str(cube_root.resolve())
    assert normalise_root("s3://bucket/cubes/") == "s3://bucket/cubes"
    assert local_root("s3://bucket/cubes") is None
    app = create_app(settings.model_copy(update={"cube_root": url}), database=database)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get(f"/cubes/{STORE}/.zmetadata")).status_code == 200
        assert (await client.get("/cubes/../secret.txt")).status_code == 404
