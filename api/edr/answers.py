"""One EDR query from parsed parameters to the bytes of its answer: check the geometry
against the grid and the read budget, read, and encode. Blocking (chunk reads): the routes
run these in a worker thread.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import xarray as xr
from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry

from api.cube_datasets import OpenCube
from api.edr import coverage
from api.edr.grid import CubeGrid, extent_text, require_pixel
from api.edr.query import COVERAGE_JSON_MEDIA_TYPE, CSV_MEDIA_TYPE, OutputFormat
from api.edr.read import (
    TIMESERIES_LAYOUT,
    Steps,
    area_source,
    point_source,
    read_area,
    read_point,
    selection_labels,
    selections,
    time_chunks,
    time_steps,
)
from catalogue.errors import InvalidInputError
from catalogue.times import Interval


@dataclass(frozen=True)
class Answer:
    """The encoded answer and the layout it was read from (`map` or `timeseries`)."""

    body: bytes
    media_type: str
    layout: str


@dataclass(frozen=True)
class Query:
    """A query's parsed parameters: the variables, the time interval (and its text, for
    messages), the other query parameters (dimension picks) and the output format."""

    names: Sequence[str]
    interval: Interval | None
    datetime_text: str | None
    extra: Mapping[str, str]
    output: OutputFormat


def cube_variables(cube: OpenCube) -> list[str]:
    """The item's `cube:variables` that the store holds: what `parameter-name` may name."""
    described = (cube.item.get("properties") or {}).get("cube:variables") or {}
    return [name for name in described if name in cube.full_resolution.data_vars]


def position_answer(cube: OpenCube, point: Point, query: Query, max_chunks: int) -> Answer:
    dataset, layout = point_source(cube, query.names)
    grid = CubeGrid.of(dataset)
    pixel = require_pixel(grid, point, cube.item.get("bbox"))
    steps = time_steps(dataset, query.interval, query.datetime_text)
    _check_chunk_budget(dataset, query.names, steps, layout, max_chunks)
    picks = selections(dataset, query.names, query.extra)
    values = read_point(dataset, query.names, pixel, steps, picks, _nodata(cube, query.names))
    infos = _infos(cube, dataset, query.names)
    if query.output is OutputFormat.CSV:
        return Answer(coverage.point_csv(steps, values, infos).encode(), CSV_MEDIA_TYPE, layout)
    extra = {
        "cubestac:pixel": {"row": pixel[0], "col": pixel[1], "crs": grid.crs_name},
        **_selection(dataset, picks),
    }
    body = coverage.point_coverage(grid.centre_lonlat(*pixel), steps, values, infos, extra)
    return Answer(body, COVERAGE_JSON_MEDIA_TYPE, layout)


def area_answer(cube: OpenCube, polygon: BaseGeometry, query: Query, max_pixels: int) -> Answer:
    level0 = cube.full_resolution
    grid = CubeGrid.of(level0)
    extent = extent_text(cube.item.get("bbox"))
    window = grid.window_of(polygon, cube.item.get("bbox"))
    if window is None:
        raise InvalidInputError(f"coords: the polygon does not overlap the cube's extent {extent}")
    steps = time_steps(level0, query.interval, query.datetime_text)
    _check_budget(window.pixels, steps, max_pixels)
    pixels = int(window.mask.sum())
    if pixels == 0:
        raise InvalidInputError(
            "coords: the polygon contains no pixel centre of the cube (it is smaller than "
            "a pixel or lies outside the grid); ask /position for the pixel at a point"
        )
    dataset, layout = area_source(cube, query.names, window, steps)
    picks = selections(dataset, query.names, query.extra)
    stats = read_area(dataset, query.names, window, steps, picks, _nodata(cube, query.names))
    infos = _infos(cube, dataset, query.names)
    if query.output is OutputFormat.CSV:
        return Answer(coverage.area_csv(steps, stats, infos).encode(), CSV_MEDIA_TYPE, layout)
    centroid = polygon.centroid
    extra = {"cubestac:pixels": pixels, **_selection(dataset, picks)}
    body = coverage.area_coverage((centroid.x, centroid.y), steps, stats, infos, extra)
    return Answer(body, COVERAGE_JSON_MEDIA_TYPE, layout)


def _check_chunk_budget(
    dataset: xr.Dataset, names: Sequence[str], steps: Steps, layout: str, max_chunks: int
) -> None:
    """Refuse a series that would decompress more than `max_chunks` stored chunks: on the
    map layout each time step is a chunk of its own."""
    total = sum(time_chunks(dataset[name], steps) for name in names)
    if total > max_chunks:
        advice = (
            "narrow datetime"
            if layout == TIMESERIES_LAYOUT
            else "narrow datetime, or build the cube with the time-series layout "
            "(`timeseries:` in its CONFIG)"
        )
        raise InvalidInputError(
            f"coords: this series reads {total} chunks of the cube's {layout} layout "
            f"({steps.count} time steps), more than the limit of {max_chunks} "
            f"(CUBESTAC_EDR__MAX_POSITION_CHUNKS); {advice}"
        )


def _check_budget(window_pixels: int, steps: Steps, max_pixels: int) -> None:
    """Refuse a read of more than `max_pixels` level-0 pixels x time steps."""
    total = window_pixels * steps.count
    if total > max_pixels:
        raise InvalidInputError(
            f"coords: the polygon's bounding box covers {window_pixels} pixels x "
            f"{steps.count} time steps = {total}, more than the limit of {max_pixels} "
            "(CUBESTAC_EDR__MAX_AREA_PIXELS); draw a smaller polygon or narrow datetime"
        )


def _selection(dataset: xr.Dataset, picks: Mapping[str, int]) -> dict[str, Any]:
    return {"cubestac:selection": selection_labels(dataset, picks)} if picks else {}


def _nodata(cube: OpenCube, names: Sequence[str]) -> dict[str, Any]:
    described = (cube.item.get("properties") or {}).get("cube:variables") or {}
    return {name: (described.get(name) or {}).get("nodata") for name in names}


def _infos(
    cube: OpenCube, dataset: xr.Dataset, names: Sequence[str]
) -> dict[str, coverage.ParameterInfo]:
    described = (cube.item.get("properties") or {}).get("cube:variables") or {}
    return {
        name: coverage.parameter_info(name, described.get(name) or {}, dataset[name])
        for name in names
    }
