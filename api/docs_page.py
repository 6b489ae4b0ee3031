"""The Swagger UI page at `/api.html`, served with its own script and style files.

FastAPI's default page loads Swagger UI from cdn.jsdelivr.net: on the offline networks
cubestac often runs in it shows an empty page, and a CSP has to trust a third-party CDN.
`swagger-ui-bundle-v2` ships the same distribution as a Python package, so the API serves
it from `/api.html-assets/` and the CSP only allows this origin.
"""

from __future__ import annotations

from pathlib import Path

import swagger_ui_bundle
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

DOCS_PATH = "/api.html"
ASSETS_PATH = "/api.html-assets"


def add_docs_page(app: FastAPI, openapi_path: str, title: str) -> None:
    """Serve Swagger UI for the OpenAPI document at `openapi_path` (the app has docs_url=None)."""
    assets = Path(swagger_ui_bundle.swagger_ui_path)
    app.mount(ASSETS_PATH, StaticFiles(directory=assets), name="swagger-ui-assets")

    @app.get(DOCS_PATH, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(
            openapi_url=f"{root}{openapi_path}",
            title=f"{title} - Swagger UI",
            swagger_js_url=f"{root}{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_PATH}/favicon-32x32.png",
        )
