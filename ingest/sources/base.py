"""The one small protocol every source kind implements, and the records it produces.

A harvester discovers records (cheaply: links, listings, API pages), reads the ones whose
fingerprint changed, and turns each into a STAC item. Turning a record into an item
(`to_item`) is pure: no HTTP, no database, so it is tested on plain data. Everything else
(batching, incremental state, writing, locks, job records) is the pipeline's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ClassVar, Protocol, Self

from ingest.resource import Resource


@dataclass(frozen=True, slots=True)
class Record:
    """One upstream thing that becomes one item.

    `href` is its own address when it has one (an item JSON file, a data file); `key` is
    (collection, item id) when known before reading; `fingerprint` and `payload` are set when
    the listing already carries them (an API page holds whole items).
    """

    href: str | None = None
    key: tuple[str, str] | None = None
    fingerprint: str | None = None
    payload: Any = None
    context: Any = None

    @property
    def where(self) -> str:
        """How a report names this record."""
        if self.href:
            return self.href
        if isinstance(self.context, str):  # e.g. an API item's URL
            return self.context
        return "/".join(self.key) if self.key else "(unknown record)"


@dataclass(frozen=True, slots=True)
class Problem:
    """Something upstream that could not be harvested, and why: reported, never fatal."""

    url: str
    reason: str


@dataclass(frozen=True, slots=True)
class Fetched:
    """A record's content, read because its fingerprint changed."""

    fingerprint: str
    payload: Any


class HarvesterBase(Resource):
    """What every source kind shares: `async with harvester:` calls its `open` and `close`
    (what it holds for a harvest: a session, a client), both nothing by default."""


class Harvester(Protocol):
    """One source kind. Used as `async with harvester:` around discovery and reading
    (`HarvesterBase` implements that part)."""

    version: ClassVar[int]  # bump when to_item changes: the stored fingerprints are voided

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...

    def discover(self, cursor: Mapping[str, Any]) -> AsyncIterator[Record | Problem]:
        """Every record upstream (a broken link is a Problem, and the listing is then
        incomplete: nothing is removed in mirror mode). `cursor` is what `next_cursor`
        returned after the last complete run."""
        ...

    async def fetch(self, record: Record, known: str | None) -> Fetched | None:
        """Read a record that has no payload yet; None when `known` (the stored fingerprint)
        still holds. Raises RecordError for a record that cannot be read."""
        ...

    def to_item(self, record: Record, payload: Any) -> dict[str, Any]:
        """The STAC item of a record (pure). Raises RecordError for a bad record."""
        ...

    async def collection(self, collection_id: str) -> dict[str, Any]:
        """The STAC collection that items with this collection id belong to; one without
        an `extent` gets one computed from its items after the run."""
        ...

    def next_cursor(self) -> dict[str, Any]:
        """The cursor to store after a complete run."""
        ...
