"""The demo's file server answers browsers from any origin (CORS), read-only, so STAC
Browser can draw the demo's COGs with range requests (issue 13)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from demo.files import serve_files
from tests.helpers import free_port

ORIGIN = "https://radiantearth.github.io"
CONTENT = bytes(range(256)) * 4


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("world")
    (folder / "data").mkdir()
    (folder / "data" / "forest_type.tif").write_bytes(CONTENT)
    with serve_files(folder, free_port(), folder.parent / "files.log") as url:
        yield url


def test_a_range_request_from_another_origin_is_allowed(files: str) -> None:
    response = httpx.get(
        f"{files}/data/forest_type.tif", headers={"Origin": ORIGIN, "Range": "bytes=16-31"}
    )
    assert response.status_code == 206 and response.content == CONTENT[16:32]
    assert response.headers["access-control-allow-origin"] == "*"
    exposed = response.headers["access-control-expose-headers"].lower().split(",")
    assert {"content-range", "content-length", "accept-ranges", "etag"} <= {
        name.strip() for name in exposed
    }


def test_a_preflight_for_a_range_read_is_answered(files: str) -> None:
    response = httpx.options(
        f"{files}/data/forest_type.tif",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "range",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"
    assert "GET" in response.headers["access-control-allow-methods"]
    assert "range" in response.headers["access-control-allow-headers"].lower()


@pytest.mark.parametrize("method", ["PUT", "DELETE", "POST"])
def test_writes_are_neither_allowed_by_preflight_nor_served(files: str, method: str) -> None:
    url = f"{files}/data/forest_type.tif"
    preflight = httpx.options(
        url, headers={"Origin": ORIGIN, "Access-Control-Request-Method": method}
    )
    allowed = preflight.headers.get("access-control-allow-methods", "")
    assert preflight.status_code == 400 and method not in allowed
    response = httpx.request(method, url, headers={"Origin": ORIGIN}, content=b"x")
    assert response.status_code == 405
    assert httpx.get(url).content == CONTENT  # unchanged
