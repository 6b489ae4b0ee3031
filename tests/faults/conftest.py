"""The fault tests re-use the harvesting tests' fixtures (a catalogue per test, in-process
harvest runs, a generated static catalog)."""

from tests.ingest.conftest import catalogue, harvest, static_catalog

__all__ = ["catalogue", "harvest", "static_catalog"]
