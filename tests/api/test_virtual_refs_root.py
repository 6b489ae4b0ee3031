"""A `references` asset that points outside the cube root: the API hands out no `/cubes` URL
for it and serves nothing outside its root, whatever the stored href says."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from api import create_app
from tests.helpers import make_collection, make_item

SECRET = b'{"refs": "outside the root"}'


@pytest.fixture
def cube_root(tmp_path: Path) -> Path:
    """A cube root with one reference set inside, a secret beside the root, and a symlink
    in the references folder pointing at the secret."""
    root = tmp_path / "cubes"
    (root / "refs" / "biomass").mkdir(parents=True)
    (root / "refs" / "biomass" / "inside.json").write_text('{"version": 1, "refs": {}}')
    (tmp_path / "secret.json").write_bytes(SECRET)
    os.symlink(tmp_path / "secret.json", root / "refs" / "biomass" / "escape.json")
    return root


@pytest.fixture
async def http(settings, database, cube_root: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings.model_copy(update={"cube_root": str(cube_root)}), database=database)
    headers = {"Authorization": f"Bearer {settings.api_key.get_secret_value()}"}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t", headers=headers) as c:
        await c.post("/collections", json=make_collection("biomass"))
        yield c


async def served_href(http: httpx.AsyncClient, href: str) -> str:
    item = make_item("biomass-2010", "biomass")
    item["assets"] = {
        "references": {"href": href, "type": "application/json", "roles": ["references"]}
    }
    created = await http.post("/collections/biomass/items", json=item)
    assert created.status_code == 201, created.text
    served = (await http.get("/collections/biomass/items/biomass-2010")).json()
    found = (await http.get("/search?ids=biomass-2010")).json()["features"][0]
    assert served["assets"] == found["assets"]
    return str(served["assets"]["references"]["href"])


async def test_references_inside_the_root_become_a_cubes_url(
    http: httpx.AsyncClient, cube_root: Path
) -> None:
    href = await served_href(http, str(cube_root / "refs" / "biomass" / "inside.json"))
    assert href == "http://t/cubes/refs/biomass/inside.json"
    assert (await http.get(href)).json() == {"version": 1, "refs": {}}


@pytest.mark.parametrize(
    "stored",
    [
        "{root}/../secret.json",  # under the root's prefix, climbing out of it
        "{root}/refs/../../secret.json",
        "{outside}/secret.json",  # a `virtual_refs.root` outside the cube root
    ],
)
async def test_references_outside_the_root_keep_their_href_and_are_not_served(
    http: httpx.AsyncClient, cube_root: Path, stored: str
) -> None:
    href = stored.format(root=cube_root, outside=cube_root.parent)
    assert await served_href(http, href) == href  # as stored: no /cubes URL made up for it
    for path in (
        "/cubes/../secret.json",
        "/cubes/refs/../../secret.json",
        "/cubes/refs/%2e%2e/%2e%2e/secret.json",
        "/cubes/refs/biomass/escape.json",  # a symlink out of the root
    ):
        response = await http.get(path)
        assert response.status_code == 404, (path, response.status_code)
        assert SECRET not in response.content
