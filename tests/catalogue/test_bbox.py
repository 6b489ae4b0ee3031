"""`catalogue.bbox`: the same answer from the GeoJSON fast path and from GEOS, and one
reading of a bbox for search parameters and CONFIG."""

from __future__ import annotations

import math

import pytest
import shapely
from pydantic import ValidationError

from catalogue.bbox import bbox_problem, parse_bbox
from catalogue.errors import InvalidInputError
from ingest.config import parse_sources


def _circle(points: int) -> dict:
    ring = [
        [10 + math.cos(2 * math.pi * i / points), 50 + math.sin(2 * math.pi * i / points)]
        for i in range(points)
    ]
    return {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}


@pytest.mark.parametrize("points", [8, 500])  # from the GeoJSON, from GEOS
@pytest.mark.parametrize(
    ("bbox", "fine"),
    [
        ([9.0, 49.0, 11.0, 51.0], True),
        ([9.0, 49.0, 10.9, 51.0], False),
        ([9.0, 49.5, 11.0, 51.0], False),
        ([9.0, 49.0, 0.0, 11.0, 51.0, 10.0], True),
        ([9.0, 49.0, float("nan"), 51.0], False),
        ([9.0, 49.0, float("inf"), 51.0], False),
        ([9.0, "49", 11.0, 51.0], False),
        ([9.0, 49.0, 11.0], False),
        ("9,49,11,51", False),
    ],
)
def test_a_bbox_holds_its_geometry(points: int, bbox: list, fine: bool) -> None:
    geojson = _circle(points)
    geometry = shapely.from_geojson(shapely.to_geojson(shapely.geometry.shape(geojson)))
    assert (bbox_problem(bbox, geojson, geometry) is None) is fine


def test_a_multipolygon_is_measured_whole() -> None:
    geojson = {
        "type": "MultiPolygon",
        "coordinates": [
            [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]],
            [[[5, 5], [6, 5], [6, 6], [5, 6], [5, 5]]],
        ],
    }
    geometry = shapely.geometry.shape(geojson)
    assert bbox_problem([0, 0, 6, 6], geojson, geometry) is None
    assert "does not contain" in (bbox_problem([0, 0, 1, 1], geojson, geometry) or "")


# A bbox someone writes: the API's `bbox` parameter and a CONFIG source's `bbox` are read by
# the same `parse_bbox`, with the range rule items are held to (without the tolerance).
BOXES = [
    ([9, 49, 11, 51], (9.0, 49.0, 11.0, 51.0)),
    (["9", "49", "11", "51"], (9.0, 49.0, 11.0, 51.0)),  # GET parameters arrive as text
    ([170, -10, -170, 10], (170.0, -10.0, -170.0, 10.0)),  # across the antimeridian
    ([9, 49, 0, 11, 51, 100], (9.0, 49.0, 11.0, 51.0)),
    ([9, 49, 11], "expected 4 or 6 numbers"),
    ([9, "north", 11, 51], "not all numbers"),
    ([9, 51, 11, 49], "south edge above its north edge"),
    ([9, 49, 181, 51], "longitude outside"),
    ([9, -91, 11, 51], "latitude outside"),
    ([9, 49, float("nan"), 51], "longitude outside"),
    ([9, 49, 100, 11, 51, 0], "lower elevation above its upper elevation"),
]


@pytest.mark.parametrize(("values", "expected"), BOXES)
def test_a_written_bbox_is_read_alike_by_search_and_config(values: list, expected: object) -> None:
    source = {"id": "s", "kind": "stac-api", "url": "https://example.org", "bbox": values}
    if isinstance(expected, tuple):
        assert parse_bbox(values) == expected
        if all(isinstance(value, int) for value in values):
            assert parse_sources({"sources": [source]})[0].bbox == values
        return
    with pytest.raises(InvalidInputError, match=expected):
        parse_bbox(values)
    if not any(isinstance(value, str) for value in values):
        with pytest.raises(ValidationError, match=expected):
            parse_sources({"sources": [source]})


def test_an_items_bbox_gets_the_tolerance_a_written_one_does_not() -> None:
    bbox = [9.0, 49.0, 11.0, 90.0000005]
    geojson = {"type": "Polygon", "coordinates": [[[9, 49], [11, 49], [11, 50], [9, 49]]]}
    assert bbox_problem(bbox, geojson, shapely.geometry.shape(geojson)) is None
    with pytest.raises(InvalidInputError, match="latitude outside"):
        parse_bbox(bbox)
