"""Serving a local cube root under `/cubes/...` so that Zarr readers open cubes over HTTP.

Starlette's StaticFiles does the hard parts, maintained upstream: path confinement (the
resolved path must stay under the root, so `..`, encoded variants and symlinks pointing
out are refused), GET and HEAD, byte ranges (206, 416 beyond the end), ETag and
Last-Modified with 304s, streaming in chunks, 404 for directories (no listing). We add
the Zarr content types and a Cache-Control: a published cube version is never rewritten
(a rebuild writes a new version path), so its files may be cached.
"""

from __future__ import annotations

import mimetypes
import os
from pathlib import Path

from starlette.responses import FileResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from catalogue.cube_root import local_root, normalise_root
from catalogue.serializers import CubeHrefs
from catalogue.settings import Settings

ZARR_JSON_NAMES = frozenset({".zmetadata", ".zarray", ".zattrs", ".zgroup", "zarr.json"})
CACHE_CONTROL = "public, max-age=3600"
# Body pieces of 1 MiB rather than Starlette's 64 KiB: a Zarr chunk (often 0.5-10 MB) goes
# out in a few messages instead of dozens, each a thread hop and a pass through every
# middleware (bench/open.py: the 512 x 512 window read over HTTP).
CHUNK_BYTES = 1024 * 1024


def local_cube_root(settings: Settings) -> Path | None:
    """The cube root when it is a local folder (not `s3://` or another URL)."""
    return local_root(settings.cube_root) if settings.cube_root else None


def cube_hrefs(settings: Settings) -> CubeHrefs | None:
    """How cube asset hrefs are rewritten in responses: a local root's paths become URLs
    under `/cubes/` (or `CUBESTAC_CUBE_PUBLIC_BASE`); an S3 root's `s3://` URLs become URLs
    under `CUBESTAC_CUBE_PUBLIC_BASE` when it is set, and are handed out as stored when not.
    The prefix is the one `catalogue.cube_root.normalise_root` gives stored hrefs."""
    public = str(settings.cube_public_base) if settings.cube_public_base else None
    if public is not None and not public.endswith("/"):
        public += "/"
    local = local_cube_root(settings)
    if local is not None:
        return CubeHrefs(f"{local}/", public)
    if settings.cube_root and public is not None:
        return CubeHrefs(f"{normalise_root(settings.cube_root)}/", public)
    return None


class CubeFiles(StaticFiles):
    """Read-only files under the cube root, with Zarr-aware content types."""

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        name = os.path.basename(full_path)
        if name in ZARR_JSON_NAMES:
            response.headers["content-type"] = "application/json"
        elif mimetypes.guess_type(name)[0] is None:  # Zarr chunk keys: "0.0.1", "c/0/1"
            response.headers["content-type"] = "application/octet-stream"
        response.headers["cache-control"] = CACHE_CONTROL
        if isinstance(response, FileResponse):
            response.chunk_size = CHUNK_BYTES
        return response
