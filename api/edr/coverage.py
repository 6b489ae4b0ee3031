"""The answers of the EDR queries: CoverageJSON (built and validated with covjson-pydantic)
and CSV.

CoverageJSON 1.0 (OGC 21-069r2, https://docs.ogc.org/cs/21-069r2/21-069r2.html):
- `/position` answers a Coverage with domainType `PointSeries` (`Point` for a cube without
  a time axis): axes `x`/`y` hold the WGS 84 centre of the pixel read, `t` its time steps;
  one NdArray range per parameter along `t`, `null` where the pixel holds no data.
- `/area` answers the same shape at the polygon's centroid, with four parameters per
  variable V: `V_mean`, `V_min`, `V_max` (over the valid pixels whose centres the polygon
  contains; null when none is) and `V_count` (how many are valid). Every CoverageJSON
  reader charts a PointSeries, where few handle `PolygonSeries`; the polygon's pixel count
  is `cubestac:pixels`.
A cube's other dimensions (an ensemble `member`) are read at one value each, given in
`cubestac:selection`.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr
from covjson_pydantic.coverage import Coverage
from covjson_pydantic.domain import Axes, Domain, DomainType, ValuesAxis
from covjson_pydantic.ndarray import NdArrayFloat, NdArrayInt
from covjson_pydantic.observed_property import Category, ObservedProperty
from covjson_pydantic.parameter import Parameter, Parameters
from covjson_pydantic.reference_system import ReferenceSystem, ReferenceSystemConnectionObject
from covjson_pydantic.unit import Unit

from api.edr.read import AreaStats, Steps

CRS84_URI = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
STATISTICS = ("mean", "min", "max", "count")


@dataclass(frozen=True)
class ParameterInfo:
    """What a CoverageJSON parameter says of a cube variable."""

    name: str
    label: str
    description: str | None
    unit: str | None
    standard_name: str | None
    categories: tuple[tuple[int, str], ...]  # CF flag_values with their flag_meanings
    dtype: np.dtype


def parameter_info(name: str, entry: Mapping[str, Any], variable: xr.DataArray) -> ParameterInfo:
    """From the item's `cube:variables` entry, then the variable's CF attributes."""
    attrs = variable.attrs
    unit = entry.get("unit") or attrs.get("units")
    dtype = np.dtype(variable.encoding.get("dtype", variable.dtype))
    return ParameterInfo(
        name=name,
        label=str(attrs.get("long_name") or name),
        description=str(entry["description"]) if entry.get("description") else None,
        unit=str(unit) if unit else None,
        standard_name=str(attrs["standard_name"]) if attrs.get("standard_name") else None,
        categories=_categories(attrs),
        dtype=dtype,
    )


def point_coverage(
    lonlat: tuple[float, float],
    steps: Steps,
    values: Mapping[str, np.ndarray],
    infos: Mapping[str, ParameterInfo],
    extra: Mapping[str, Any],
) -> bytes:
    parameters = {name: _parameter(infos[name]) for name in values}
    ranges = {name: _range(values[name], infos[name].dtype, steps) for name in values}
    return _coverage(lonlat, steps, parameters, ranges, extra)


def area_coverage(
    lonlat: tuple[float, float],
    steps: Steps,
    stats: Mapping[str, AreaStats],
    infos: Mapping[str, ParameterInfo],
    extra: Mapping[str, Any],
) -> bytes:
    parameters: dict[str, Parameter] = {}
    ranges: dict[str, NdArrayFloat | NdArrayInt] = {}
    for name, result in stats.items():
        info = infos[name]
        for statistic in STATISTICS:
            key = f"{name}_{statistic}"
            parameters[key] = _statistic_parameter(info, statistic)
            dtype = np.dtype("int64") if statistic == "count" else _stat_dtype(info, statistic)
            ranges[key] = _range(getattr(result, statistic), dtype, steps)
    return _coverage(lonlat, steps, parameters, ranges, extra)


def point_csv(
    steps: Steps, values: Mapping[str, np.ndarray], infos: Mapping[str, ParameterInfo]
) -> str:
    columns = {name: _numbers(array, infos[name].dtype) for name, array in values.items()}
    return _csv(steps, columns)


def area_csv(
    steps: Steps, stats: Mapping[str, AreaStats], infos: Mapping[str, ParameterInfo]
) -> str:
    columns: dict[str, list[Any]] = {"pixels": [next(iter(stats.values())).pixels] * steps.count}
    for name, result in stats.items():
        for statistic in STATISTICS:
            dtype = (
                np.dtype("int64") if statistic == "count" else _stat_dtype(infos[name], statistic)
            )
            columns[f"{name}_{statistic}"] = _numbers(getattr(result, statistic), dtype)
    return _csv(steps, columns)


def _coverage(
    lonlat: tuple[float, float],
    steps: Steps,
    parameters: dict[str, Parameter],
    ranges: Mapping[str, NdArrayFloat | NdArrayInt],
    extra: Mapping[str, Any],
) -> bytes:
    timed = steps.index is not None
    axes: dict[str, Any] = {
        "x": ValuesAxis[float](values=[lonlat[0]]),
        "y": ValuesAxis[float](values=[lonlat[1]]),
    }
    referencing = [
        ReferenceSystemConnectionObject(
            coordinates=["x", "y"], system=ReferenceSystem(type="GeographicCRS", id=CRS84_URI)
        )
    ]
    if timed:
        axes["t"] = ValuesAxis[Any].model_validate({"values": list(steps.labels)})
        referencing.append(
            ReferenceSystemConnectionObject(
                coordinates=["t"], system=ReferenceSystem(type="TemporalRS", calendar="Gregorian")
            )
        )
    domain = Domain(
        domainType=DomainType.point_series if timed else DomainType.point,
        axes=Axes.model_validate(axes),
        referencing=referencing,
    )
    coverage = Coverage(
        domain=domain, parameters=Parameters(parameters), ranges=dict(ranges), **extra
    )
    return coverage.model_dump_json(exclude_none=True).encode()


def _parameter(info: ParameterInfo) -> Parameter:
    observed = ObservedProperty(
        id=info.standard_name,
        label={"en": info.label},
        description={"en": info.description} if info.description else None,
        categories=[
            Category(id=f"{info.name}:{meaning}", label={"en": meaning})
            for _, meaning in info.categories
        ]
        or None,
    )
    return Parameter(
        id=info.name,
        label={"en": info.label},
        observedProperty=observed,
        unit=_unit(info.unit) if not info.categories else None,
        categoryEncoding={f"{info.name}:{meaning}": value for value, meaning in info.categories}
        or None,
    )


def _statistic_parameter(info: ParameterInfo, statistic: str) -> Parameter:
    if statistic == "count":
        label = f"{info.label}: count of valid pixels"
        unit: Unit | None = Unit(label={"en": "pixels"}, symbol="1")
    else:
        label = f"{info.label}: {statistic} over the polygon"
        unit = _unit(info.unit)
    return Parameter(
        id=f"{info.name}_{statistic}",
        label={"en": label},
        observedProperty=ObservedProperty(id=info.standard_name, label={"en": info.label}),
        unit=unit,
    )


def _unit(unit: str | None) -> Unit | None:
    return Unit(label={"en": unit}, symbol=unit) if unit else None


def _range(values: np.ndarray, dtype: np.dtype, steps: Steps) -> NdArrayFloat | NdArrayInt:
    numbers = _numbers(values, dtype)
    timed = steps.index is not None
    axis_names, shape = (["t"], [len(numbers)]) if timed else (None, None)
    if dtype.kind in "iub":
        return NdArrayInt(values=numbers, axisNames=axis_names, shape=shape)
    return NdArrayFloat(values=numbers, axisNames=axis_names, shape=shape)


def _numbers(values: np.ndarray, dtype: np.dtype) -> list[Any]:
    """Python numbers (None for NaN): integers for integer variables, floats written as
    short as the stored precision allows (a float32 0.3 is 0.3, not 0.30000001192092896)."""
    if dtype.kind in "iub":
        return [None if math.isnan(v) else int(v) for v in values.tolist()]
    if dtype == np.float32:
        return [None if math.isnan(v) else float(str(v)) for v in values.astype("float32")]
    return [None if math.isnan(v) else v for v in values.tolist()]


def _stat_dtype(info: ParameterInfo, statistic: str) -> np.dtype:
    """min/max keep the variable's own type; a mean is float64 (of integer classes too)."""
    if statistic in ("min", "max"):
        return info.dtype
    return np.dtype("float64")


def _csv(steps: Steps, columns: Mapping[str, Sequence[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["datetime", *columns])
    labels = steps.labels if steps.index is not None else ("",)
    for row, label in enumerate(labels):
        writer.writerow([label, *("" if c[row] is None else c[row] for c in columns.values())])
    return out.getvalue()


def _categories(attrs: Mapping[str, Any]) -> tuple[tuple[int, str], ...]:
    values = attrs.get("flag_values")
    meanings = attrs.get("flag_meanings")
    if values is None or not isinstance(meanings, str):
        return ()
    codes = [int(v) for v in np.atleast_1d(values)]
    names = meanings.split()
    if len(codes) != len(names):
        return ()
    return tuple(zip(codes, names, strict=True))
