"""Versioned cubes kept in an Icechunk repository (issue 18, "Versioned cubes"): the one
reading of such a repository that the builder (which commits a version per build) and the
API (which serves tiles and EDR queries from the version the item names) share.

A versioned cube is one repository per cube, `<root>/<collection>/<cube id>/cube.icechunk`,
a local folder or an S3 prefix. Its branch `main` is the latest version; each build is one
commit on it, whose snapshot id is the version's id (the item's `version`). A reader opens
the latest version with `Repository.readonly_session(branch="main")`, a past one with
`readonly_session(snapshot_id=...)`; both see one snapshot whole, never a build half
written, which is why a versioned cube needs no new path per build, no grace period and no
sweep.

Inside the repository the full resolution sits at the root group (so that readers that open
the root, as xpystac does, get the data), the coarser levels and the time-series layout in
the groups `1/`, `2/` ... and `timeseries/` (`catalogue.cube_layout`), the root's
`multiscales` layout naming level 0 ".".

Icechunk stores Zarr format 3 only. Icechunk 2 (Python >= 3.12) reads and writes these
Icechunk 1 repositories (its release notes, v2.0.0).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from catalogue.cube_layout import ROOT_ASSET

ICECHUNK_MEDIA_TYPE = "application/vnd.zarr+icechunk"  # what xpystac opens with icechunk
REPOSITORY_NAME = "cube.icechunk"
BRANCH = "main"
ROOT_LEVEL = ROOT_ASSET  # level 0's `asset` in the root's multiscales layout
LATEST_ROLE = "latest-version"  # the asset role xpystac and the version extension use


def is_icechunk(asset: Mapping[str, Any] | None) -> bool:
    """Whether an item's asset is a versioned (Icechunk) cube."""
    return isinstance(asset, Mapping) and asset.get("type") == ICECHUNK_MEDIA_TYPE


def repository_storage(url: str, options: Mapping[str, Any] | None = None) -> Any:
    """The Icechunk storage of the repository at `url`: a local folder, or `s3://bucket/
    prefix` with the fsspec-style `options` an item carries (`endpoint_url`, `anon`).
    Credentials are never in `options`: without `anon`, Icechunk reads AWS_* (and
    AWS_ENDPOINT_URL) from the environment. A custom endpoint (MinIO, moto) is addressed
    path-style, the form every S3-compatible server answers."""
    import icechunk

    parts = urlsplit(url)
    if parts.scheme in ("", "file"):
        return icechunk.local_filesystem_storage(parts.path if parts.scheme else url)
    if parts.scheme != "s3":
        raise ValueError(f"an Icechunk cube lives on a local folder or S3, not {url!r}")
    options = dict(options or {})
    endpoint = options.get("endpoint_url")
    anonymous = bool(options.get("anon"))
    return icechunk.s3_storage(
        bucket=parts.netloc,
        prefix=parts.path.strip("/"),
        region=options.get("region"),
        endpoint_url=endpoint,
        allow_http=bool(endpoint) and str(endpoint).startswith("http://"),
        force_path_style=bool(endpoint),
        anonymous=anonymous or None,
        from_env=None if anonymous else True,
    )


def open_repository(url: str, options: Mapping[str, Any] | None = None) -> Any:
    """The repository at `url` (icechunk.Repository); raises when there is none."""
    import icechunk

    return icechunk.Repository.open(repository_storage(url, options))


def version_store(repository: Any, snapshot_id: str | None = None) -> Any:
    """A read-only Zarr store of one version: `snapshot_id`, else the tip of `main`."""
    if snapshot_id is None:
        return repository.readonly_session(branch=BRANCH).store
    return repository.readonly_session(snapshot_id=snapshot_id).store
