"""Progress of a harvest: rich bars on a terminal, one JSON log line per event otherwise.

The pipeline reports through the `Progress` protocol; the command line picks the display
(`for_stream`). Logging itself is configured at the entry point (cubestac.logs), which
writes JSON lines when stderr is not a terminal, so the log display only emits events.
"""

from __future__ import annotations

import logging
import time
from typing import Protocol, TextIO

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    Progress as RichBars,
)
from rich.progress import (
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from catalogue.repositories.jobs import JobStatus
from ingest.report import Counts, SourceOutcome
from ingest.sources.base import Problem

logger = logging.getLogger("ingest")
LOG_EVERY_S = 10.0


class Progress(Protocol):
    def started(self, source_id: str, kind: str) -> None: ...

    def advanced(self, source_id: str, counts: Counts) -> None: ...

    def problem(self, source_id: str, problem: Problem) -> None: ...

    def finished(self, outcome: SourceOutcome) -> None: ...


def _fields(counts: Counts, rate: float) -> str:
    return (
        f"new={counts.new} changed={counts.changed} unchanged={counts.unchanged} "
        f"removed={counts.removed} failed={counts.failed} rate={rate:.0f}/s"
    )


class LogProgress:
    """Events as log lines (JSON under cron): start, a heartbeat every LOG_EVERY_S seconds,
    every problem with its URL and reason, and the end."""

    def __init__(self) -> None:
        self._started: dict[str, float] = {}
        self._last: dict[str, float] = {}

    def started(self, source_id: str, kind: str) -> None:
        self._started[source_id] = self._last[source_id] = time.monotonic()
        logger.info("source=%s event=started kind=%s", source_id, kind)

    def advanced(self, source_id: str, counts: Counts) -> None:
        now = time.monotonic()
        if now - self._last.get(source_id, 0.0) < LOG_EVERY_S:
            return
        self._last[source_id] = now
        elapsed = max(now - self._started.get(source_id, now), 1e-9)
        logger.info(
            "source=%s event=progress %s", source_id, _fields(counts, counts.processed / elapsed)
        )

    def problem(self, source_id: str, problem: Problem) -> None:
        logger.warning(
            "source=%s event=skipped url=%s reason=%s", source_id, problem.url, problem.reason
        )

    def finished(self, outcome: SourceOutcome) -> None:
        rate = outcome.counts.processed / max(outcome.seconds, 1e-9)
        level = logging.ERROR if outcome.status is JobStatus.FAILED else logging.INFO
        logger.log(
            level,
            "source=%s event=finished status=%s %s seconds=%.1f message=%s",
            outcome.source_id,
            outcome.status,
            _fields(outcome.counts, rate),
            outcome.seconds,
            outcome.message or "",
        )


class RichProgress:
    """A live line per source with its counts and rate, problems printed above the bars."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.bars = RichBars(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            TextColumn("{task.fields[counts]}"),
            TextColumn("[cyan]{task.fields[rate]}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self._tasks: dict[str, TaskID] = {}
        self._started: dict[str, float] = {}

    def __enter__(self) -> RichProgress:
        self.bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bars.stop()

    def started(self, source_id: str, kind: str) -> None:
        self._started[source_id] = time.monotonic()
        self._tasks[source_id] = self.bars.add_task(
            f"{source_id} ({kind})", total=None, counts="starting", rate=""
        )

    def advanced(self, source_id: str, counts: Counts) -> None:
        elapsed = max(time.monotonic() - self._started.get(source_id, 0.0), 1e-9)
        self.bars.update(
            self._tasks[source_id],
            counts=counts.summary(),
            rate=f"{counts.processed / elapsed:,.0f} items/s",
        )

    def problem(self, source_id: str, problem: Problem) -> None:
        self.console.print(
            f"[yellow]{source_id}: skipped[/yellow] {escape(f'{problem.url}: {problem.reason}')}",
            highlight=False,
        )

    def finished(self, outcome: SourceOutcome) -> None:
        task = self._tasks.get(outcome.source_id)
        if task is None:  # skipped before it started
            task = self.bars.add_task(outcome.source_id, total=None, counts="", rate="")
        style = {"failed": "red", "skipped": "yellow"}.get(outcome.status, "green")
        self.bars.update(
            task,
            description=f"[{style}]{outcome.source_id}",
            counts=outcome.counts.summary()
            if outcome.status != "skipped"
            else escape(outcome.message or ""),
            rate=f"{outcome.status}",
            total=1,
            completed=1,
        )


def for_stream(stream: TextIO) -> LogProgress | RichProgress:
    """Bars for a person at a terminal, log events for everything else."""
    if stream.isatty():
        return RichProgress(Console(file=stream))
    return LogProgress()
