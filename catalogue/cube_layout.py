"""How a cube store is laid out, the one reading that the builder (which writes it) and the
API (which serves tiles and time series from it) share.

A cube store written with levels is a GeoZarr multiscales group (the `multiscales` Zarr
convention, https://github.com/zarr-conventions/multiscales):

    <version>.zarr/            root group: `multiscales` layout, `proj:code`, `spatial:*`
      0/                       full resolution: what the item's `zarr` asset opens
      1/ 2/ ...                each half the size of the one before, down to one tile
      timeseries/              optional: the full resolution chunked long in time

Level groups are named by their index; level k is derived from level 0 (never from k-1, so
errors do not compound) with a scale of 2**k. A store written before levels existed has
its data at the root and no `multiscales` attribute: it reads as one level at path "".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MULTISCALES_UUID = "d35379db-88df-4056-af3a-620245f8e347"
MULTISCALES_CONVENTION = {
    "uuid": MULTISCALES_UUID,
    "name": "multiscales",
    "schema_url": "https://raw.githubusercontent.com/zarr-conventions/multiscales/refs/tags/v1/schema.json",
    "spec_url": "https://github.com/zarr-conventions/multiscales/blob/v1/README.md",
    "description": "Multiscale layout of zarr datasets",
}
FULL_RESOLUTION_GROUP = "0"
SPATIAL_DIMS = ("y", "x")  # a cube's spatial dimensions, last in every variable
TIMESERIES_GROUP = "timeseries"
DATA_ASSET = "zarr"  # level 0: what `xr.open_zarr(href)` users and xpystac open
TIMESERIES_ASSET = "zarr-timeseries"  # the time-series layout, when the cube has one
PYRAMID_ASSET = "zarr-multiscales"  # the store root: every level, for GDAL / datatree readers
LEGACY_ROOT = ""  # the path of the only level of a store written without levels
ROOT_ASSET = "."  # a level kept in the root group itself (a versioned cube's level 0)


@dataclass(frozen=True, slots=True)
class Level:
    """One resolution level: its group path inside the store, its scale relative to the
    full resolution, and (when known) its size and affine transform `[a, b, c, d, e, f]`
    (x = a*col + b*row + c, y = d*col + e*row + f: rasterio's order, as `spatial:transform`;
    not GDAL's geotransform order)."""

    path: str
    scale: float = 1.0
    shape: tuple[int, int] | None = None  # (height, width)
    transform: tuple[float, float, float, float, float, float] | None = None
    resampling: str | None = None


def level_path(index: int) -> str:
    return str(index)


def multiscales_attrs(
    levels: Sequence[Level], default_resampling: str, dims: Sequence[str] | None = None
) -> dict[str, Any]:
    """The root group's attributes that describe `levels` (level 0 first).

    With `dims`, the dimensions every gridded variable has, a level is `derived_from` level
    0 with a `transform.scale` factor per dimension (1 along all but y and x), as GDAL
    (3.13 on) writes it; GDAL checks such a scale against each array's dimensions and skips
    the level for an array of another length. Without (variables of different dimensions:
    a static class map beside a time series), the scale covers y and x and no level names
    `derived_from`, which GDAL takes as a level of every array whose y/x sizes match its
    `spatial:shape`."""
    layout: list[dict[str, Any]] = []
    for level in levels:
        axes = dims if dims is not None else SPATIAL_DIMS
        scale = [level.scale if dim in SPATIAL_DIMS else 1.0 for dim in axes]
        entry: dict[str, Any] = {"asset": level.path, "transform": {"scale": scale}}
        if level.path != FULL_RESOLUTION_GROUP and dims is not None:
            entry["derived_from"] = FULL_RESOLUTION_GROUP
        if level.resampling:
            entry["resampling_method"] = level.resampling
        if level.transform is not None:
            entry["spatial:transform"] = list(level.transform)
        if level.shape is not None:
            entry["spatial:shape"] = list(level.shape)
        layout.append(entry)
    return {
        "zarr_conventions": [MULTISCALES_CONVENTION],
        "multiscales": {"layout": layout, "resampling_method": default_resampling},
    }


def levels_from_attrs(attrs: Mapping[str, Any]) -> list[Level]:
    """The levels a root group's attributes describe, finest first; one legacy level
    (path "") when the store has no `multiscales` attribute."""
    multiscales = attrs.get("multiscales")
    layout = multiscales.get("layout") if isinstance(multiscales, Mapping) else None
    if not isinstance(layout, list) or not layout:
        return [Level(LEGACY_ROOT)]
    default = multiscales.get("resampling_method") if isinstance(multiscales, Mapping) else None
    levels = [_level(entry, default) for entry in layout if isinstance(entry, Mapping)]
    return sorted(levels, key=lambda level: level.scale)


def _level(entry: Mapping[str, Any], default_resampling: Any) -> Level:
    scale = (entry.get("transform") or {}).get("scale") or [1.0]  # x's factor: the last
    shape = entry.get("spatial:shape")
    transform = entry.get("spatial:transform")
    resampling = entry.get("resampling_method", default_resampling)
    path = str(entry["asset"])
    return Level(
        path=LEGACY_ROOT if path == ROOT_ASSET else path,
        scale=float(scale[-1]),
        shape=(int(shape[0]), int(shape[1])) if shape and len(shape) == 2 else None,
        transform=tuple(float(v) for v in transform)  # type: ignore[arg-type]
        if transform and len(transform) == 6
        else None,
        resampling=str(resampling) if resampling else None,
    )


def store_url(href: str) -> str:
    """The store (version) URL of an asset href: the href of a level or time-series group
    without its group, a legacy store's href as it is."""
    trimmed = href.rstrip("/")
    head, _, tail = trimmed.rpartition("/")
    if head.endswith(".zarr") and (tail == TIMESERIES_GROUP or tail.isdigit()):
        return head
    return trimmed


def group_url(store: str, path: str) -> str:
    """The URL of the group at `path` inside `store` ("" is the store itself)."""
    return f"{store.rstrip('/')}/{path}" if path else store.rstrip("/")
