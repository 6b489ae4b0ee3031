"""`catalogue.bbox`: the same answer from the GeoJSON fast path and from GEOS."""

from __future__ import annotations

import math

import pytest
import shapely

from catalogue.bbox import bbox_problem


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
