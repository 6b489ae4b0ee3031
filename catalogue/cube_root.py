"""Where cubes live: the one reading of `CUBESTAC_CUBE_ROOT` that the builder (the hrefs it
stores) and the API (the folder it serves under `/cubes`, the hrefs it rewrites) share, so
the two always agree on the prefix."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit


def local_root(root: str) -> Path | None:
    """The cube root as an absolute, resolved folder, or None when it is a URL (`s3://`...).
    A plain path and a `file://` URL name the same folder."""
    parts = urlsplit(root)
    if parts.scheme not in ("", "file"):
        return None
    return Path(parts.path if parts.scheme == "file" else root).expanduser().resolve()


def normalise_root(root: str) -> str:
    """The prefix stored hrefs start with: a local root's resolved folder, or the URL
    without a trailing '/'."""
    local = local_root(root)
    return str(local) if local is not None else root.rstrip("/")
