"""One harvester per source kind, behind the `Harvester` protocol; the registry maps `kind`.

The harvester modules are imported when a source of their kind is created, not with this
package: `files` pulls in rasterio, rioxarray and xarray (about a second), which every
`cubestac` command would otherwise pay at start-up, `--help` and `jobs` included.
"""

from __future__ import annotations

from importlib import import_module

from ingest.config import SourceConfig
from ingest.sources.base import Fetched, Harvester, Problem, Record

HARVESTERS: dict[str, str] = {
    "stac-static": "ingest.sources.stac_static:StacStaticHarvester",
    "stac-api": "ingest.sources.stac_api:StacApiHarvester",
    "files": "ingest.sources.files:FilesHarvester",
}


def harvester_class(kind: str) -> type:
    """The class harvesting sources of `kind` (imported on first use)."""
    module_name, class_name = HARVESTERS[kind].split(":")
    harvester: type = getattr(import_module(module_name), class_name)
    return harvester


def create_harvester(config: SourceConfig) -> Harvester:
    """The harvester of a configured source."""
    harvester: Harvester = harvester_class(config.kind)(config)
    return harvester


__all__ = [
    "HARVESTERS",
    "Fetched",
    "Harvester",
    "Problem",
    "Record",
    "create_harvester",
    "harvester_class",
]
