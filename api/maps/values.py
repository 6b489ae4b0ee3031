"""From stored numbers to values: nodata as NaN, CF `scale_factor`/`add_offset` applied.

Tiles read raw Zarr chunks (api.maps.source), so they decode what xarray would have: the
variable's nodata (`cube:variables[v].nodata`, else the Zarr fill value for continuous
variables; a categorical variable's fill value can be a class, so only its declared nodata
is a gap) becomes NaN, which the map draws transparent.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from api.maps.source import MapSource
from catalogue.cube_layout import DATA_ASSET


def nodata_of(source: MapSource, variable: str) -> float | None:
    declared = ((source.cube.item.get("properties") or {}).get("cube:variables") or {}).get(
        variable, {}
    )
    value: Any = declared.get("nodata") if isinstance(declared, dict) else None
    if value is not None:
        return math.nan if value == "nan" else float(value)
    if kept_as_stored(source, variable):
        return None
    fill = source.full.array(variable).fill_value
    try:
        return float(fill) if fill is not None else None
    except (TypeError, ValueError):
        return None


def kept_as_stored(source: MapSource, variable: str) -> bool:
    asset = (source.cube.item.get("assets") or {}).get(DATA_ASSET) or {}
    decoded = (asset.get("xarray:open_kwargs") or {}).get("mask_and_scale")
    return isinstance(decoded, dict) and decoded.get(variable) is False


def decoded_values(
    raw: np.ndarray, source: MapSource, variable: str, nodata: float | None
) -> np.ndarray:
    """`raw` as float32 with nodata as NaN and CF scaling applied."""
    values = raw.astype("float32", copy=True)
    if nodata is not None and not math.isnan(nodata):
        values[raw == nodata] = np.nan
    attrs = source.full.array(variable).attrs
    scale, offset = attrs.get("scale_factor"), attrs.get("add_offset")
    if isinstance(scale, int | float):
        values *= np.float32(scale)
    if isinstance(offset, int | float):
        values += np.float32(offset)
    return values
