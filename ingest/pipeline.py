"""One source's harvest: discover -> read what changed -> items -> bulk upsert, with counts.

How a run goes (DESIGN.md "Command-line contract", issue "Harvesting"):

1. The source's advisory lock is taken without waiting; if another run holds it, this run
   records a skipped job and says so.
2. A job record is started; the source's state is opened (`catalogue.repositories.sources`).
3. Records are discovered and handled in batches of `batch_size`: stored fingerprints are
   looked up, records whose fingerprint changed are read (at most `concurrency` at a time,
   retried on transient failures) and turned into items; bad records become problems.
   Writer tasks (`WRITERS`, each on its own connection) commit each batch (items and
   fingerprints) in one transaction while the next batch is prepared, so a run killed at
   any moment leaves whole batches, and the next run skips what was committed and
   completes the rest. A collection is written, in its own transaction, before the first
   batch that needs it; batches that share an item are written one after the other.
4. After a complete listing, `mirror: true` removes what is gone upstream; collection
   extents that are derived from items are recomputed; the cursor is stored.
5. The job record is finished with the counts and the problems.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from catalogue.database import Database
from catalogue.errors import CatalogueError, NotFoundError
from catalogue.repositories import collections as collection_repo
from catalogue.repositories import items as item_repo
from catalogue.repositories import jobs as job_repo
from catalogue.repositories import sources as source_repo
from catalogue.repositories.jobs import JobStatus
from catalogue.repositories.sources import SourceItem
from catalogue.serializers import collection_to_row
from catalogue.times import rfc3339
from ingest.config import SourceConfig
from ingest.errors import IngestError, RecordError
from ingest.progress import Progress
from ingest.report import SourceOutcome, SourceReport
from ingest.retry import describe, is_transient
from ingest.sources import create_harvester
from ingest.sources.base import Fetched, Harvester, Problem, Record
from ingest.stac import current_collection, current_item, item_row
from ingest.state import RunState

logger = logging.getLogger(__name__)
JOB_KIND = "ingest"
QUEUED_BATCHES = 2
WRITERS = 2  # batches written at once, each by its own transaction: PostgreSQL maintains the
# item indexes of two batches in parallel (measured in bench/ingest.py)
YIELD_EVERY = 20  # records between yields to the event loop, so the writer keeps the
# database busy while this batch is prepared (two cores: Python on one, PostgreSQL on the other)
PLACEHOLDER_EXTENT = {
    "spatial": {"bbox": [[-180.0, -90.0, 180.0, 90.0]]},
    "temporal": {"interval": [[None, None]]},
}


async def harvest_source(
    database: Database,
    config: SourceConfig,
    progress: Progress,
    harvester: Harvester | None = None,
) -> SourceOutcome:
    """Harvest one source under its advisory lock, recorded as a job; never raises for
    anything the source does (the outcome says it), so the other sources still run.
    `harvester` defaults to the registry's for `config.kind` (bench/ingest.py brings its own)."""
    started = time.monotonic()
    async with job_repo.target_lock(database.engine, JOB_KIND, config.id) as acquired:
        if not acquired:
            return await _skipped(database, config, progress)
        pid = acquired.pid
        job_id = await database.transaction(
            lambda conn: job_repo.start_job(conn, JOB_KIND, config.id, pid)
        )
        progress.started(config.id, config.kind)
        run = SourceRun(database, config, progress, harvester)
        status, message = JobStatus.SUCCEEDED, None
        try:
            message = await run.execute()
        except (IngestError, CatalogueError, OSError) as error:
            status, message = JobStatus.FAILED, str(error)
        except Exception as error:  # a bug must not stop the other sources; it is logged
            logger.exception("source %s: unexpected error", config.id)
            status, message = JobStatus.FAILED, f"unexpected error: {error!r}"
        report = run.report
        message = "; ".join(note for note in (message, report.warnings_note()) if note) or None
        counts, problems = report.counts.as_dict(), report.problem_records()
        await database.transaction(
            lambda conn: job_repo.finish_job(conn, job_id, status, counts, problems, message)
        )
    outcome = SourceOutcome(
        config.id,
        status,
        report.counts,
        report.problems,
        message,
        time.monotonic() - started,
        job_id,
    )
    progress.finished(outcome)
    return outcome


async def _skipped(database: Database, config: SourceConfig, progress: Progress) -> SourceOutcome:
    message = "skipped: another run is harvesting this source right now"
    await database.transaction(
        lambda conn: job_repo.record_skipped(conn, JOB_KIND, config.id, message)
    )
    report = SourceReport(config.id)
    outcome = SourceOutcome(config.id, JobStatus.SKIPPED, report.counts, [], message, 0.0)
    progress.finished(outcome)
    return outcome


@dataclass
class Batch:
    """One batch, prepared for the writer."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    records: list[SourceItem] = field(default_factory=list)
    collections: dict[str, dict[str, Any]] = field(default_factory=dict)
    unchanged: int = 0


class SourceRun:
    """The work of one run of one source (the lock and job record are the caller's)."""

    def __init__(
        self,
        database: Database,
        config: SourceConfig,
        progress: Progress,
        harvester: Harvester | None = None,
    ) -> None:
        self.harvester = harvester or create_harvester(config)
        self.database = database
        self.config = config
        self.progress = progress
        self.report = SourceReport(config.id)
        self.state = RunState(database, config.id, config.mirror)
        self._collections: dict[str, dict[str, Any] | None] = {}  # None: could not be read
        self._unreadable: dict[str, str] = {}
        self._derived_extents: set[str] = set()
        self._listing_complete = True
        self._written: set[str] = set()  # collections written by this run
        self._collections_lock = asyncio.Lock()
        self._in_flight: list[tuple[set[tuple[str, str]], asyncio.Event]] = []

    async def execute(self) -> str | None:
        """Run the harvest; returns a note for the job record (None when all went well)."""
        harvester = self.harvester
        async with harvester:
            config, content_hash = self.config, self.config.content_hash(harvester.version)
            stored = await self.database.transaction(
                lambda conn: source_repo.open_source(
                    conn, config.id, config.kind, config.url, content_hash
                )
            )
            await self._harvest(harvester, stored.cursor)
            note = await self._remove_gone() if self.config.mirror else None
            await self._update_extents()
            if self.report.problems:
                return note  # keep the cursor: the next run tries the failed records again
            cursor = harvester.next_cursor()
            await self.database.transaction(
                lambda conn: source_repo.close_source(conn, self.config.id, cursor)
            )
        return note

    async def _harvest(self, harvester: Harvester, cursor: dict[str, Any]) -> None:
        queue: asyncio.Queue[Batch | None] = asyncio.Queue(maxsize=QUEUED_BATCHES)
        writer = asyncio.create_task(self._write_all(queue))
        # The stored fingerprints of a batch are looked up while the next batch is listed
        # (an unchanged rerun is mostly these two, on different cores).
        pending: tuple[list[Record | Problem], asyncio.Task[list[SourceItem | None]]] | None
        pending = None
        try:
            async for found in _batched(harvester.discover(cursor), self.config.batch_size):
                lookup = asyncio.create_task(self.state.known(_records(found)))
                if pending is not None:
                    batch = await self._prepare(harvester, *pending)
                    await _hand_over(queue, batch, writer)
                pending = (found, lookup)
            if pending is not None:
                batch = await self._prepare(harvester, *pending)
                await _hand_over(queue, batch, writer)
                pending = None
        finally:
            if pending is not None and not pending[1].done():
                pending[1].cancel()
            if not writer.done():
                await _hand_over(queue, None, writer)
            await writer  # re-raises a failed write

    async def _prepare(
        self,
        harvester: Harvester,
        found: list[Record | Problem],
        lookup: asyncio.Task[list[SourceItem | None]],
    ) -> Batch:
        for entry in found:
            if isinstance(entry, Problem):
                self._listing_complete = False
                self._problem(entry)
        records = _records(found)
        stored = await lookup
        results = await self._read_all(harvester, records, stored)
        batch = Batch()
        for index, (record, known, result) in enumerate(zip(records, stored, results, strict=True)):
            if index % YIELD_EVERY == YIELD_EVERY - 1:
                await asyncio.sleep(0)
            known_key = (known.collection, known.item_id) if known else record.key
            if result is None:
                batch.unchanged += 1
                self.state.saw(known_key)
            elif isinstance(result, Problem):
                self.state.saw(known_key)  # unreadable now is not gone
                self._problem(result)
            else:
                self._add(harvester, batch, record, result, known_key)
        await self._attach_collections(harvester, batch)
        return batch

    def _add(
        self,
        harvester: Harvester,
        batch: Batch,
        record: Record,
        fetched: Fetched,
        known_key: tuple[str, str] | None,
    ) -> None:
        try:
            item = current_item(harvester.to_item(record, fetched.payload), record.where)
            row = item_row(item.document, record.where)
        except RecordError as error:
            self.state.saw(known_key)
            self._problem(Problem(error.url, error.reason))
            return
        self._warn(record.where, item.warnings)
        key = (row["collection"], row["id"])
        self.state.saw(key)
        batch.rows.append(row)
        batch.records.append(SourceItem(key[0], key[1], record.href, fetched.fingerprint))

    async def _read_all(
        self, harvester: Harvester, records: list[Record], stored: list[SourceItem | None]
    ) -> list[Fetched | Problem | None]:
        """Each record's content: None when unchanged, a Problem when it cannot be read."""
        gate = asyncio.Semaphore(self.config.concurrency)

        async def read(record: Record, known: str | None) -> Fetched | Problem | None:
            async with gate:
                try:
                    return await harvester.fetch(record, known)
                except RecordError as error:
                    return Problem(error.url, error.reason)
                except Exception as error:
                    if is_transient(error):
                        return Problem(record.where, f"upstream kept failing: {describe(error)}")
                    raise

        results: list[Any] = [None] * len(records)
        pending: dict[int, Any] = {}
        for index, (record, known) in enumerate(zip(records, stored, strict=True)):
            fingerprint = known.fingerprint if known else None
            if record.fingerprint is not None and record.fingerprint == fingerprint:
                continue  # unchanged: the listing says so, nothing to read
            if record.payload is not None and record.fingerprint is not None:
                results[index] = Fetched(record.fingerprint, record.payload)
            else:
                pending[index] = read(record, fingerprint)
        for index, result in zip(pending, await asyncio.gather(*pending.values()), strict=True):
            results[index] = result
        return results

    async def _attach_collections(self, harvester: Harvester, batch: Batch) -> None:
        """Collections the batch's items need, read once per run; the items of a collection
        that cannot be read are problems."""
        for collection_id in {row["collection"] for row in batch.rows} - set(self._collections):
            try:
                fetched = await harvester.collection(collection_id)
                current = current_collection(fetched, collection_id)
            except RecordError as error:
                self._collections[collection_id] = None
                self._unreadable[collection_id] = f"its collection {error}"
                continue
            self._collections[collection_id] = current.document
            self._warn(f"collection {collection_id}", current.warnings)
        rows, records = [], []
        for row, record in zip(batch.rows, batch.records, strict=True):
            document = self._collections[row["collection"]]
            if document is None:
                where = record.href or f"{row['collection']}/{row['id']}"
                self._problem(Problem(where, self._unreadable[row["collection"]]))
                continue
            batch.collections[row["collection"]] = document
            rows.append(row)
            records.append(record)
        batch.rows, batch.records = rows, records

    async def _write_all(self, queue: asyncio.Queue[Batch | None]) -> None:
        """`WRITERS` writers take batches from the queue, each in its own transaction."""
        try:
            async with asyncio.TaskGroup() as writers:
                for _ in range(WRITERS):
                    writers.create_task(self._writer(queue))
        except BaseExceptionGroup as failed:
            raise failed.exceptions[0] from None

    async def _writer(self, queue: asyncio.Queue[Batch | None]) -> None:
        while (batch := await queue.get()) is not None:
            # Registered right after the take, so in queue order: a batch that shares an
            # item with one taken before it waits for that one (the later version wins, and
            # two transactions never wait for each other's rows).
            keys = {(row["collection"], row["id"]) for row in batch.rows}
            ahead = [done for other, done in self._in_flight if keys & other]
            entry = (keys, asyncio.Event())
            self._in_flight.append(entry)
            try:
                for done in ahead:
                    await done.wait()
                counts = await self._write(batch)
            finally:
                self._in_flight.remove(entry)
                entry[1].set()
            tally = self.report.counts
            tally.new += counts.inserted
            tally.changed += counts.updated
            tally.unchanged += counts.unchanged + batch.unchanged
            self.progress.advanced(self.config.id, tally)
        await queue.put(None)  # the other writers stop too

    async def _write(self, batch: Batch) -> item_repo.UpsertCounts:
        """One batch: its new collections first (committed before any writer needs them),
        then its items and their fingerprints in one transaction."""
        if not batch.rows:  # an all-unchanged batch needs no transaction at all
            return item_repo.UpsertCounts()
        async with self._collections_lock:
            new = [doc for cid, doc in batch.collections.items() if cid not in self._written]
            if new:
                await self.database.transaction(lambda conn: self._write_collections(conn, new))
                self._written.update(document["id"] for document in new)
        # Two writers may still lock the same collection rows (the time-span bounds) in
        # different orders; PostgreSQL then aborts one of them and `transaction` retries it.
        return await self.database.transaction(lambda conn: self._write_items(conn, batch))

    async def _write_items(self, conn: AsyncConnection, batch: Batch) -> item_repo.UpsertCounts:
        # Fingerprints first, items last: the items' write ends in the per-day count
        # triggers (migration 0011), whose row locks the other writer's batch, on the same
        # days, waits for until this transaction commits; written last, they are held for
        # the commit alone. (One transaction: the order changes nothing else.)
        await source_repo.save_source_items(conn, self.config.id, batch.records)
        return await item_repo.upsert_items(conn, batch.rows)

    async def _write_collections(
        self, conn: AsyncConnection, documents: list[dict[str, Any]]
    ) -> None:
        for document in documents:
            await self._write_collection(conn, document)

    async def _write_collection(self, conn: AsyncConnection, document: dict[str, Any]) -> None:
        """Store a collection only when it differs from the stored one (an unchanged rerun
        writes nothing). A collection without an extent gets one from its items."""
        try:
            stored: dict[str, Any] | None = await collection_repo.get_collection(
                conn, document["id"]
            )
        except NotFoundError:
            stored = None
        candidate = dict(document)
        if "extent" not in candidate:
            self._derived_extents.add(candidate["id"])
            candidate["extent"] = (stored or {}).get("extent") or PLACEHOLDER_EXTENT
        if stored is None or collection_to_row(candidate)["content"] != stored:
            await collection_repo.upsert_collection(conn, candidate)

    async def _update_extents(self) -> None:
        for collection_id in sorted(self._derived_extents):
            await self.database.transaction(partial(_update_extent, collection_id=collection_id))

    async def _remove_gone(self) -> str | None:
        if not self._listing_complete:
            note = "mirror: nothing removed, the upstream listing was incomplete"
            logger.warning("source %s: %s", self.config.id, note)
            return note
        self.report.counts.removed = await self.state.remove_gone()
        return None

    def _warn(self, where: str, changes: tuple[str, ...]) -> None:
        """Count what was changed to store a document as current STAC; each kind of change
        is logged once per run (the job record counts them all)."""
        for change in changes:
            if self.report.add_warning(where, change):
                logger.warning("source %s: %s: %s", self.config.id, where, change)

    def _problem(self, problem: Problem) -> None:
        self.report.add_problem(problem)
        self.progress.problem(self.config.id, problem)


def _records(found: list[Record | Problem]) -> list[Record]:
    return [entry for entry in found if not isinstance(entry, Problem)]


async def _batched(
    found: AsyncIterator[Record | Problem], size: int
) -> AsyncIterator[list[Record | Problem]]:
    batch: list[Record | Problem] = []
    async for entry in found:
        batch.append(entry)
        if len(batch) % YIELD_EVERY == 0:
            await asyncio.sleep(0)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


async def _hand_over(
    queue: asyncio.Queue[Batch | None], batch: Batch | None, writer: asyncio.Task[None]
) -> None:
    """Queue a batch for the writer, unless the writer died (its error is then raised)."""
    put = asyncio.ensure_future(queue.put(batch))
    done, _ = await asyncio.wait({put, writer}, return_when=asyncio.FIRST_COMPLETED)
    if put not in done:
        put.cancel()
        writer.result()
        raise IngestError("the catalogue writer stopped")


async def _update_extent(conn: AsyncConnection, collection_id: str) -> None:
    """The collection's extent, derived from its items (when it has any)."""
    extent = await item_repo.item_extent(conn, collection_id)
    if extent is None:
        return
    stored = await collection_repo.get_collection(conn, collection_id)
    derived = {
        "spatial": {"bbox": [list(extent.bbox)]},
        "temporal": {"interval": [[rfc3339(extent.start), rfc3339(extent.end)]]},
    }
    if stored.get("extent") != derived:
        await collection_repo.upsert_collection(conn, {**stored, "extent": derived})
