"""Fixtures of the harvesting tests: a catalogue database per test (runs commit), and a way
to run sources in-process exactly as `cubestac ingest` does."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import URL, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from ingest.config import parse_sources
from ingest.progress import LogProgress
from ingest.report import SourceOutcome
from ingest.runner import run_ingest
from tests.helpers import make_settings
from tests.ingest.catalogs import StaticCatalog, build_static_catalog

Harvest = Callable[..., Coroutine[Any, Any, list[SourceOutcome]]]


@pytest.fixture
async def catalogue(fresh_db_url: URL) -> AsyncIterator[AsyncEngine]:
    """A migrated catalogue of the test's own, for reading what a harvest wrote."""
    engine = create_async_engine(fresh_db_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def harvest(fresh_db_url: URL) -> Harvest:
    """Run sources (CONFIG dicts) into the test's catalogue; returns the outcomes."""

    async def run(*sources: dict[str, Any]) -> list[SourceOutcome]:
        configs = parse_sources({"sources": list(sources)})
        return await run_ingest(make_settings(fresh_db_url), configs, LogProgress())

    return run


@pytest.fixture
def static_catalog(tmp_path: Path) -> StaticCatalog:
    return build_static_catalog(tmp_path / "upstream")


async def scalar(engine: AsyncEngine, sql: str, **params: Any) -> Any:
    """A value read back for an assertion (test-only SQL, constant text, bound params)."""
    async with engine.connect() as conn:
        return await conn.scalar(text(sql), params)


async def rows(engine: AsyncEngine, sql: str, **params: Any) -> list[Any]:
    async with engine.connect() as conn:
        return list(await conn.execute(text(sql), params))


def validate_items(stored: list[dict[str, Any]], unmirrored: tuple[str, ...] = ()) -> int:
    """Validate stored items, as the API serves them (with their links), against the STAC
    JSON schemas offline: core and every extension they declare, except `unmirrored` ones
    (no schema on disk), which the test must check itself. Returns how many passed."""
    import pystac.validation

    from catalogue.serializers import row_to_item
    from tests.stac_schemas import fresh_schema_caches, offline_schemas

    with offline_schemas() as log, fresh_schema_caches():
        for content in stored:
            item = row_to_item(dict(content), "http://testserver/")
            document = dict(item)
            document["stac_extensions"] = [
                url for url in item.get("stac_extensions", []) if url not in unmirrored
            ]
            pystac.validation.validate_dict(document)
    assert not log.refused, log.refused
    return len(stored)
