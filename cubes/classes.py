"""The classes of a categorical variable, from what its input says about them (issue 15).

Two sources, the item first (it may carry colours and titles): the STAC classification
extension on the input item -- `classification:classes` on the asset, on the asset's band
(`bands` / `raster:bands` / `eo:bands`: the band named like the variable, or the only one)
or in the item's properties -- else the file's own CF `flag_values` / `flag_meanings`. The
cube writes them back both ways: CF flags in the Zarr variable's attributes and
`classification:classes` in the item's `cube:variables`, so tiles find a class colormap and
STAC clients a legend.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

Classes = list[dict[str, Any]]
BAND_FIELDS = ("bands", "raster:bands", "eo:bands")
CLASS_FIELDS = ("value", "name", "title", "description", "color_hint", "nodata")
NAME_PATTERN = re.compile(r"[^0-9A-Za-z_-]+")  # classification v2.0.0 `name`
HEX_COLOUR = re.compile(r"^[0-9A-Fa-f]{6}$")


def item_classes(
    item: Mapping[str, Any], asset_fields: Mapping[str, Any], variable: str
) -> Classes | None:
    """`classification:classes` that the item states for this variable's data."""
    candidates: list[Any] = [asset_fields.get("classification:classes")]
    for key in BAND_FIELDS:
        bands = [b for b in asset_fields.get(key) or [] if isinstance(b, Mapping)]
        named = [b for b in bands if b.get("name") == variable]
        chosen = named or (bands if len(bands) == 1 else [])
        candidates.extend(band.get("classification:classes") for band in chosen)
    candidates.append((item.get("properties") or {}).get("classification:classes"))
    for candidate in candidates:
        classes = _clean(candidate)
        if classes:
            return classes
    return None


def flag_classes(attrs: Mapping[str, Any]) -> Classes | None:
    """Classes from CF `flag_values` (an array, a list or a space-separated string, as a
    GeoTIFF tag holds it) and `flag_meanings`; None when either is missing or they
    disagree in length."""
    values = attrs.get("flag_values")
    meanings = attrs.get("flag_meanings")
    if values is None or not isinstance(meanings, str):
        return None
    try:
        numbers = [int(v) for v in _as_list(values)]
    except (TypeError, ValueError):
        return None
    names = meanings.split()
    if not numbers or len(numbers) != len(names):
        return None
    return [{"value": v, "name": _name(n)} for v, n in zip(numbers, names, strict=True)]


def flag_attrs(classes: Classes, dtype: np.dtype) -> dict[str, Any]:
    """CF `flag_values` (in the variable's own dtype, as CF asks) and `flag_meanings`."""
    return {
        "flag_values": np.array([c["value"] for c in classes], dtype=dtype),
        "flag_meanings": " ".join(_name(str(c["name"])) for c in classes),
    }


def _as_list(values: Any) -> Sequence[Any]:
    if isinstance(values, str):
        return values.replace(",", " ").split()
    return list(np.atleast_1d(np.asarray(values)).tolist())


def _clean(candidate: Any) -> Classes | None:
    """Well-formed class objects only (integer value, a name), with their known fields."""
    if not isinstance(candidate, list):
        return None
    classes = []
    for entry in candidate:
        if not isinstance(entry, Mapping) or "value" not in entry or "name" not in entry:
            return None
        try:
            value = int(entry["value"])
        except (TypeError, ValueError):
            return None
        kept = {k: entry[k] for k in CLASS_FIELDS if k in entry}
        kept.update(value=value, name=_name(str(entry["name"])))
        if "color_hint" in kept and not HEX_COLOUR.match(str(kept["color_hint"])):
            kept.pop("color_hint")
        classes.append(kept)
    return classes or None


def _name(name: str) -> str:
    """A classification `name` (letters, digits, `-`, `_`) and a CF flag meaning word."""
    return NAME_PATTERN.sub("_", name.strip()) or "class"
