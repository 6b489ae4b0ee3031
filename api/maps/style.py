"""How a variable's values become colours: a colormap (rio-tiler's registry, a JSON map, or
the cube's classes) and, for continuous values, the range stretched over it.

Defaults (README "Map tiles"): a categorical variable -- one whose classes the item names
(`classification:classes`, colours from `color_hint`), one with CF `flag_values`, or one
the cube keeps as integers (`mask_and_scale: false` in the asset's open kwargs) -- gets one
colour per class; a continuous one gets viridis over its valid range: CF `valid_min`/
`valid_max`/`valid_range` when the store has them, else the minimum and maximum of the
coarsest level, computed once per store and variable.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
from rio_tiler.colormap import cmap, parse_color
from rio_tiler.errors import InvalidColorFormat, InvalidColorMapName

from api.maps.source import MapSource
from api.maps.values import decoded_values, kept_as_stored, nodata_of
from catalogue.cube_layout import DATA_ASSET
from catalogue.errors import InvalidInputError

DEFAULT_COLORMAP = "viridis"
# a qualitative palette for classes the cube gives no colour (tab20's colours)
CLASS_PALETTE = "tab20"
RANGE_SAMPLE_ELEMENTS = 16_000_000  # at most this many values read to find a valid range
SPATIAL_SAMPLE = 1024 * 1024  # pixels per step at most (a store without levels is strided)

ColorMap = dict[int, tuple[int, int, int, int]]


@dataclass(frozen=True)
class Style:
    """`colormap` maps the rendered integers to RGBA; `rescale` stretches continuous values
    to 0..255 first (None: class values are drawn as they are)."""

    colormap: ColorMap
    rescale: tuple[float, float] | None


def parse_rescale(text: str | None) -> tuple[float, float] | None:
    if text is None:
        return None
    parts = text.split(",")
    try:
        low, high = (float(part) for part in parts)
    except ValueError as error:
        raise InvalidInputError(
            f"rescale={text!r}: expected two numbers 'min,max', e.g. rescale=0,100"
        ) from error
    if not (math.isfinite(low) and math.isfinite(high)) or low >= high:
        raise InvalidInputError(f"rescale={text!r}: min must be a finite number below max")
    return low, high


def parse_colormap(text: str | None) -> ColorMap | None:
    """A registered colormap name (rio-tiler's `cmap`) or a JSON object {value: colour}."""
    if text is None or text == "":
        return None
    if text.lstrip().startswith("{"):
        return _json_colormap(text)
    try:
        return cast(ColorMap, cmap.get(text.lower()))  # a registered ramp: 256 colours
    except InvalidColorMapName as error:
        raise InvalidInputError(
            f"unknown colormap {text!r}; use a JSON map {{value: [r, g, b, a]}} or one of: "
            f"{', '.join(sorted(cmap.list()))}"
        ) from error


def _json_colormap(text: str) -> ColorMap:
    try:
        raw = json.loads(text)
        if not isinstance(raw, dict) or not raw:
            raise ValueError("not a non-empty JSON object")
        return {int(float(key)): parse_color(value) for key, value in raw.items()}
    except (ValueError, TypeError, InvalidColorFormat) as error:
        raise InvalidInputError(
            f"colormap: a JSON colormap maps integer values to colours, e.g. "
            f'{{"1": [255, 0, 0, 255], "2": "#00ff00"}}: {error}'
        ) from error


def categorical(source: MapSource, variable: str) -> bool:
    if kept_as_stored(source, variable):
        return True
    attrs = source.cube.full_resolution[variable].attrs
    return bool(_classes(source, variable)) or "flag_values" in attrs


def class_colormap(source: MapSource, variable: str, nodata: float | None) -> ColorMap:
    """One colour per class: the item's `color_hint`s, the palette for the others; classes
    marked `nodata` stay transparent."""
    classes = _classes(source, variable)
    gaps = {int(entry["value"]) for entry in classes if entry.get("nodata") is True}
    values: list[int] = [int(entry["value"]) for entry in classes]
    hints = {int(entry["value"]): entry.get("color_hint") for entry in classes}
    if not values:
        flags = source.cube.full_resolution[variable].attrs.get("flag_values")
        values = [int(v) for v in np.atleast_1d(flags)] if flags is not None else []
    if not values:
        values = source_classes(source, variable)
    palette = cast(ColorMap, cmap.get(CLASS_PALETTE))
    colours: ColorMap = {}
    for position, value in enumerate(values):
        if (nodata is not None and value == nodata) or value in gaps:
            continue
        hint = hints.get(value)
        colours[value] = parse_color("#" + hint) if hint else palette[(position * 13) % 256]
    return colours


def _classes(source: MapSource, variable: str) -> list[Mapping[str, Any]]:
    """`classification:classes` for `variable` wherever the item puts them: on its entry
    in `cube:variables`, on a band of the data asset named after it, on the asset."""
    item = source.cube.item
    properties = item.get("properties") or {}
    asset = (item.get("assets") or {}).get(DATA_ASSET) or {}
    places: list[Any] = [(properties.get("cube:variables") or {}).get(variable) or {}]
    places += [band for band in asset.get("bands") or [] if band.get("name") == variable]
    if len(properties.get("cube:variables") or {}) == 1:
        places += [asset, properties]
    for place in places:
        classes = place.get("classification:classes") if isinstance(place, Mapping) else None
        if isinstance(classes, Sequence) and classes:
            return [entry for entry in classes if isinstance(entry, Mapping) and "value" in entry]
    return []


class ValueRanges:
    """Per store and variable: the valid range (continuous) or the classes present
    (categorical) read once from the coarsest level, for the default style."""

    def __init__(self) -> None:
        self._known: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def valid_range(self, source: MapSource, variable: str) -> tuple[float, float]:
        attrs = source.cube.full_resolution[variable].attrs
        declared = _declared_range(attrs)
        if declared is not None:
            return declared
        key = (source.cube.store, variable)
        with self._lock:
            if key in self._known:
                return cast(tuple[float, float], self._known[key])
        values = coarse_values(source, variable)
        found = (float(np.nanmin(values)), float(np.nanmax(values))) if values.size else (0, 1)
        if not all(map(math.isfinite, found)) or found[0] >= found[1]:
            found = (found[0], found[0] + 1) if math.isfinite(found[0]) else (0.0, 1.0)
        with self._lock:
            self._known[key] = found
        return found


def _declared_range(attrs: Mapping[str, Any]) -> tuple[float, float] | None:
    scale, offset = float(attrs.get("scale_factor", 1)), float(attrs.get("add_offset", 0))
    if "valid_range" in attrs:
        low, high = (float(v) * scale + offset for v in attrs["valid_range"])
    elif "valid_min" in attrs and "valid_max" in attrs:
        low, high = (float(attrs[k]) * scale + offset for k in ("valid_min", "valid_max"))
    else:
        return None
    return (low, high) if low < high else None


def source_classes(source: MapSource, variable: str) -> list[int]:
    """The distinct values of the coarsest level (a categorical variable without declared
    classes), at most 256 of them."""
    values = coarse_values(source, variable)
    found = np.unique(values[np.isfinite(values)]).astype("int64")
    return [int(v) for v in found[:256]]


def coarse_values(source: MapSource, variable: str) -> np.ndarray:
    """The coarsest level's values as float64 with nodata as NaN, strided over every
    dimension when the whole level would be too large (a store without levels)."""
    grid = source.levels[-1]
    array = grid.array(variable)
    space = max(1, math.ceil(math.sqrt(grid.height * grid.width / SPATIAL_SAMPLE)))
    per_step = math.ceil(grid.height / space) * math.ceil(grid.width / space)
    leading = array.shape[:-2]
    steps = int(np.prod(leading)) if leading else 1
    stride = max(1, math.ceil(steps * per_step / RANGE_SAMPLE_ELEMENTS))
    first = (slice(None, None, stride), *(slice(None),) * (len(leading) - 1)) if leading else ()
    raw = array[(*first, slice(None, None, space), slice(None, None, space))]
    nodata = nodata_of(source, variable)
    return decoded_values(np.asarray(raw), source, variable, nodata).astype("float64")
