"""RFC 3339 timestamps and STAC time intervals, read the same way everywhere.

One reading for the API's `datetime` parameter (`catalogue.search`), stored items
(`catalogue.serializers`), CQL2 timestamps (`catalogue.filters`) and the `datetime:` of a
CONFIG source (`ingest.config`). An interval is an instant or `start/end`, where `..` or an
empty string is an open end (STAC API - Item Search, "datetime";
https://github.com/radiantearth/stac-api-spec/tree/v1.0.0/item-search#query-parameter-table).
Timestamps need a time zone: a naive one is refused rather than guessed. Where dates are
allowed (CONFIG, for people writing YAML), a date is the whole day, in UTC.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from catalogue.errors import InvalidInputError

OPEN_ENDS = frozenset({"", ".."})
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class Interval:
    """A closed or half-open time interval; None is an open end."""

    start: datetime | None
    end: datetime | None


def parse_datetime(value: Any, field: str) -> datetime:
    """RFC 3339 timestamp with a time zone; naive timestamps are refused, not guessed."""
    if not isinstance(value, str):
        raise InvalidInputError(f"{field}: expected an RFC 3339 string, got {value!r}")
    try:
        parsed = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError as error:
        raise InvalidInputError(f"{field}: {value!r} is not an RFC 3339 timestamp") from error
    if parsed.tzinfo is None:
        raise InvalidInputError(f"{field}: {value!r} has no time zone (append Z for UTC)")
    return parsed


def as_utc(moment: datetime) -> datetime:
    """`moment` in UTC; a naive one (what numpy, pandas and cftime give) is taken as UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def rfc3339(moment: datetime, seconds: bool = False) -> str:
    """`2021-07-01T00:00:00.5Z`-style text in UTC; to whole seconds with `seconds` (what
    upstream APIs and cube items are given: the precision every reader parses)."""
    utc = as_utc(moment)
    if seconds:
        return utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    return utc.isoformat().replace("+00:00", "Z")


def read_timestamp(text: str) -> datetime | None:
    """A timestamp from a file's own metadata (ACDD attributes, an extent): leniently, a
    naive one as UTC; None when it is not ISO 8601."""
    try:
        return as_utc(datetime.fromisoformat(text.strip().replace("z", "Z")))
    except ValueError:
        return None


def _parse_end(text: str, field: str, end: bool, dates: bool) -> datetime | None:
    """One end of an interval: None when open; with `dates`, a date is its whole day."""
    text = text.strip()
    if text in OPEN_ENDS:
        return None
    if dates and DATE.fullmatch(text):
        try:
            day = date.fromisoformat(text)
        except ValueError as error:
            raise InvalidInputError(f"{field}: {text!r} is not a date") from error
        return datetime.combine(day, time.max if end else time.min, tzinfo=UTC)
    return parse_datetime(text, field)


def parse_interval(
    value: str | None, field: str = "datetime", dates: bool = False
) -> Interval | None:
    """An instant, `a/b`, `../b` or `a/..` (RFC 3339; with `dates`, also whole days).

    None for no value; `../..` (nothing said) and a start after the end are refused.
    """
    if value is None or value == "":
        return None
    parts = value.split("/")
    if len(parts) == 1:
        start = _parse_end(parts[0], field, False, dates)
        end = _parse_end(parts[0], field, True, dates)
    elif len(parts) == 2:
        start = _parse_end(parts[0], f"{field} start", False, dates)
        end = _parse_end(parts[1], f"{field} end", True, dates)
    else:
        raise InvalidInputError(f"{field}: {value!r} must be an instant or start/end")
    if start is None and end is None:
        raise InvalidInputError(f"{field}: {value!r} leaves both ends open")
    if start is not None and end is not None and start > end:
        raise InvalidInputError(f"{field}: start {parts[0]} is after end {parts[-1]}")
    return Interval(start, end)
