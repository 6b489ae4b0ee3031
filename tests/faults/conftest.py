"""The fault tests re-use the harvesting and cube tests' fixtures (a catalogue per test,
in-process harvest runs, a generated static catalog, the cube builders' compute pool)."""

from tests.cubes.conftest import compute_pool
from tests.ingest.conftest import catalogue, harvest, static_catalog

__all__ = ["catalogue", "compute_pool", "harvest", "static_catalog"]
