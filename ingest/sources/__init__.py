"""One harvester per source kind, behind the `Harvester` protocol; the registry maps `kind`."""

from __future__ import annotations

from ingest.config import SourceConfig
from ingest.sources.base import Fetched, Harvester, Problem, Record
from ingest.sources.files import FilesHarvester
from ingest.sources.stac_api import StacApiHarvester
from ingest.sources.stac_static import StacStaticHarvester

HARVESTERS: dict[str, type] = {
    "stac-static": StacStaticHarvester,
    "stac-api": StacApiHarvester,
    "files": FilesHarvester,
}


def create_harvester(config: SourceConfig) -> Harvester:
    """The harvester of a configured source."""
    harvester: Harvester = HARVESTERS[config.kind](config)
    return harvester


__all__ = ["HARVESTERS", "Fetched", "Harvester", "Problem", "Record", "create_harvester"]
