"""The storage extension v2.0.0: how a reader reaches the S3 bucket behind an asset.

Storage v2.0.0 (https://github.com/stac-extensions/storage/blob/v2.0.0/README.md) puts
one Storage Scheme Object per bucket into `storage:schemes` -- in an item's properties (its
schema requires them there once an item declares the extension), or at the top level of a
collection -- and each asset names the schemes it is reached through in `storage:refs`.
A scheme states the platform (the endpoint URL, a URI template on AWS), the bucket, the
region and whether the requester pays; `anonymous` (no credentials needed) is not in the
extension but is what xpystac's Icechunk reader looks for (`xpystac._icechunk`), and
schemes may carry more fields.

Two platforms, as the extension's platform notes name them: AWS (`type: aws-s3`, platform
`https://{bucket}.s3.{region}.amazonaws.com`) and any other S3-compatible store -- MinIO,
Ceph, moto in the tests -- (`type: custom-s3`, platform the endpoint URL itself, which is
what GDAL's AWS_S3_ENDPOINT, `aws --endpoint-url` and s3fs's `endpoint_url` take).

Items keep `xarray:storage_options` beside these fields: xpystac 0.5 opens a Zarr asset
with `xarray:open_kwargs` / `xarray:storage_options` and does not read `storage:` fields,
except for Icechunk assets.

`add_storage_fields` is the one entry point: cube items, harvested items and Icechunk
assets all call it with the `S3Access` their store is read with.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

STORAGE_EXTENSION = "https://stac-extensions.github.io/storage/v2.0.0/schema.json"
SCHEMES = "storage:schemes"
REFS = "storage:refs"
AWS_PLATFORM = "https://{bucket}.s3.{region}.amazonaws.com"
# what boto3/s3fs use when no region is configured; AWS's platform template needs one
DEFAULT_AWS_REGION = "us-east-1"


@dataclass(frozen=True)
class S3Access:
    """How readers reach the buckets of a set of assets, never with credentials.

    `endpoint_url` None means AWS itself; `region` None means the AWS default (or, for
    another S3 store, that the store has none to state)."""

    endpoint_url: str | None = None
    region: str | None = None
    anonymous: bool = False
    requester_pays: bool = False

    @classmethod
    def from_options(
        cls, storage_options: Mapping[str, Any], region: str | None = None
    ) -> S3Access:
        """From s3fs storage options (`endpoint_url`, `anon`, `requester_pays`,
        `client_kwargs.region_name`); `region` when the options name none."""
        client = storage_options.get("client_kwargs") or {}
        endpoint = storage_options.get("endpoint_url") or client.get("endpoint_url")
        return cls(
            endpoint_url=str(endpoint) if endpoint else None,
            region=client.get("region_name") or region,
            anonymous=bool(storage_options.get("anon", False)),
            requester_pays=bool(storage_options.get("requester_pays", False)),
        )


def environment_region() -> str | None:
    """The region boto3 would use: AWS_REGION, else AWS_DEFAULT_REGION (read when called)."""
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None


def s3_bucket(href: str) -> str | None:
    """The bucket of an `s3://bucket/key` href, None for any other href."""
    parts = urlsplit(href)
    return parts.netloc or None if parts.scheme == "s3" else None


def scheme_key(bucket: str, access: S3Access) -> str:
    """The `storage:schemes` key of a bucket: readable, one per bucket and platform."""
    return f"{'aws' if access.endpoint_url is None else 'custom'}-s3-{bucket}"


def storage_scheme(bucket: str, access: S3Access) -> dict[str, Any]:
    """The Storage Scheme Object of one bucket."""
    scheme: dict[str, Any]
    if access.endpoint_url is None:
        region = access.region or DEFAULT_AWS_REGION
        scheme = {"type": "aws-s3", "platform": AWS_PLATFORM, "bucket": bucket, "region": region}
    else:
        scheme = {"type": "custom-s3", "platform": access.endpoint_url.rstrip("/")}
        scheme["bucket"] = bucket
        if access.region:
            scheme["region"] = access.region
    scheme["requester_pays"] = access.requester_pays
    scheme["anonymous"] = access.anonymous
    return scheme


def add_storage_fields(
    document: dict[str, Any], access: S3Access, asset_keys: Iterable[str] | None = None
) -> dict[str, Any]:
    """Give each `s3://` asset of an item or collection (those of `asset_keys`, else all)
    its `storage:refs`, add their schemes to `storage:schemes` (item properties, or a
    collection's top level) and declare the extension. Schemes already there are kept.
    Nothing changes when no chosen asset is on S3. Returns `document` (changed in place)."""
    assets: dict[str, Any] = document.get("assets") or {}
    keys = list(assets) if asset_keys is None else list(asset_keys)
    schemes: dict[str, dict[str, Any]] = {}
    for key in keys:
        asset = assets.get(key)
        if not isinstance(asset, dict) or not isinstance(href := asset.get("href"), str):
            continue
        bucket = s3_bucket(href)
        if bucket is None:
            continue
        name = scheme_key(bucket, access)
        schemes[name] = storage_scheme(bucket, access)
        asset[REFS] = sorted({*asset.get(REFS, ()), name})
    if schemes:
        holder = _scheme_holder(document)
        holder[SCHEMES] = {**(holder.get(SCHEMES) or {}), **schemes}
        extensions = document.setdefault("stac_extensions", [])
        if STORAGE_EXTENSION not in extensions:
            extensions.append(STORAGE_EXTENSION)
    return document


def drop_storage_refs(document: dict[str, Any], asset: dict[str, Any]) -> None:
    """Forget how `asset` (one of `document`'s) is reached on S3 -- its href was swapped
    for an HTTP(S) URL -- and drop the schemes, then the extension, nothing refers to any
    more (the schema requires `storage:schemes` wherever the extension is declared)."""
    asset.pop(REFS, None)
    holder = _scheme_holder(document)
    schemes = holder.get(SCHEMES)
    if not isinstance(schemes, dict):
        return
    used = {
        ref
        for other in (document.get("assets") or {}).values()
        if isinstance(other, dict)
        for ref in other.get(REFS) or ()
    }
    kept = {key: scheme for key, scheme in schemes.items() if key in used}
    if kept:
        holder[SCHEMES] = kept
        return
    holder.pop(SCHEMES, None)
    extensions = document.get("stac_extensions")
    if isinstance(extensions, list) and STORAGE_EXTENSION in extensions:
        extensions.remove(STORAGE_EXTENSION)


def _scheme_holder(document: dict[str, Any]) -> dict[str, Any]:
    """Where `storage:schemes` lives: an item's properties, a collection's top level."""
    if document.get("type") == "Feature":
        properties: dict[str, Any] = document.setdefault("properties", {})
        return properties
    return document
