"""Which 2-D slice of a cube a map request shows: the variable, the time step (nearest to
an RFC 3339 time, or an index) and an index along every other non-spatial dimension
(a query parameter named after the dimension: a coordinate value or an index).

Defaults: the first mappable variable of the item's `cube:variables` (alphabetically), the
latest time step, the first value of every other dimension. Every bad value is an
InvalidInputError (400) that names it and says what would be valid.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from api.cube_dimensions import dimension_index
from catalogue.errors import InvalidInputError
from catalogue.times import DATE, as_utc, parse_datetime, rfc3339

SPATIAL = ("y", "x")
TIME = "time"


@dataclass(frozen=True)
class Selection:
    """A variable and one index per non-spatial dimension, in the variable's order."""

    variable: str
    dims: tuple[str, ...]
    index: tuple[int, ...]

    @property
    def key(self) -> str:
        return f"{self.variable}[{','.join(map(str, self.index))}]"


def map_variables(item: Mapping[str, Any], dataset: xr.Dataset) -> list[str]:
    """The item's variables that can be drawn (in the store, with y and x as last dims),
    in alphabetical order: the first is the default."""
    variables = (item.get("properties") or {}).get("cube:variables") or {}
    names = sorted(name for name in variables if name in dataset.data_vars)
    return [name for name in names if tuple(dataset[name].dims[-2:]) == SPATIAL]


def choose_variable(requested: str | None, names: list[str]) -> str:
    if not names:
        raise InvalidInputError("this cube has no variable with y and x dimensions to map")
    if requested is None:
        return names[0]
    if requested not in names:
        raise InvalidInputError(
            f"unknown variable {requested!r}; this cube's variables: {', '.join(names)}"
        )
    return requested


def select(
    dataset: xr.Dataset,
    variable: str,
    time: str | None,
    others: Mapping[str, str],
    time_range: tuple[datetime, datetime] | None = None,
) -> Selection:
    """The slice of `variable` the request asks for (`others`: query values by dim name)."""
    dims = tuple(str(dim) for dim in dataset[variable].dims[:-2])
    index = []
    for dim in dims:
        if dim == TIME:
            index.append(time_index(dataset, time, time_range))
        else:
            index.append(dimension_index(dataset, dim, others.get(dim)))
    return Selection(variable, dims, tuple(index))


def time_values(dataset: xr.Dataset) -> list[datetime]:
    if TIME not in dataset.coords:
        return []
    return [as_utc(moment) for moment in pd.to_datetime(dataset[TIME].values).to_pydatetime()]


def time_index(
    dataset: xr.Dataset, requested: str | None, time_range: tuple[datetime, datetime] | None
) -> int:
    """The step nearest to `requested` (RFC 3339 or a date), or `requested` as an index;
    the latest step by default. A time outside the cube's time range is a 400."""
    values = time_values(dataset)
    size = dataset.sizes[TIME]
    if requested is None or requested == "":
        return size - 1
    if requested.lstrip("-").isdigit():
        position = int(requested)
        if not 0 <= position < size:
            raise InvalidInputError(
                f"time index {position} is out of range: this cube has {size} time steps "
                f"(0 to {size - 1})"
            )
        return position
    moment = _moment(requested)
    first, last = values[0], values[-1]
    if time_range is not None:
        first, last = min(first, time_range[0]), max(last, time_range[1])
    if not first <= moment <= last:
        raise InvalidInputError(
            f"time {requested!r} is outside this cube's time range "
            f"{rfc3339(first, seconds=True)} to {rfc3339(last, seconds=True)}"
        )
    stamps = np.array([value.timestamp() for value in values])
    return int(np.abs(stamps - moment.timestamp()).argmin())


def _moment(text: str) -> datetime:
    if DATE.fullmatch(text):
        return datetime.fromisoformat(text).replace(tzinfo=UTC)
    return as_utc(parse_datetime(text, "time"))
