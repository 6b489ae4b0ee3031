"""Which asset of an item to open, in which format, from where (local, HTTP, S3).

Formats are told by media type first and by the href's suffix second; anything else is an
error that names the asset, since guessing a reader would fail later with a worse message.
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from cubes.errors import InputError

OPENABLE_ROLES = ("data",)


class AssetFormat(enum.StrEnum):
    GEOTIFF = "geotiff"
    NETCDF = "netcdf"
    ZARR = "zarr"


MEDIA_TYPE_HINTS = (
    ("tiff", AssetFormat.GEOTIFF),
    ("netcdf", AssetFormat.NETCDF),
    ("x-hdf", AssetFormat.NETCDF),
    ("zarr", AssetFormat.ZARR),
)
SUFFIXES = {
    ".tif": AssetFormat.GEOTIFF,
    ".tiff": AssetFormat.GEOTIFF,
    ".nc": AssetFormat.NETCDF,
    ".nc4": AssetFormat.NETCDF,
    ".h5": AssetFormat.NETCDF,
    ".zarr": AssetFormat.ZARR,
}


@dataclass(frozen=True)
class AssetRef:
    """One asset to open: where it is and how to read it."""

    key: str
    href: str
    format: AssetFormat
    fields: dict[str, Any]

    @property
    def is_remote(self) -> bool:
        return urlsplit(self.href).scheme in ("http", "https", "s3")

    @property
    def storage_options(self) -> dict[str, Any]:
        return storage_options_for(self.href)


def pick_asset(item: dict[str, Any], key: str | None, cube: str, where: str) -> AssetRef:
    """The configured asset, else the only data asset, else the only openable asset."""
    assets: dict[str, dict[str, Any]] = item.get("assets") or {}
    label = f"{where}, item {item.get('id')!r}"
    if key is not None:
        if key not in assets:
            raise InputError(
                f"has no asset {key!r} (assets: {', '.join(sorted(assets)) or 'none'})",
                cube=cube,
                where=label,
            )
        return _ref(key, assets[key], cube, label)
    candidates = [k for k, a in assets.items() if set(a.get("roles") or ()) & set(OPENABLE_ROLES)]
    if len(candidates) != 1:
        candidates = [k for k, a in assets.items() if _format(a) is not None]
    if len(candidates) != 1:
        raise InputError(
            f"cannot tell which asset to open among {', '.join(sorted(assets)) or 'none'}; "
            "set `asset:` on the input",
            cube=cube,
            where=label,
        )
    return _ref(candidates[0], assets[candidates[0]], cube, label)


def virtual_references(item: dict[str, Any], data: AssetRef) -> AssetRef | None:
    """The item's Kerchunk references to its NetCDF data asset (what `virtual_refs`
    harvests: a JSON asset with the `references` role), read instead of the file: one JSON
    read opens it, and chunks come as byte ranges even from HTTP and S3. None when the data
    asset is not NetCDF or the item has no single such asset.

    A GeoTIFF/COG keeps being read by rioxarray from the file, references or not: GDAL
    reads every TIFF (virtual-tiff refuses pixel-interleaved bands, JPEG...), names the
    bands from their descriptions, and a COG's header is at its start, so GDAL's range
    reads gain nothing from an index (NetCDF's do: HDF5 over HTTP is many small reads)."""
    if data.format is not AssetFormat.NETCDF:
        return None
    found = [
        (key, asset)
        for key, asset in (item.get("assets") or {}).items()
        if isinstance(asset, dict)
        and "references" in (asset.get("roles") or ())
        and str(asset.get("type") or "").lower() == "application/json"
        and isinstance(asset.get("href"), str)
    ]
    if len(found) != 1:
        return None
    key, asset = found[0]
    return AssetRef(key, local_path(asset["href"]), AssetFormat.ZARR, asset)


def _ref(key: str, asset: dict[str, Any], cube: str, label: str) -> AssetRef:
    href = asset.get("href")
    if not isinstance(href, str) or not href:
        raise InputError(f"asset {key!r} has no href", cube=cube, where=label)
    kind = _format(asset)
    if kind is None:
        raise InputError(
            f"asset {key!r} ({asset.get('type') or 'no media type'}, {href}) is not GeoTIFF, "
            "NetCDF or Zarr",
            cube=cube,
            where=label,
        )
    return AssetRef(key, local_path(href), kind, asset)


def _format(asset: dict[str, Any]) -> AssetFormat | None:
    media_type = str(asset.get("type") or "").lower()
    for hint, kind in MEDIA_TYPE_HINTS:
        if hint in media_type:
            return kind
    path = urlsplit(str(asset.get("href") or "")).path.rstrip("/").lower()
    return next((kind for suffix, kind in SUFFIXES.items() if path.endswith(suffix)), None)


def local_path(href: str) -> str:
    """`file://` URLs become plain paths: GDAL, netCDF4 and zarr all take paths."""
    parts = urlsplit(href)
    if parts.scheme == "file":
        return unquote(parts.path)
    return href


def storage_options_for(url: str) -> dict[str, Any]:
    """fsspec options for an S3 URL when an S3-compatible endpoint is configured (MinIO,
    moto); credentials are left to the usual AWS_* variables, never copied into items."""
    if urlsplit(url).scheme != "s3":
        return {}
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    return {"endpoint_url": endpoint} if endpoint else {}


def configure_gdal_s3() -> None:
    """Make GDAL (GeoTIFF reads) use the S3-compatible endpoint boto/s3fs use. GDAL takes
    its settings from the process environment, which dask worker processes inherit, so
    this is set once per run, before inputs are opened or clusters started."""
    os.environ.update(gdal_s3_options())


def gdal_s3_options() -> dict[str, str]:
    """GDAL's names for an S3-compatible endpoint (it does not read AWS_ENDPOINT_URL)."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if not endpoint or "AWS_S3_ENDPOINT" in os.environ:
        return {}
    parts = urlsplit(endpoint)
    return {
        "AWS_S3_ENDPOINT": parts.netloc,
        "AWS_HTTPS": "YES" if parts.scheme == "https" else "NO",
        "AWS_VIRTUAL_HOSTING": "FALSE",
    }
