"""Generated STAC documents the API benchmarks load (soak, stalls, count_cost).

Benchmarks do not import tests/: these are their own, shaped for what they measure (small
square footprints, one asset, the queryable properties the query mix filters on).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any


def collection(collection_id: str, title: str, keywords: list[str]) -> dict[str, Any]:
    """A collection covering the world from 2020 on (the items fix the real extent)."""
    return {
        "type": "Collection",
        "stac_version": "1.1.0",
        "id": collection_id,
        "title": title,
        "description": f"Benchmark collection {collection_id}",
        "license": "CC-BY-4.0",
        "keywords": keywords,
        "extent": {
            "spatial": {"bbox": [[-180.0, -90.0, 180.0, 90.0]]},
            "temporal": {"interval": [["2020-01-01T00:00:00Z", None]]},
        },
        "links": [],
    }


def item(
    item_id: str,
    collection_id: str,
    corner: tuple[float, float],
    size: float,
    when: datetime,
    properties: dict[str, Any],
) -> dict[str, Any]:
    """A square item of `size` degrees from its south-west `corner`, with one GeoTIFF asset."""
    west, south = corner
    east, north = west + size, south + size
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    return {
        "type": "Feature",
        "stac_version": "1.1.0",
        "stac_extensions": [],
        "id": item_id,
        "collection": collection_id,
        "bbox": [west, south, east, north],
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "properties": {"datetime": when.strftime("%Y-%m-%dT%H:%M:%SZ"), **properties},
        "assets": {
            "data": {
                "href": f"https://example.com/data/{item_id}.tif",
                "type": "image/tiff; application=geotiff",
                "roles": ["data"],
            }
        },
        "links": [],
    }
