"""Logging set-up, for entry points only: rich on a terminal, one JSON line per event otherwise.

In the API, warnings that repeat (the same message template from the same logger: during
a 16 s database outage it once wrote 1,295 `database unavailable` lines) are rate-limited:
the first of each interval is written, the rest are counted and summed up in one line.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from rich.logging import RichHandler


class JsonLineFormatter(logging.Formatter):
    """One JSON object per line, for cron mail and log collectors."""

    def format(self, record: logging.LogRecord) -> str:
        event = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,  # which worker, under `cubestac serve --workers N`
        }
        fields = getattr(record, "fields", None)  # `extra={"fields": {...}}`: structured data
        if isinstance(fields, dict):
            for key, value in fields.items():
                event.setdefault(key, value)
        if record.exc_info:
            event["error"] = self.formatException(record.exc_info)
        return orjson.dumps(event).decode()


REPEAT_INTERVAL_S = 10.0


def _failure_site(record: logging.LogRecord) -> tuple[object, ...] | None:
    """For a record with a traceback: the exception's type and the line that raised it,
    so that two different bugs logged by the same handler are not taken as repeats."""
    if not record.exc_info:
        return None
    error_type, _, trace = record.exc_info
    if trace is None:
        return (error_type,)
    while trace.tb_next is not None:
        trace = trace.tb_next
    return error_type, trace.tb_frame.f_code.co_filename, trace.tb_lineno


@dataclass
class _Window:
    ends: float
    suppressed: int = 0
    last: logging.LogRecord | None = None


class RepeatFilter(logging.Filter):
    """Let the first WARNING-or-worse record of a kind through per `interval_s`; count the
    others and write "N similar messages suppressed" once the interval is over.

    A kind is (logger, level, message template): `database unavailable for %s %s: %s`
    is one kind whatever the path and the error. Lower levels (the access log) always
    pass. The summary is written by `emit` (the handler this filter guards) when the next
    record of any kind arrives after the interval, so an API that keeps serving reports it
    soon; it is not written at all if the process logs nothing more.
    """

    def __init__(
        self,
        emit: Callable[[logging.LogRecord], object],
        interval_s: float = REPEAT_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.emit = emit
        self.interval_s = interval_s
        self.clock = clock
        self._windows: dict[tuple[object, ...], _Window] = {}
        self._next_end = float("inf")
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "repeat_summary", False):
            return True
        now = self.clock()
        if now >= self._next_end:
            self._flush(now)
        if record.levelno < logging.WARNING:
            return True
        key = (record.name, record.levelno, record.msg, _failure_site(record))
        with self._lock:
            window = self._windows.get(key)
            if window is not None and now < window.ends:
                window.suppressed += 1
                window.last = record
                return False
            self._windows[key] = _Window(ends=now + self.interval_s)
            self._next_end = min(self._next_end, now + self.interval_s)
        return True

    def _flush(self, now: float) -> None:
        with self._lock:
            ended = [key for key, window in self._windows.items() if window.ends <= now]
            windows = [self._windows.pop(key) for key in ended]
            self._next_end = min((w.ends for w in self._windows.values()), default=float("inf"))
        for window in windows:
            if window.suppressed and window.last is not None:
                self.emit(self._summary(window.suppressed, window.last))

    def _summary(self, count: int, last: logging.LogRecord) -> logging.LogRecord:
        summary = logging.makeLogRecord(
            {
                "name": last.name,
                "levelno": last.levelno,
                "levelname": last.levelname,
                "msg": "%d similar messages suppressed in %g s; the last: %s",
                "args": (count, self.interval_s, last.getMessage()),
                "created": time.time(),
                "repeat_summary": True,
                "fields": {"suppressed": count},
            }
        )
        return summary


def configure_logging(verbose: bool = False) -> None:
    level = logging.DEBUG if verbose else logging.INFO
    if sys.stderr.isatty():
        handler: logging.Handler = RichHandler(show_path=False, rich_tracebacks=True)
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonLineFormatter())
    logging.basicConfig(level=level, handlers=[handler], force=True)
    for noisy in ("uvicorn.access", "asyncio", "alembic.runtime.migration"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # stac-fastapi builds a module-level ApiSettings() at import and warns about its defaults;
    # ours are passed explicitly to StacApi, so that warning is noise.
    logging.getLogger("stac_fastapi.types.config").setLevel(logging.ERROR)


def limit_repeated_warnings() -> None:
    """Rate-limit repeated warnings on the root logger's handlers: for the API, where one
    outage fails every request alike. Not for ingest runs, whose contract is one line per
    problem record with its URL."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(existing, RepeatFilter) for existing in handler.filters):
            handler.addFilter(RepeatFilter(handler.handle))
