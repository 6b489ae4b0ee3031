"""Sort and cql2-text filters from the real clients, against the API under uvicorn on
127.0.0.1: pystac-client (sortby without its "does not support sorting" warning,
`filter_lang="cql2-text"` in a POST) and the rustac CLI (`search --filter`, `--sortby`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pystac_client import Client

from api import create_app
from tests.helpers import TEST_API_KEY, live_server, make_collection, make_item, make_settings

pytestmark = pytest.mark.slow

RUSTAC = Path(sys.executable).with_name("rustac")


@pytest.fixture
def live_api(fresh_db_url) -> Iterator[str]:
    """`scenes` with a cloud cover that follows neither id nor time; `plots` with `biomass`."""
    with live_server(create_app(make_settings(fresh_db_url))) as base:
        headers = {"Authorization": f"Bearer {TEST_API_KEY}"}
        with httpx.Client(base_url=base, headers=headers) as http:
            for collection_id, items in (
                ("scenes", [make_item(f"s{i}", "scenes", cloud=(i * 7) % 10) for i in range(10)]),
                ("plots", [make_item("p0", "plots", biomass=3.5)]),
            ):
                assert http.post("/collections", json=make_collection(collection_id)).is_success
                body = {"items": {item["id"]: item for item in items}, "method": "insert"}
                response = http.post(f"/collections/{collection_id}/bulk_items", json=body)
                assert response.status_code == 200, response.text
        yield base


CLOUD_ORDER = ["s0", "s3", "s6", "s9", "s2", "s5", "s8", "s1", "s4", "s7"]  # (i * 7) % 10


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_pystac_client_sorts_without_warning(live_api: str, method: str) -> None:
    client = Client.open(live_api)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "does not support sort" would fail the test
        search = client.search(
            collections=["scenes"], sortby="-properties.cloud", method=method, limit=3
        )
        ids = [item.id for item in search.items()]
    assert ids == CLOUD_ORDER[::-1]


def test_pystac_client_sorts_a_filtered_search(live_api: str) -> None:
    client = Client.open(live_api)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        search = client.search(collections=["scenes"], sortby="cloud", filter="cloud < 5")
        assert [item.id for item in search.items()] == CLOUD_ORDER[:5]


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_pystac_client_cql2_text_filter(live_api: str, method: str) -> None:
    client = Client.open(live_api)
    search = client.search(
        collections=["scenes"], filter="cloud >= 8", filter_lang="cql2-text", method=method
    )
    assert sorted(item.id for item in search.items()) == ["s4", "s7"]


def test_pystac_client_filters_on_another_collections_property(live_api: str) -> None:
    """`biomass` is a queryable (of `plots`): in `scenes` it matches nothing, no 400."""
    client = Client.open(live_api)
    search = client.search(collections=["scenes"], filter="biomass > 1", method="POST")
    assert list(search.items()) == []


def _rustac(*args: str) -> list[str]:
    result = subprocess.run(
        [str(RUSTAC), "search", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NO_COLOR": "1"},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [feature["id"] for feature in json.loads(result.stdout)["features"]]


def test_rustac_cli_searches_with_cql2_text_and_sortby(live_api: str) -> None:
    ids = _rustac(live_api, "--collections", "scenes", "--filter", "cloud < 5", "--sortby=-cloud")
    assert ids == CLOUD_ORDER[:5][::-1]
