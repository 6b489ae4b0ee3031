"""Fixtures for cube tests: a shared in-process dask cluster, catalogue seeding, a runner."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import URL

from catalogue.database import Database, create_engine
from catalogue.repositories.collections import upsert_collection
from catalogue.repositories.items import upsert_items
from catalogue.serializers import item_to_row
from cubes.compute import ComputePool, ComputeSettings
from cubes.runner import CubeResult, Reporter, RunContext, run_cubes
from cubes.spec import CubeSpec
from tests.conftest import clone_database
from tests.helpers import make_collection, make_settings


@pytest.fixture(scope="session")
def compute_pool() -> Iterator[ComputePool]:
    """One in-process LocalCluster (threads) for every cube test that does not ask for
    another size: the production code path, without process start-up per test."""
    settings = ComputeSettings(workers=1, threads=2, memory_limit="2GB", processes=False)
    with ComputePool(settings) as pool:
        yield pool


async def seed(database: Database, items: list[dict[str, Any]]) -> None:
    """Collections (created as needed) and items, through the catalogue repositories."""
    async with database.write() as conn:
        for collection in sorted({item["collection"] for item in items}):
            await upsert_collection(conn, make_collection(collection))
        await upsert_items(conn, [item_to_row(item) for item in items])


async def build(
    database: Database,
    specs: list[CubeSpec | dict[str, Any]],
    root: Path | str,
    pool: ComputePool,
    config_dir: Path | None = None,
    reporter: Reporter | None = None,
) -> list[CubeResult]:
    cubes = [
        spec if isinstance(spec, CubeSpec) else CubeSpec.model_validate(spec) for spec in specs
    ]
    context = RunContext(database, str(root), pool, config_dir, reporter or Reporter())
    return await run_cubes(cubes, context)


@pytest.fixture(scope="module")
def module_db_url(server_url: URL, template_url: URL) -> URL:
    """A migrated database of this module's own, for builds shared by its tests."""
    return clone_database(server_url, template_url)


@pytest.fixture(scope="module")
async def module_database(module_db_url: URL) -> AsyncIterator[Database]:
    database = Database(create_engine(make_settings(module_db_url)))
    yield database
    await database.dispose()
