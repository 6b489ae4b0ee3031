"""Fixtures of the API tests: a cluster to fault the database for real, an app serving a
hand-made cube for the EDR queries."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from api import create_app
from catalogue.embedded import EmbeddedCluster
from catalogue.settings import EmbeddedDatabaseSettings
from tests.api.edr_cubes import HandMadeCube, item_for, write_cube
from tests.helpers import TEST_API_KEY, free_port, make_collection


@pytest.fixture
def own_cluster() -> Iterator[EmbeddedCluster]:
    """A PostGIS cluster of this test's own, so that it can stop and start it."""
    parent = Path(tempfile.mkdtemp(prefix="cubestac-restart-"))
    parent.chmod(0o755)
    cluster = EmbeddedCluster(EmbeddedDatabaseSettings(data_dir=parent / "db", port=free_port()))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(parent, ignore_errors=True)


async def publish(client: httpx.AsyncClient, cube: HandMadeCube) -> None:
    """The cube's item in the catalogue (replacing one published before)."""
    collection = await client.post("/collections", json=make_collection("coll"))
    assert collection.status_code in (201, 409)
    item = item_for(cube)
    created = await client.post("/collections/coll/items", json=item)
    if created.status_code == 409:
        created = await client.put("/collections/coll/items/cube", json=item)
    assert created.status_code in (200, 201), created.text


@pytest.fixture
async def serve(settings, database):
    """`await serve(cube)`: a client of an app whose catalogue holds `cube`'s item."""
    clients: list[httpx.AsyncClient] = []

    async def start(cube: HandMadeCube, **edr: int) -> httpx.AsyncClient:
        own = settings.model_copy(update={"edr": settings.edr.model_copy(update=edr)})
        app = create_app(own, database=database)
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://testserver",
            headers={"Authorization": f"Bearer {TEST_API_KEY}"},
        )
        clients.append(client)
        await publish(client, cube)
        return client

    yield start
    for client in clients:
        await client.aclose()


@pytest.fixture(scope="session")
def hand_made(tmp_path_factory: pytest.TempPathFactory):
    """`hand_made(**options)`: `write_cube(folder, **options)`, written once per session
    for each set of options (the stores are only read)."""
    written: dict[tuple, HandMadeCube] = {}

    def get(**options) -> HandMadeCube:
        key = tuple(sorted(options.items()))
        if key not in written:
            written[key] = write_cube(tmp_path_factory.mktemp("edr-cube"), **options)
        return written[key]

    return get
