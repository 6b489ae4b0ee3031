"""Harvesting several sources in one process: what `cubestac ingest` and `cubestac run` call.

Sources run one after another (each reads upstream concurrently on its own); a failing
source does not stop the others. Exit status (DESIGN.md): 0 when every selected source
succeeded or was skipped because another run holds it, 1 when any failed.
"""

from __future__ import annotations

import gc
from collections.abc import Sequence

from catalogue.database import Database, create_engine
from catalogue.repositories.jobs import JobStatus
from catalogue.schema import ensure_migrated
from catalogue.settings import Settings
from ingest.config import SourceConfig, with_cube_root
from ingest.pipeline import harvest_source
from ingest.progress import Progress
from ingest.report import SourceOutcome


async def run_ingest(
    settings: Settings, sources: Sequence[SourceConfig], progress: Progress
) -> list[SourceOutcome]:
    """Harvest `sources` in order into the catalogue `settings` names (which must be
    migrated: NotMigratedError otherwise); virtual references go under its cube root."""
    engine = create_engine(settings)
    try:
        await ensure_migrated(engine)
        database = Database(engine)
        return [
            await harvest_source(database, with_cube_root(source, settings.cube_root), progress)
            for source in sources
        ]
    finally:
        await engine.dispose()


def tune_gc_for_bulk() -> None:
    """Fewer cyclic-GC passes for a process that parses millions of small JSON containers.

    With the default thresholds a collection runs every 700 allocations and, while batches are
    in flight, the older generations hold hundreds of thousands of objects: parsing an item
    took several times longer (bench/results/code_figures.md). Items form no reference
    cycles, so collecting rarely loses nothing. For entry points only (it is process-wide).
    """
    gc.freeze()  # what is loaded so far (modules, settings) is never garbage
    gc.set_threshold(100_000, 50, 100)


def exit_code(outcomes: Sequence[SourceOutcome]) -> int:
    return 1 if any(outcome.status is JobStatus.FAILED for outcome in outcomes) else 0
