"""GeoTIFF / COG metadata, read with rio-stac's helpers, in STAC 1.1 terms.

rio-stac (0.12) speaks projection v1.1 and raster v1.1 (`raster:bands`); the catalogue holds
STAC 1.1 items, so the same facts are written the 1.1 way: the common `bands` with
`data_type`, `nodata`, `statistics` and `unit`, plus the raster v2.0.0 fields that are not
common metadata (`raster:scale`, `raster:offset`, `raster:sampling`, `raster:histogram`).
The CRS is written as both `proj:epsg` and `proj:code` (projection v1.2.0, see
`catalogue.projection`), which every widely deployed reader understands.

`read_grid` is the cheap variant for completing upstream items: the header only (grid, CRS,
band data types and nodata), no pixel is read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import rasterio
from fsspec.spec import AbstractFileSystem
from rasterio.io import DatasetReader
from rio_stac.stac import get_dataset_geom, get_media_type, get_projection_info, get_raster_info

from catalogue.projection import crs_fields

COG_MEDIA_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"
GEOTIFF_MEDIA_TYPE = "image/tiff; application=geotiff"
STATISTICS = ("minimum", "maximum", "mean", "stddev", "valid_percent")


@dataclass(frozen=True)
class RasterInfo:
    """What a GeoTIFF says about itself, ready to be put into an item."""

    footprint: dict[str, Any]
    bbox: list[float]
    projection: dict[str, Any]
    bands: list[dict[str, Any]]
    media_type: str
    acquired: datetime | None


def read_geotiff(filesystem: AbstractFileSystem, path: str, local: bool) -> RasterInfo:
    """Open the file (ranges only, through fsspec when remote) and read its metadata."""
    opener = None if local else filesystem
    with rasterio.open(path, opener=opener) as dataset:
        geometry = get_dataset_geom(dataset, densify_pts=21, precision=7)
        projection = get_projection_info(dataset)
        bands = get_raster_info(dataset, max_size=1024)
        is_cog = dataset.tags(ns="IMAGE_STRUCTURE").get("LAYOUT", "").upper() == "COG"
        media_type = COG_MEDIA_TYPE if is_cog else str(get_media_type(dataset) or "image/tiff")
        stamp = dataset.tags().get("TIFFTAG_DATETIME")
    return RasterInfo(
        footprint=geometry["footprint"],
        bbox=[round(value, 7) for value in geometry["bbox"]],
        projection=_projection(projection),
        bands=[_band(index, band) for index, band in enumerate(bands, start=1)],
        media_type=media_type if media_type != "image/tiff" else GEOTIFF_MEDIA_TYPE,
        acquired=_tiff_datetime(stamp),
    )


def _projection(info: dict[str, Any]) -> dict[str, Any]:
    return {
        **crs_fields(info.get("epsg"), info.get("wkt2")),
        "proj:bbox": list(info["bbox"]),
        "proj:shape": list(info["shape"]),
        "proj:transform": list(info["transform"]),
    }


@dataclass(frozen=True)
class GridInfo:
    """A raster's header: its `proj:` fields and, per band, `data_type` (and `nodata`);
    `scaling` is GDAL's (scale, offset) per band."""

    projection: dict[str, Any]
    bands: list[dict[str, Any]]
    scaling: list[tuple[float, float]] = field(default_factory=list)


def read_grid(path: str, opener: AbstractFileSystem | None = None) -> GridInfo:
    """The header of a raster (local path, or through `opener`, an fsspec file system)."""
    with rasterio.open(path, opener=opener) as dataset:
        return grid_info(dataset)


def grid_info(dataset: DatasetReader) -> GridInfo:
    crs = dataset.crs
    epsg = crs.to_epsg() if crs is not None else None
    wkt2 = crs.to_wkt("WKT2_2019") if crs is not None and not epsg else None
    projection: dict[str, Any] = crs_fields(epsg, wkt2) if crs is not None else {}
    projection["proj:shape"] = [dataset.height, dataset.width]
    projection["proj:transform"] = list(dataset.transform)[:6]
    projection["proj:bbox"] = list(dataset.bounds)
    bands = []
    for dtype, nodata in zip(dataset.dtypes, dataset.nodatavals, strict=True):
        band: dict[str, Any] = {"data_type": dtype}
        if nodata is not None:
            band["nodata"] = _nodata(nodata)
        bands.append(band)
    scaling = list(zip(dataset.scales, dataset.offsets, strict=True))
    return GridInfo(projection, bands, scaling)


def _nodata(value: float) -> float | int | str:
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return int(value) if float(value).is_integer() else value


def _band(index: int, band: dict[str, Any]) -> dict[str, Any]:
    converted: dict[str, Any] = {"name": f"b{index}", "data_type": band["data_type"]}
    if "nodata" in band:
        converted["nodata"] = band["nodata"]
    if band.get("unit"):
        converted["unit"] = band["unit"]
    statistics = band.get("statistics") or {}
    converted["statistics"] = {key: statistics[key] for key in STATISTICS if key in statistics}
    if band.get("scale") not in (None, 1.0):
        converted["raster:scale"] = band["scale"]
    if band.get("offset") not in (None, 0.0):
        converted["raster:offset"] = band["offset"]
    if band.get("sampling"):
        converted["raster:sampling"] = band["sampling"]
    if band.get("histogram"):
        converted["raster:histogram"] = band["histogram"]
    return converted


def _tiff_datetime(stamp: str | None) -> datetime | None:
    """TIFFTAG_DATETIME is `YYYY:MM:DD HH:MM:SS`, without a zone: taken as UTC."""
    if not stamp:
        return None
    try:
        return datetime.strptime(stamp.strip(), "%Y:%m:%d %H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return None
