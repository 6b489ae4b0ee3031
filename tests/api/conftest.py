"""Fixtures of the API tests that fault the database for real."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from catalogue.embedded import EmbeddedCluster
from catalogue.settings import EmbeddedDatabaseSettings
from tests.helpers import free_port


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
