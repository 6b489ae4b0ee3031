"""When a data file is: from a filename pattern, or from what the file itself says.

A pattern's finest named group sets the period: `year` alone is that whole year, with
`month` that month, with `day` that day, and with `hour`/`minute`/`second` an instant.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from catalogue.times import read_timestamp, rfc3339

FINEST_FIRST = ("second", "minute", "hour", "day", "month", "year")


@dataclass(frozen=True)
class When:
    start: datetime
    end: datetime

    def properties(self) -> dict[str, Any]:
        """STAC `datetime` (an instant) or `start_datetime`/`end_datetime` with a null one."""
        if self.start == self.end:
            return {"datetime": rfc3339(self.start)}
        return {
            "datetime": None,
            "start_datetime": rfc3339(self.start),
            "end_datetime": rfc3339(self.end),
        }


def from_pattern(pattern: str, name: str) -> When | None:
    """The period a filename names, or None when the pattern does not match it."""
    match = re.search(pattern, name)
    if match is None:
        return None
    parts = {key: int(value) for key, value in match.groupdict().items() if value is not None}
    if "year" not in parts:
        return None
    try:
        start = datetime(
            parts["year"],
            parts.get("month", 1),
            parts.get("day", 1),
            parts.get("hour", 0),
            parts.get("minute", 0),
            parts.get("second", 0),
            tzinfo=UTC,
        )
    except ValueError:
        return None  # 2021-02-30 and the like: not a date, so not a match
    finest = next(unit for unit in FINEST_FIRST if unit in parts)
    return When(start, _period_end(start, finest))


def _period_end(start: datetime, finest: str) -> datetime:
    if finest in ("second", "minute", "hour"):
        return start
    if finest == "day":
        following = start + timedelta(days=1)
    elif finest == "month":
        following = start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)
    else:
        following = start.replace(year=start.year + 1)
    return following - timedelta(seconds=1)


def from_span(start: datetime, end: datetime) -> When:
    return When(start, end)


def from_attributes(attributes: dict[str, str]) -> When | None:
    """ACDD `time_coverage_start` / `time_coverage_end` global attributes."""
    start = _parse(attributes.get("time_coverage_start"))
    end = _parse(attributes.get("time_coverage_end")) or start
    if start is None or end is None or end < start:
        return None
    return When(start, end)


def _parse(value: str | None) -> datetime | None:
    return read_timestamp(value) if value else None
