"""`catalogue.times`: one reading of RFC 3339 intervals for the API's `datetime` parameter
and a CONFIG source's `datetime:`; the CONFIG also takes dates, as whole days."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from catalogue.errors import InvalidInputError
from catalogue.times import Interval, parse_datetime, parse_interval, read_timestamp, rfc3339
from ingest.config import parse_datetime_range, parse_sources

T0 = datetime(2021, 7, 1, tzinfo=UTC)
T1 = datetime(2021, 7, 10, 12, 30, tzinfo=UTC)
DAY_END = datetime(2021, 7, 10, 23, 59, 59, 999999, tzinfo=UTC)

GOOD = [
    ("2021-07-01T00:00:00Z", Interval(T0, T0)),
    ("2021-07-01T00:00:00Z/2021-07-10T12:30:00Z", Interval(T0, T1)),
    ("2021-07-01t00:00:00z/2021-07-10T14:30:00+02:00", Interval(T0, T1)),
    ("../2021-07-10T12:30:00Z", Interval(None, T1)),
    ("2021-07-01T00:00:00Z/", Interval(T0, None)),
    ("2021-07-01T00:00:00Z/..", Interval(T0, None)),
]
BAD = [
    ("2021-07-10T00:00:00Z/2021-07-01T00:00:00Z", "is after end"),
    ("2021-07-01T00:00:00", "no time zone"),
    ("../..", "both ends open"),
    ("..", "both ends open"),
    ("a/b/c", "instant or start/end"),
    ("yesterday", "not an RFC 3339 timestamp"),
]


@pytest.mark.parametrize(("text", "expected"), GOOD)
def test_search_and_config_read_an_rfc3339_interval_alike(text: str, expected: Interval) -> None:
    assert parse_interval(text) == expected
    configured = parse_datetime_range(text)
    assert (configured.start, configured.end) == (expected.start, expected.end)


@pytest.mark.parametrize(("text", "message"), BAD)
def test_search_and_config_refuse_a_bad_interval_alike(text: str, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        parse_interval(text)
    source = {"id": "s", "kind": "stac-api", "url": "https://example.org", "datetime": text}
    with pytest.raises(ValidationError, match=message):
        parse_sources({"sources": [source]})


def test_dates_are_whole_days_where_they_are_allowed() -> None:
    assert parse_interval("2021-07-01/2021-07-10", dates=True) == Interval(T0, DAY_END)
    assert parse_interval("2021-07-10", dates=True) == Interval(
        T1.replace(hour=0, minute=0), DAY_END
    )
    assert parse_datetime_range(date(2021, 7, 1)).end == datetime.combine(
        date(2021, 7, 1), DAY_END.timetz()
    )
    with pytest.raises(InvalidInputError, match="has no time zone"):
        parse_interval("2021-07-01/2021-07-10")  # the API takes RFC 3339 date-times only
    with pytest.raises(InvalidInputError, match="is not a date"):
        parse_interval("2021-02-30", dates=True)


def test_a_timestamp_is_refused_with_the_field_that_holds_it() -> None:
    assert parse_datetime("2021-07-01T00:00:00Z", "x") == T0
    with pytest.raises(InvalidInputError, match="properties.datetime: expected an RFC 3339"):
        parse_datetime(20210701, "properties.datetime")
    with pytest.raises(InvalidInputError, match="datetime end: 'soon' is not an RFC 3339"):
        parse_interval("2021-07-01T00:00:00Z/soon")


def test_timestamps_are_written_in_utc_with_a_z() -> None:
    moment = datetime(2021, 7, 1, 2, 0, 0, 500000, tzinfo=timezone(timedelta(hours=2)))
    assert rfc3339(moment) == "2021-07-01T00:00:00.500000Z"
    assert rfc3339(moment, seconds=True) == "2021-07-01T00:00:00Z"
    assert rfc3339(datetime(2021, 7, 1)) == "2021-07-01T00:00:00Z"  # naive: taken as UTC


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2021-07-01T00:00:00Z", T0),
        (" 2021-07-01t02:00:00+02:00 ", T0),
        ("2021-07-01T00:00:00", T0),  # a file's naive timestamp: UTC
        ("2021-07-01", T0),
        ("July 2021", None),
    ],
)
def test_a_files_own_timestamps_are_read_leniently(text: str, expected: datetime | None) -> None:
    assert read_timestamp(text) == expected
