"""Logging set-up of the entry points: repeated warnings are rate-limited, JSON lines carry
the structured fields of a record."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import orjson
import pytest

from cubestac.logs import REPEAT_INTERVAL_S, JsonLineFormatter, RepeatFilter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def written(clock: Clock) -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger whose lines go, as JSON, through a rate-limited handler into a buffer."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLineFormatter())
    handler.addFilter(RepeatFilter(handler.handle, clock=clock))
    logger = logging.getLogger("test.repeat")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield logger, stream
    finally:
        logger.removeHandler(handler)


def _lines(stream: io.StringIO) -> list[dict]:
    return [orjson.loads(line) for line in stream.getvalue().splitlines()]


def test_a_burst_of_identical_warnings_writes_one_line_then_one_summary(
    written: tuple[logging.Logger, io.StringIO], clock: Clock
) -> None:
    logger, stream = written
    for index in range(1295):
        clock.now += 1 / 128  # 1,295 warnings in 10.1 s, as during the outage of issue 14
        logger.warning("database unavailable for %s %s: %s", "GET", f"/search/{index}", "gone")
    lines = _lines(stream)
    # the first; when the interval is over the summary of the others, and the next first
    assert [line["message"] for line in lines] == [
        "database unavailable for GET /search/0: gone",
        "1279 similar messages suppressed in 10 s; "
        "the last: database unavailable for GET /search/1279: gone",
        "database unavailable for GET /search/1280: gone",
    ]
    assert lines[1]["suppressed"] == 1279
    assert lines[1]["level"] == "warning"
    assert lines[1]["logger"] == "test.repeat"

    clock.now += REPEAT_INTERVAL_S
    logger.info("the next line of any kind writes the pending summary first")
    lines = _lines(stream)
    assert len(lines) == 5
    assert lines[3]["suppressed"] == 1295 - 1281
    assert lines[4]["level"] == "info"


def test_other_messages_and_info_lines_are_never_held_back(
    written: tuple[logging.Logger, io.StringIO], clock: Clock
) -> None:
    logger, stream = written
    for _ in range(50):
        logger.warning("one kind %s", 1)
        logger.error("another kind %s", 2)
        logger.info("an access line %s", 3)
    messages = [line["message"] for line in _lines(stream)]
    assert messages.count("one kind 1") == 1
    assert messages.count("another kind 2") == 1
    assert messages.count("an access line 3") == 50


def test_a_window_without_repeats_writes_no_summary(
    written: tuple[logging.Logger, io.StringIO], clock: Clock
) -> None:
    logger, stream = written
    logger.warning("once")
    clock.now += REPEAT_INTERVAL_S * 3
    logger.warning("once")
    assert [line["message"] for line in _lines(stream)] == ["once", "once"]


def test_json_lines_carry_the_structured_fields_of_a_record() -> None:
    record = logging.makeLogRecord(
        {
            "name": "cubestac.access",
            "levelno": logging.INFO,
            "levelname": "INFO",
            "msg": "GET /search 200",
            "fields": {"status": 200, "message": "cannot overwrite the message"},
        }
    )
    line = orjson.loads(JsonLineFormatter().format(record))
    assert line["status"] == 200
    assert line["message"] == "GET /search 200"
    assert line["logger"] == "cubestac.access"


def _fail(kind: type[Exception]) -> None:
    raise kind("boom")


def test_tracebacks_of_different_failures_are_not_taken_as_repeats(
    written: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = written
    for kind in (KeyError, KeyError, ValueError, KeyError, ValueError):
        try:
            _fail(kind)
        except Exception:
            logger.exception("database error on %s %s", "GET", "/search")
    errors = [line["error"].splitlines()[-1] for line in _lines(stream)]
    assert errors == ["KeyError: 'boom'", "ValueError: boom"]
