"""Links from a served cube item to its EDR queries (README, "EDR queries"): the time
series at a point (`/position`) and the statistics over a polygon (`/area`), answered as
CoverageJSON. Added when an item is served, like its web-map-links, from the public base
URL (never stored).

The hrefs are URI templates (RFC 6570) marked `"templated": true` with the `variables`
they take, the templated links of OGC API - Records ("Templated links"): a client puts a
longitude and latitude (or a WKT polygon) in and gets a working query.
"""

from __future__ import annotations

from typing import Any

from catalogue.web_map_links import item_url, map_variables

COVERAGE_JSON = "application/prs.coverage+json"
LONGITUDE = {"description": "WGS 84 longitude", "type": "number", "minimum": -180, "maximum": 180}
LATITUDE = {"description": "WGS 84 latitude", "type": "number", "minimum": -90, "maximum": 90}
POLYGON = {"description": "POLYGON((lon lat, ...)) in WGS 84, as WKT", "type": "string"}


def add_edr_links(item: dict[str, Any], base_url: str) -> None:
    """Add the two query links when `item` is a cube (it has map variables)."""
    if not map_variables(item):
        return
    url = item_url(item, base_url)
    title = str((item.get("properties") or {}).get("title") or item["id"])
    links = [
        {
            "rel": "data",
            "href": f"{url}/position?coords=POINT({{lon}}%20{{lat}})",
            "type": COVERAGE_JSON,
            "title": f"{title}: time series at a point (OGC API - EDR position)",
            "templated": True,
            "variables": {"lon": LONGITUDE, "lat": LATITUDE},
        },
        {
            "rel": "data",
            "href": f"{url}/area?coords={{polygon}}",
            "type": COVERAGE_JSON,
            "title": f"{title}: statistics over a polygon per time step (OGC API - EDR area)",
            "templated": True,
            "variables": {"polygon": POLYGON},
        },
    ]
    item["links"] = [*(item.get("links") or []), *links]
