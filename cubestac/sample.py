"""A small deterministic sample collection, so a fresh install has something to search.

Items look like Sentinel-2 L2A scenes over Europe (footprint, datetime, eo:cloud_cover,
platform); the same seed always gives the same items, so reruns change nothing.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

SAMPLE_COLLECTION = "sample-s2-l2a"
EUROPE = (-10.0, 35.0, 30.0, 70.0)
START = datetime(2023, 1, 1, tzinfo=UTC)


def sample_collection() -> dict[str, Any]:
    return {
        "type": "Collection",
        "stac_version": "1.1.0",
        "id": SAMPLE_COLLECTION,
        "title": "Sample Sentinel-2 L2A scenes",
        "description": "Generated sample scenes over Europe (cubestac demo data).",
        "license": "CC-BY-4.0",
        "keywords": ["sample", "sentinel-2", "demo"],
        "extent": {
            "spatial": {"bbox": [list(EUROPE)]},
            "temporal": {"interval": [["2023-01-01T00:00:00Z", "2023-12-31T23:59:59Z"]]},
        },
        "summaries": {"platform": ["sentinel-2a", "sentinel-2b"]},
        "links": [],
    }


def _footprint(rng: random.Random) -> tuple[list[float], dict[str, Any]]:
    west = round(rng.uniform(EUROPE[0], EUROPE[2] - 1.5), 4)
    south = round(rng.uniform(EUROPE[1], EUROPE[3] - 1.0), 4)
    east, north = round(west + 1.4, 4), round(south + 0.9, 4)
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    return [west, south, east, north], {"type": "Polygon", "coordinates": [ring]}


def sample_items(count: int = 500, seed: int = 42) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    items = []
    for index in range(count):
        bbox, geometry = _footprint(rng)
        moment = START + timedelta(seconds=rng.randrange(365 * 86400))
        item_id = f"S2_SAMPLE_{index:05d}"
        items.append(
            {
                "type": "Feature",
                "stac_version": "1.1.0",
                "stac_extensions": ["https://stac-extensions.github.io/eo/v2.0.0/schema.json"],
                "id": item_id,
                "collection": SAMPLE_COLLECTION,
                "bbox": bbox,
                "geometry": geometry,
                "properties": {
                    "datetime": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "platform": rng.choice(["sentinel-2a", "sentinel-2b"]),
                    "eo:cloud_cover": round(rng.uniform(0, 100), 1),
                    "gsd": 10,
                },
                "assets": {
                    "visual": {
                        "href": f"https://example.com/sample/{item_id}/TCI.tif",
                        "type": "image/tiff; application=geotiff; profile=cloud-optimized",
                        "roles": ["visual"],
                    }
                },
                "links": [],
            }
        )
    return items
