"""Time: select the configured range, then optionally aggregate to a period (issue 5, "Time").

Periods are labelled by their start (1Y -> 2007-01-01, 1M -> 2007-03-01, 1W -> Monday).
Nodata never takes part in a reduction. Result types follow what the method can produce:
`min`, `max`, `first`, `last` keep the input dtype and its nodata (a class map stays a class
map); `mean`, `median`, `sum` are floating point with NaN; `count` is the number of valid
observations as int32.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import xarray as xr
from xarray.core.resample import DataArrayResample

from cubes.inputs import Nodata
from cubes.regrid import fill_value, is_valid

PERIOD = re.compile(r"^(\d*)([DWMY])$")
PANDAS_UNITS = {"D": "D", "W": "W-MON", "M": "MS", "Y": "YS"}
FLOAT_METHODS = frozenset({"mean", "median", "sum"})
KEEP_DTYPE_METHODS = frozenset({"min", "max", "first", "last"})


def _parts(period: str) -> tuple[int, str]:
    match = PERIOD.match(period)
    if match is None:
        raise ValueError(f"not a period: {period!r}")
    return int(match.group(1) or 1), match.group(2)


def pandas_frequency(period: str) -> str:
    count, unit = _parts(period)
    return f"{count}{PANDAS_UNITS[unit]}"


def iso_duration(period: str) -> str:
    """The period as an ISO 8601 duration, for the datacube extension's temporal `step`."""
    count, unit = _parts(period)
    return f"P{count * 7}D" if unit == "W" else f"P{count}{unit}"


def period_end(start: datetime, period: str) -> datetime:
    """The last instant of the period that starts at `start`."""
    count, unit = _parts(period)
    offsets = {
        "D": pd.DateOffset(days=count),
        "W": pd.DateOffset(weeks=count),
        "M": pd.DateOffset(months=count),
        "Y": pd.DateOffset(years=count),
    }
    return (pd.Timestamp(start) + offsets[unit]).to_pydatetime() - timedelta(microseconds=1)


def select_range(
    variable: xr.DataArray, start: datetime | None, end: datetime | None
) -> xr.DataArray:
    """Steps within [start, end] (UTC, inclusive), in time order."""
    variable = variable.sortby("time")
    return variable.sel(time=slice(_naive(start), _naive(end)))


def _naive(moment: datetime | None) -> np.datetime64 | None:
    if moment is None:
        return None
    return np.datetime64(pd.Timestamp(moment).tz_convert("UTC").tz_localize(None), "ns")


def aggregate(
    variable: xr.DataArray, nodata: Nodata, period: str, method: str
) -> tuple[xr.DataArray, Nodata]:
    """One step per period; returns the aggregated variable and its nodata."""
    valid = is_valid(variable, nodata)
    if method == "count":
        counted = _by_period(valid, period).sum().astype("int32")
        return _attrs(counted, variable, units=None), None
    masked = variable if _nan_is_nodata(variable, nodata) else variable.where(valid)
    resampled = _by_period(masked, period)
    if method in FLOAT_METHODS:
        if method == "sum":
            result = resampled.sum(skipna=True, min_count=1)
        else:
            result = getattr(resampled, method)(skipna=True)
        return _attrs(result.astype(_float_dtype(variable.dtype)), variable), math.nan
    if method not in KEEP_DTYPE_METHODS:
        raise ValueError(f"unknown aggregation method {method!r}")
    result = getattr(resampled, method)(skipna=True)
    if variable.dtype.kind != "f":
        result = result.fillna(fill_value(variable, nodata))
    return _attrs(result.astype(variable.dtype), variable), nodata


def _by_period(variable: xr.DataArray, period: str) -> DataArrayResample:
    """Steps of `period` along time, each labelled by its start, which it includes."""
    return variable.resample(time=pandas_frequency(period), closed="left", label="left")


def _nan_is_nodata(variable: xr.DataArray, nodata: Nodata) -> bool:
    """Floats whose nodata is NaN need no masking: reductions skip NaN already."""
    return variable.dtype.kind == "f" and (nodata is None or math.isnan(nodata))


def _float_dtype(dtype: np.dtype) -> np.dtype:
    """float32 when it holds the input exactly (float32, small integers), else float64."""
    if dtype == np.float32 or (dtype.kind in "iu" and dtype.itemsize <= 2):
        return np.dtype("float32")
    return np.dtype("float64")


def _attrs(result: xr.DataArray, source: xr.DataArray, **override: object) -> xr.DataArray:
    attrs = dict(source.attrs)
    for key, value in override.items():
        if value is None:
            attrs.pop(key, None)
        else:
            attrs[key] = value
    if result.dtype.kind == "f" and source.dtype.kind != "f":
        for key in ("flag_values", "flag_meanings", "flag_masks"):
            attrs.pop(key, None)
    result.attrs = attrs
    return result
