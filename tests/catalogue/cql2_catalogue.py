"""A small, awkward catalogue for the CQL2 conformance tests.

Three collections of realistic items (Sentinel-2 and Landsat scenes, MODIS-like composites)
chosen for what filters trip on: one property holding a number in one item, a numeric
string in another, JSON null in a third and nothing in a fourth; strings differing only in
case or accents; arrays of strings, of numbers and empty ones; instants and intervals that
meet, overlap, contain and start together; polygons, points, lines and a multipolygon that
touch, cross, contain and equal the geometries the filters use.
"""

from __future__ import annotations

from copy import deepcopy
from typing import Any

S2, LANDSAT, MODIS = "sentinel-2-l2a", "landsat-c2-l2", "modis-16day"
COLLECTIONS = (S2, LANDSAT, MODIS)


def square(west: float, south: float, size: float = 1.0) -> dict[str, Any]:
    east, north = west + size, south + size
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    return {"type": "Polygon", "coordinates": [ring]}


def _bbox(geometry: dict[str, Any]) -> list[float]:
    points: list[list[float]] = []

    def walk(value: Any) -> None:
        if value and isinstance(value[0], int | float):
            points.append(value)
        else:
            for child in value:
                walk(child)

    walk(geometry["coordinates"])
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return [min(xs), min(ys), max(xs), max(ys)]


def item(
    item_id: str,
    collection: str,
    geometry: dict[str, Any],
    when: str | tuple[str, str],
    **properties: Any,
) -> dict[str, Any]:
    """A STAC item; `when` is an instant or a (start, end) interval with datetime null."""
    if isinstance(when, tuple):
        temporal = {"datetime": None, "start_datetime": when[0], "end_datetime": when[1]}
    else:
        temporal = {"datetime": when}
    return {
        "type": "Feature",
        "stac_version": "1.1.0",
        "stac_extensions": [],
        "id": item_id,
        "collection": collection,
        "geometry": geometry,
        "bbox": _bbox(geometry),
        "properties": {**temporal, **properties},
        "assets": {
            "data": {"href": f"https://example.com/{collection}/{item_id}.tif", "roles": ["data"]}
        },
        "links": [],
    }


S2_COMMON = {"constellation": "sentinel-2", "instruments": ["msi"]}
L_COMMON = {"constellation": "landsat", "instruments": ["oli", "tirs"], "gsd": 30}

ITEMS: list[dict[str, Any]] = [
    # -- Sentinel-2: instants in June 2021 on a 2-degree grid, 1-degree squares ----------------
    item("s2-01", S2, square(1, 41), "2021-06-01T10:30:00Z", **S2_COMMON,
         **{"eo:cloud_cover": 5, "platform": "sentinel-2a", "gsd": 10, "title": "Île-de-France",
            "processed": True, "created": "2021-06-02T10:00:00Z", "view:sun_elevation": 40.5,
            "view:off_nadir": 3.1, "tags": ["urban", "coast"], "sat:relative_orbit": 51}),
    item("s2-02", S2, square(3, 41), "2021-06-02T10:30:00Z", **S2_COMMON,
         **{"eo:cloud_cover": 12.5, "platform": "Sentinel-2B", "gsd": 10, "title": "Zürich Nord",
            "processed": False, "created": "2021-06-03T12:00:00+02:00",
            "view:sun_elevation": 55.0, "view:off_nadir": 55.0, "tags": ["alpine"],
            "sat:relative_orbit": 8}),
    item("s2-03", S2, square(5, 41), "2021-06-03T10:30:00Z", **S2_COMMON,
         **{"eo:cloud_cover": "12", "platform": "SENTINEL-2A", "gsd": 10, "title": "zurich süd",
            "processed": True, "created": "2021-06-03", "view:sun_elevation": 12,
            "view:off_nadir": 20.25, "tags": ["alpine", "urban"], "sat:relative_orbit": 51}),
    item("s2-04", S2, square(7, 41), "2021-06-04T10:30:00Z", **S2_COMMON,
         **{"eo:cloud_cover": None, "platform": "sentinel-2b", "gsd": 20, "title": "São Paulo",
            "processed": None, "created": None, "tags": [], "sat:relative_orbit": 94}),
    item("s2-05", S2, square(9, 41), "2021-06-05T00:00:00Z", **S2_COMMON,
         **{"title": "Cañón del Sumidero", "gsd": 60, "tags": ["canyon"]}),
    item("s2-06", S2, square(1, 43), "2021-06-06T10:30:00Z", **S2_COMMON,
         **{"eo:cloud_cover": 0, "platform": "sentinel-2a", "gsd": "10", "title": "Mont Blanc",
            "processed": "yes", "created": "not a date", "view:sun_elevation": "high",
            "tags": [1, 2, 3], "sat:relative_orbit": 8}),
    item("s2-07", S2, {"type": "Point", "coordinates": [2.0, 42.0]}, "2021-06-07T10:30:00Z",
         **S2_COMMON, **{"eo:cloud_cover": 100, "platform": "sentinel-2b", "gsd": 10,
                         "title": "Ångström station", "processed": False, "tags": ["coast"]}),
    item("s2-08", S2, {"type": "LineString", "coordinates": [[0.0, 41.5], [6.0, 41.5]]},
         "2021-06-08T10:30:00Z", **S2_COMMON,
         **{"eo:cloud_cover": 50, "platform": "sentinel-2a", "gsd": 10, "title": "Transect",
            "created": "2021-06-08T09:00:00.250Z", "tags": ["urban", "coast", "alpine"]}),
    item("s2-09", S2,
         {"type": "MultiPolygon",
          "coordinates": [square(3, 43)["coordinates"], square(5.5, 43.5, 0.5)["coordinates"]]},
         "2021-06-09T10:30:00Z", **S2_COMMON,
         **{"eo:cloud_cover": 49.999, "platform": "sentinel-2b", "gsd": 10,
            "title": "Köln-Bonn", "processed": True, "tags": [2, "2"]}),
    item("s2-10", S2, square(0, 40, 4), "2021-06-10T10:30:00Z", **S2_COMMON,
         **{"eo:cloud_cover": 10, "platform": "sentinel-2a", "gsd": 10, "title": "ile de france",
            "processed": True, "view:sun_elevation": 60.0, "view:off_nadir": 1.5,
            "tags": ["urban"], "sat:relative_orbit": 51}),
    item("s2-11", S2, square(1.5, 41.5), "2021-06-05T23:59:59Z", **S2_COMMON,
         **{"eo:cloud_cover": 30, "platform": "sentinel-2c", "gsd": 10, "title": "ÎLE-DE-FRANCE",
            "tags": ["coast", "urban"]}),
    # -- Landsat: instants in June and July 2021, larger squares -----------------------------
    item("lc-01", LANDSAT, square(2, 40, 2), "2021-06-03T10:00:00Z", **L_COMMON,
         **{"eo:cloud_cover": 22.0, "platform": "landsat-8", "title": "Path 198 Row 31",
            "landsat:wrs_path": 198, "processed": True, "tags": ["oli", "tirs", 7]}),
    item("lc-02", LANDSAT, square(6, 40, 2), "2021-06-19T10:00:00Z", **L_COMMON,
         **{"eo:cloud_cover": 8, "platform": "landsat-9", "title": "Path 196 Row 31",
            "landsat:wrs_path": 196, "processed": False, "tags": ["oli"]}),
    item("lc-03", LANDSAT, square(2, 44, 2), "2021-07-05T10:00:00Z", **L_COMMON,
         **{"eo:cloud_cover": 75, "platform": "LANDSAT_9", "title": "path 198 row 29",
            "landsat:wrs_path": "198", "created": "2021-07-06T00:00:00-05:00"}),
    item("lc-04", LANDSAT, square(8, 44, 2), "2021-07-21T10:00:00Z", **L_COMMON,
         **{"eo:cloud_cover": 10.0, "platform": "landsat-8", "title": "Path 194 Row 29",
            "landsat:wrs_path": 194, "processed": True, "tags": ["tirs"]}),
    # -- MODIS-like composites: intervals ------------------------------------------------------
    item("md-01", MODIS, square(0, 40, 10), ("2021-06-01T00:00:00Z", "2021-06-08T00:00:00Z"),
         **{"platform": "terra", "title": "Composite 2021-152", "eo:cloud_cover": 15}),
    item("md-02", MODIS, square(0, 40, 10), ("2021-06-08T00:00:00Z", "2021-06-16T00:00:00Z"),
         **{"platform": "terra", "title": "Composite 2021-159", "eo:cloud_cover": 35}),
    item("md-03", MODIS, square(0, 40, 5), ("2021-06-03T00:00:00Z", "2021-06-05T00:00:00Z"),
         **{"platform": "Aqua", "title": "Composite 2021-154"}),
    item("md-04", MODIS, square(5, 40, 5), ("2021-05-01T00:00:00Z", "2021-07-01T00:00:00Z"),
         **{"platform": "aqua", "title": "Monthly 2021-05/06", "tags": ["monthly"]}),
    item("md-05", MODIS, square(0, 45, 5), ("2021-06-01T00:00:00Z", "2021-06-30T23:59:59Z"),
         **{"platform": "terra", "title": "Monthly 2021-06", "tags": ["monthly"]}),
    item("md-06", MODIS, square(5, 45, 5), ("2021-06-20T00:00:00Z", "2021-06-30T00:00:00Z"),
         **{"platform": "terra", "title": "Composite 2021-171", "eo:cloud_cover": 2}),
    # against [06-01, 06-08]: finishes, meets, starts, overlaps, overlapped by, finished by
    item("md-07", MODIS, square(0, 40, 3), ("2021-06-05T00:00:00Z", "2021-06-08T00:00:00Z"),
         **{"platform": "aqua", "title": "Partial 2021-156"}),
    item("md-08", MODIS, square(3, 40, 3), ("2021-05-25T00:00:00Z", "2021-06-01T00:00:00Z"),
         **{"platform": "terra", "title": "Composite 2021-145", "eo:cloud_cover": 60}),
    item("md-09", MODIS, square(6, 40, 3), ("2021-06-01T00:00:00Z", "2021-06-04T00:00:00Z"),
         **{"platform": "aqua", "title": "Partial 2021-152"}),
    item("md-10", MODIS, square(0, 43, 3), ("2021-05-28T00:00:00Z", "2021-06-04T00:00:00Z"),
         **{"platform": "terra", "title": "Composite 2021-148"}),
    item("md-11", MODIS, square(3, 43, 3), ("2021-06-03T00:00:00Z", "2021-06-12T00:00:00Z"),
         **{"platform": "aqua", "title": "Composite 2021-154b"}),
    item("md-12", MODIS, square(6, 43, 3), ("2021-05-20T00:00:00Z", "2021-06-08T00:00:00Z"),
         **{"platform": "terra", "title": "Composite 2021-140"}),
]  # fmt: skip
for _item in ITEMS:  # md-06: an interval item with a datetime as well
    if _item["id"] == "md-06":
        _item["properties"]["datetime"] = "2021-06-25T00:00:00Z"


def oracle_item(original: dict[str, Any]) -> dict[str, Any]:
    """The item as the independent evaluator should see it under our property mapping:
    `datetime` is the row's sort key (the start for an interval item) and every item has
    start/end (an instant's are its datetime)."""
    copy = deepcopy(original)
    properties = copy["properties"]
    start = properties.get("start_datetime") or properties["datetime"]
    properties.setdefault("start_datetime", start)
    properties.setdefault("end_datetime", properties["datetime"])
    if properties["datetime"] is None:
        properties["datetime"] = start
    return copy
