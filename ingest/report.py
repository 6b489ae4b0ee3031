"""What a harvest did, per source: counts, problems, outcome; shared by the pipeline, the
progress display, the job records and the command line."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from catalogue.repositories.jobs import JobStatus
from ingest.sources.base import Problem

MAX_PROBLEMS_KEPT = 1000  # the job record keeps fewer; the count stays exact
MAX_WARNINGS_SHOWN = 10


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
class Warned:
    """One kind of change made to harvested documents to store them as current STAC
    (`catalogue.stac_migration`): how many documents, and the first of them."""

    count: int
    first: str


@dataclass
class SourceReport:
    """The running account of one source's run."""

    source_id: str
    counts: Counts = field(default_factory=Counts)
    problems: list[Problem] = field(default_factory=list)
    warnings: dict[str, Warned] = field(default_factory=dict)  # by change

    def add_warning(self, where: str, change: str) -> bool:
        """Count a change; True the first time this change is seen in the run."""
        known = self.warnings.get(change)
        if known is not None:
            known.count += 1
            return False
        self.warnings[change] = Warned(1, where)
        return True

    def warnings_note(self) -> str | None:
        """The changes, for the job record's message: "<change> (<n>x, first: <url>); ..."."""
        if not self.warnings:
            return None
        notes = [
            f"{change} ({warned.count}x, first: {warned.first})"
            for change, warned in list(self.warnings.items())[:MAX_WARNINGS_SHOWN]
        ]
        if len(self.warnings) > MAX_WARNINGS_SHOWN:
            notes.append(f"and {len(self.warnings) - MAX_WARNINGS_SHOWN} more kinds of change")
        return "stored as current STAC: " + "; ".join(notes)

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
