"""The map routes under a cube item (DESIGN.md "Serving what cubes hold"; README "Map
tiles"): tiles, TileJSON and WMTS capabilities.

Tiles of one store version never change, so a tile's ETag names the version, the slice,
the style and the tile (a 304 when the client has it); `Cache-Control` lets clients keep
tiles `max_age_s`: the item's next build is a new version behind the same URL.
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated
from urllib.parse import quote

from fastapi import FastAPI, Path, Query
from starlette.requests import Request
from starlette.responses import Response

from api.cube_datasets import CubeDatasets
from api.links import base_url
from api.maps.capabilities import TIME_DIMENSION, WmtsLayer, tilejson, wmts_capabilities
from api.maps.selection import TIME, map_variables
from api.maps.service import MapQuery, MapService, tile_address, tile_matrix_set
from api.responses import ORJSONResponse
from api.state import app_state
from catalogue.settings import TileSettings

ITEM = "/collections/{collection_id}/items/{item_id}"
DEFAULT_TMS = "WebMercatorQuad"
TAGS: list[str | Enum] = ["Map tiles"]
TILE_FORMATS = ("png", "webp")

Variable = Annotated[str | None, Query(description="the variable to draw (default: the first one)")]
Time = Annotated[
    str | None,
    Query(description="an RFC 3339 time (the nearest step) or a step index (default: latest)"),
]
Colormap = Annotated[
    str | None,
    Query(description="a rio-tiler colormap name or a JSON map {value: [r, g, b, a]}"),
]
Rescale = Annotated[str | None, Query(description="min,max stretched over the colormap")]
TmsId = Annotated[str, Query(alias="tileMatrixSetId")]


def add_map_routes(app: FastAPI, settings: TileSettings, cubes: CubeDatasets) -> None:
    """Register the routes; one MapService (sources, ranges, tile cache) for the app."""
    maps = MapService(cubes, settings.cache_mb * 2**20, settings.chunk_cache_mb * 2**20)
    cache_control = f"public, max-age={settings.max_age_s}"

    @app.get(ITEM + "/tiles/{tileMatrixSetId}/{z}/{x}/{y}", tags=TAGS, response_class=Response)
    async def item_tile(
        request: Request,
        collection_id: str,
        item_id: str,
        tile_matrix_set_id: Annotated[str, Path(alias="tileMatrixSetId")],
        z: int,
        x: int,
        y: Annotated[str, Path(description="row, then optionally @{scale}x and .png/.webp")],
        variable: Variable = None,
        time: Time = None,
        colormap: Colormap = None,
        rescale: Rescale = None,
    ) -> Response:
        """A map tile of a cube variable (PNG by default)."""
        tms = tile_matrix_set(tile_matrix_set_id)
        address = tile_address(tms, z, x, y)
        source = await maps.source(app_state(request).database, collection_id, item_id)
        query = MapQuery.from_params(request.query_params)
        tile = await maps.tile(source, query, address, request.headers.get("if-none-match"))
        headers = {"ETag": tile.etag, "Cache-Control": cache_control}
        if tile.body is None:
            return Response(status_code=304, headers=headers)
        return Response(tile.body, media_type=tile.media_type, headers=headers)

    @app.get(ITEM + "/tilejson.json", tags=TAGS, response_class=ORJSONResponse)
    async def item_tilejson(
        request: Request,
        collection_id: str,
        item_id: str,
        tile_matrix_set_id: TmsId = DEFAULT_TMS,
        tile_format: Annotated[str, Query(pattern="^(png|webp)$")] = "png",
        tile_scale: Annotated[int, Query(ge=1, le=4)] = 1,
        variable: Variable = None,
        time: Time = None,
        colormap: Colormap = None,
        rescale: Rescale = None,
    ) -> ORJSONResponse:
        """TileJSON 3.0.0 of a cube variable's tiles, the query carried into the template."""
        tms = tile_matrix_set(tile_matrix_set_id)
        source = await maps.source(app_state(request).database, collection_id, item_id)
        selection = maps.selection(source, MapQuery.from_params(request.query_params))
        carried = [
            (key, value)
            for key, value in request.query_params.multi_items()
            if key not in ("tileMatrixSetId", "tile_format", "tile_scale")
        ]
        if not any(key == "variable" for key, _ in carried):
            carried.insert(0, ("variable", selection.variable))
        scale = f"@{tile_scale}x" if tile_scale != 1 else ""
        document = tilejson(
            source,
            tms,
            f"{_item_url(request, collection_id, item_id)}/tiles/{tms.id}",
            carried,
            f"{item_id} {selection.variable}",
            f"{{y}}{scale}.{tile_format}",
        )
        return ORJSONResponse(document, headers={"Cache-Control": cache_control})

    @app.get(ITEM + "/WMTSCapabilities.xml", tags=TAGS, response_class=Response)
    async def item_wmts(
        request: Request,
        collection_id: str,
        item_id: str,
        tile_matrix_set_id: TmsId = DEFAULT_TMS,
        colormap: Colormap = None,
        rescale: Rescale = None,
    ) -> Response:
        """OGC WMTS 1.0 capabilities: one layer per variable, with the time dimension."""
        tms = tile_matrix_set(tile_matrix_set_id)
        source = await maps.source(app_state(request).database, collection_id, item_id)
        dataset = source.cube.full_resolution
        item_url = _item_url(request, collection_id, item_id)
        style = [(k, v) for k, v in (("colormap", colormap), ("rescale", rescale)) if v]
        layers = []
        for name in map_variables(source.cube.item, dataset):
            has_time = TIME in dataset[name].dims
            query = "&".join(f"{k}={quote(v, safe='')}" for k, v in [("variable", name), *style])
            time_part = f"&time={{{TIME_DIMENSION}}}" if has_time else ""
            template = (
                f"{item_url}/tiles/{tms.id}/{{TileMatrix}}/{{TileCol}}/{{TileRow}}.png"
                f"?{query}{time_part}"
            )
            layers.append(WmtsLayer(name, name, template, has_time))
        title = str((source.cube.item.get("properties") or {}).get("title") or item_id)
        self_url = f"{item_url}/WMTSCapabilities.xml"
        body = wmts_capabilities(source, tms, layers, self_url, title)
        return Response(
            body, media_type="application/xml", headers={"Cache-Control": cache_control}
        )


def _item_url(request: Request, collection_id: str, item_id: str) -> str:
    return (
        f"{base_url(request)}collections/{quote(collection_id, safe='')}"
        f"/items/{quote(item_id, safe='')}"
    )
