"""The web viewer at `/viewer`: the catalogue's cubes on a map, with a time-series chart.

One HTML page and its own small script and style (`static/`), plus maplibre-gl and uPlot
vendored from npm by `scripts/vendor_js.sh` (`static/vendor/`, with their licences): the
API serves every file the page loads, so it works offline and under the HTML pages' CSP
(scripts, styles, workers and fetches from this origin only). The page finds everything
else through the API's own documents: `/search` for cube items, their `cube:` fields for
the pickers, their `xyz`/`tilejson` links for the layer and `/position` for the chart
(DESIGN.md "Serving what cubes hold").

The page and its files are addressed relative to the page, so it works under a root path
or behind a proxy that serves the API under `CUBESTAC_PUBLIC_URL`.
"""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from api.viewer.colormaps import colormap_stops

VIEWER_PATH = "/viewer"
STATIC_PATH = "/viewer/static"
STATIC_DIR = Path(__file__).parent / "static"
# our own files change with each release and are revalidated (ETag); the vendored ones
# change only when scripts/vendor_js.sh pins another version
OWN_CACHE = "no-cache"
VENDOR_CACHE = "public, max-age=86400"


class ViewerFiles(StaticFiles):
    """The page's script, style and vendored libraries, with cache headers."""

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        vendored = Path(full_path).parent.name == "vendor"
        response.headers["cache-control"] = VENDOR_CACHE if vendored else OWN_CACHE
        return response


def add_viewer(app: FastAPI) -> None:
    """`/viewer` (the page), `/viewer/colormaps.json` (the legend's colours) and
    `/viewer/static/` (the files the page loads)."""
    page = STATIC_DIR / "index.html"

    @app.get(VIEWER_PATH, include_in_schema=False)
    async def viewer() -> FileResponse:
        return FileResponse(page, media_type="text/html", headers={"cache-control": OWN_CACHE})

    @app.get(f"{VIEWER_PATH}/colormaps.json", include_in_schema=False)
    async def colormaps() -> JSONResponse:
        return JSONResponse(colormap_stops(), headers={"cache-control": VENDOR_CACHE})

    app.mount(STATIC_PATH, ViewerFiles(directory=STATIC_DIR), name="viewer-static")
