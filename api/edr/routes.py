"""`/collections/{collection_id}/items/{item_id}/position` and `/area`: the time series at a
point and the per-time-step statistics over a polygon, in the shape of OGC API - EDR 1.1
(sections 8.2.1 "Position" and 8.2.3 "Area"), answered as CoverageJSON or CSV.

Parameters are read and refused on the event loop (cheap); opening the store and reading
chunks happen in a worker thread.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, FastAPI, Query
from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from api.cube_datasets import OpenCube
from api.edr import answers
from api.edr.query import check_crs, parse_coords, parse_datetime, parse_format, parse_parameters
from api.state import app_state
from catalogue.settings import EdrSettings

ITEM_PATH = "/collections/{collection_id}/items/{item_id}"
LAYOUT_HEADER = "Cubestac-Layout"  # which copy of the cube answered: map or timeseries
KNOWN_PARAMETERS = frozenset({"coords", "parameter-name", "datetime", "f", "crs", "z"})

Coords = Annotated[
    str, Query(description="WKT in WGS 84 longitude/latitude: POINT(lon lat) or POLYGON((...))")
]
ParameterName = Annotated[
    str | None,
    Query(alias="parameter-name", description="comma-separated cube variables; all if absent"),
]
Datetime = Annotated[
    str | None, Query(description="an instant, a/b, ../b or a/.. (RFC 3339 or dates)")
]
Format = Annotated[str | None, Query(description="CoverageJSON (default) or csv")]


def add_edr_routes(app: FastAPI, settings: EdrSettings) -> None:
    router = APIRouter(tags=["EDR queries on cubes"])

    @router.get(f"{ITEM_PATH}/position", summary="Time series at a point (EDR position)")
    async def position(
        request: Request,
        collection_id: str,
        item_id: str,
        coords: Coords,
        parameter_name: ParameterName = None,
        datetime: Datetime = None,
        f: Format = None,
    ) -> Response:
        point = parse_coords(coords, ("Point",), settings.max_vertices)
        assert isinstance(point, Point)  # the only kind parse_coords let through
        return await _answer(
            request, collection_id, item_id, parameter_name, datetime, f,
            lambda cube, query: answers.position_answer(
                cube, point, query, settings.max_position_chunks
            ),
        )  # fmt: skip

    @router.get(f"{ITEM_PATH}/area", summary="Statistics over a polygon per time step (EDR area)")
    async def area(
        request: Request,
        collection_id: str,
        item_id: str,
        coords: Coords,
        parameter_name: ParameterName = None,
        datetime: Datetime = None,
        f: Format = None,
    ) -> Response:
        polygon: BaseGeometry = parse_coords(
            coords, ("Polygon", "MultiPolygon"), settings.max_vertices
        )
        return await _answer(
            request, collection_id, item_id, parameter_name, datetime, f,
            lambda cube, query: answers.area_answer(
                cube, polygon, query, settings.max_area_pixels
            ),
        )  # fmt: skip

    app.include_router(router)


async def _answer(
    request: Request,
    collection_id: str,
    item_id: str,
    parameter_name: str | None,
    datetime: str | None,
    f: str | None,
    work: Callable[[OpenCube, answers.Query], answers.Answer],
) -> Response:
    """Parse the rest, open the cube (404 when it is none), run `work` in a thread."""
    output = parse_format(f, request.headers.get("accept"))
    check_crs(request.query_params.get("crs"))
    interval = parse_datetime(datetime)
    state = app_state(request)
    cube = await state.cube_datasets.open_cube(state.database, collection_id, item_id)
    names = parse_parameters(parameter_name, answers.cube_variables(cube))
    extra = {k: v for k, v in request.query_params.items() if k not in KNOWN_PARAMETERS}
    query = answers.Query(names, interval, datetime, extra, output)
    answer = await run_in_threadpool(work, cube, query)
    return Response(
        answer.body, media_type=answer.media_type, headers={LAYOUT_HEADER: answer.layout}
    )
