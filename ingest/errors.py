"""One error root for harvesting; the pipeline turns these into job records and exit codes."""

from __future__ import annotations


class IngestError(Exception):
    """Root of every error `ingest` raises on purpose."""


class SourceError(IngestError):
    """A source cannot be harvested at all (its root or API does not answer, or refuses what
    the config asks); the run of that source fails, the other sources still run."""


class RecordError(IngestError):
    """One upstream record cannot become an item; it is skipped, counted and reported."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason


class TransientError(IngestError):
    """An upstream answer worth retrying (5xx, 429); raised only inside the retry loop."""
