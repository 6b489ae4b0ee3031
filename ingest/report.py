"""What a harvest did, per source: counts, problems, outcome; shared by the pipeline, the
progress display, the job records and the command line."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from catalogue.repositories.jobs import JobStatus
from ingest.sources.base import Problem

MAX_PROBLEMS_KEPT = 1000  # the job record keeps fewer; the count stays exact


@dataclass
class Counts:
    """Items per fate; `failed` counts records that were skipped as bad input."""

    new: int = 0
    changed: int = 0
    unchanged: int = 0
    removed: int = 0
    failed: int = 0

    @property
    def processed(self) -> int:
        return self.new + self.changed + self.unchanged + self.failed

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    def summary(self) -> str:
        return (
            f"{self.new} new, {self.changed} changed, {self.unchanged} unchanged, "
            f"{self.removed} removed, {self.failed} failed"
        )


@dataclass
class SourceReport:
    """The running account of one source's run."""

    source_id: str
    counts: Counts = field(default_factory=Counts)
    problems: list[Problem] = field(default_factory=list)

    def add_problem(self, problem: Problem) -> None:
        self.counts.failed += 1
        if len(self.problems) < MAX_PROBLEMS_KEPT:
            self.problems.append(problem)

    def problem_records(self) -> list[dict[str, str]]:
        return [{"url": problem.url, "reason": problem.reason} for problem in self.problems]


@dataclass(frozen=True)
class SourceOutcome:
    """How one source's run ended."""

    source_id: str
    status: JobStatus
    counts: Counts
    problems: list[Problem]
    message: str | None
    seconds: float
    job_id: int | None = None

    def summary(self) -> str:
        """The line an operator reads (and cron mails)."""
        if self.status is JobStatus.SKIPPED:
            return f"{self.source_id}: {self.message}"
        line = f"{self.source_id}: {self.counts.summary()} ({self.seconds:.1f} s)"
        if self.status is JobStatus.FAILED:
            line += f"; FAILED: {self.message}"
        elif self.message:
            line += f"; {self.message}"
        return line
