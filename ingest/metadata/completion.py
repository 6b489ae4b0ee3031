"""Completing upstream items whose GeoTIFF assets lack grid or data-type metadata.

Without `proj:shape`/`proj:transform` and a CRS, GDAL's STACIT, stackstac and odc-stac
cannot place an asset without being told the grid by hand; without a band `data_type`,
odc-stac loads integer classes as float. The file itself knows all of it: one header read
(a COG's first bytes; no pixel is read) gives the grid, the CRS and each band's data type
and nodata, which are added at the asset level -- never overwriting what the item says.

Only GeoTIFF assets (by media type or suffix) with the `data` role (or no roles) are read,
and only local or HTTP(S) ones; at most `MAX_ASSETS` per item. A file that cannot be read
leaves the item as it was (a warning says why): the item itself is still good.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urlsplit

import rasterio
from pystac.utils import make_absolute_href

from catalogue.projection import (
    CRS_NAMES,
    PROJECTION_V2_PREFIX,
    declared_projection,
    stated_crs,
)
from catalogue.projection import PROJECTION_EXTENSION as PROJECTION_V1_2
from ingest.metadata.geotiff import GridInfo, read_grid

logger = logging.getLogger(__name__)

MAX_ASSETS = 16
TIFF_SUFFIXES = (".tif", ".tiff")
GRID_NAMES = ("proj:shape", "proj:transform")
READABLE_SCHEMES = frozenset({"", "file", "http", "https"})

GridReader = Callable[[str], GridInfo]


def assets_to_complete(item: dict[str, Any]) -> list[str]:
    """Keys of the item's GeoTIFF data assets that lack a grid or band data types."""
    properties = item.get("properties") or {}
    assets = item.get("assets") or {}
    wanted = [
        key
        for key, asset in assets.items()
        if isinstance(asset, dict) and _is_readable_tiff(asset) and _lacks(asset, properties)
    ]
    return wanted[:MAX_ASSETS]


def _is_readable_tiff(asset: dict[str, Any]) -> bool:
    roles = asset.get("roles") or ["data"]
    href = asset.get("href")
    if "data" not in roles or not isinstance(href, str):
        return False
    scheme = urlsplit(href).scheme.lower()
    if (scheme if len(scheme) > 1 else "") not in READABLE_SCHEMES:
        return False  # s3:// and the like are not read (credentials, cost); `c:` is a drive
    media_type = str(asset.get("type") or "").lower()
    if media_type:
        return "tiff" in media_type
    return urlsplit(href).path.lower().endswith(TIFF_SUFFIXES)


def _lacks(asset: dict[str, Any], properties: dict[str, Any]) -> bool:
    known = {**properties, **asset}
    no_grid = any(name not in known for name in GRID_NAMES) or not (CRS_NAMES & set(known))
    return no_grid or not _has_data_types(asset)


def _has_data_types(asset: dict[str, Any]) -> bool:
    for field in ("bands", "raster:bands"):
        bands = asset.get(field)
        if (
            isinstance(bands, list)
            and bands
            and all(isinstance(band, dict) and band.get("data_type") for band in bands)
        ):
            return True
    return False


def complete_asset(item: dict[str, Any], key: str, grid: GridInfo) -> list[str]:
    """Add to asset `key` the fields read from its file that the item lacks (pure)."""
    asset: dict[str, Any] = item["assets"][key]
    added = _complete_projection(item, asset, grid.projection)
    if not _has_data_types(asset):
        added += _complete_bands(asset, grid.bands)
    return added


def _complete_projection(
    item: dict[str, Any], asset: dict[str, Any], fields: dict[str, Any]
) -> list[str]:
    extensions: list[str] = list(item.get("stac_extensions") or [])
    declared = declared_projection(extensions)
    known = {**(item.get("properties") or {}), **asset}
    if not _same_crs(known, fields):
        return []  # the item says another CRS: the file's grid would not fit its words
    added = []
    for name, value in fields.items():
        if name in known:
            continue
        if name == "proj:epsg" and (declared or "").startswith(PROJECTION_V2_PREFIX):
            continue  # v2.0.0 has no proj:epsg (its schema rejects it)
        asset[name] = value
        added.append(name)
    if added and declared is None:
        item["stac_extensions"] = [*extensions, PROJECTION_V1_2]
    return added


def _same_crs(known: dict[str, Any], fields: dict[str, Any]) -> bool:
    """True when the item names no CRS, or the same EPSG code as the file."""
    stated = stated_crs(known)
    return stated is None or stated == fields.get("proj:code")


def _complete_bands(asset: dict[str, Any], bands: list[dict[str, Any]]) -> list[str]:
    for field in ("bands", "raster:bands"):
        existing = asset.get(field)
        if isinstance(existing, list) and existing:
            if len(existing) != len(bands) or not all(isinstance(b, dict) for b in existing):
                return []  # bands that do not match the file's: leave them alone
            for band, read in zip(existing, bands, strict=True):
                for name, value in read.items():
                    band.setdefault(name, value)
            return [f"{field}.data_type"]
    asset["bands"] = [dict(band) for band in bands]
    return ["bands"]


def local_or_url(href: str) -> str:
    """`file://` URLs as paths (rasterio opens paths and, with an opener, URLs)."""
    parts = urlsplit(href)
    return unquote(parts.path) if parts.scheme == "file" else href


class HeaderReader:
    """Reads GeoTIFF headers for `complete_item` with GDAL itself: local files directly,
    HTTP(S) through `/vsicurl/` (thread-safe, unlike a shared Python opener), without the
    directory listing GDAL would otherwise ask for, one attempt within `timeout_s`."""

    def __init__(self, timeout_s: float = 30.0) -> None:
        self.options = {
            "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
            "GDAL_HTTP_TIMEOUT": str(max(1, math.ceil(timeout_s))),
            "GDAL_HTTP_MAX_RETRY": "0",
        }

    def read(self, href: str) -> GridInfo:
        with rasterio.Env(**self.options):
            return read_grid(local_or_url(href))


async def complete_item(item: dict[str, Any], item_url: str, reader: GridReader) -> list[str]:
    """Complete every GeoTIFF asset of `item` that needs it (header reads in threads);
    returns the `asset.field` names added."""
    added: list[str] = []
    for key in assets_to_complete(item):
        href = make_absolute_href(item["assets"][key]["href"], item_url)
        try:
            grid = await asyncio.to_thread(reader, href)
        except Exception as error:  # noqa: BLE001 - any unreadable file leaves the item as is
            logger.warning("item %s: cannot read the header of %s: %s", item_url, href, error)
            continue
        added += [f"{key}.{name}" for name in complete_asset(item, key, grid)]
    return added
