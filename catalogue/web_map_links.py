"""Web-map-links on cube items (STAC web-map-links extension v1.2.0): `xyz` and `tilejson`
links per variable and one `wmts` link, added when an item is served, like the structural
links, from the public base URL (never stored: the catalogue can move host).

STAC Browser draws an item's `xyz` links on its map: rel `xyz`, an href template with
`{z}`, `{x}` and `{y}`, type `image/png` (https://github.com/stac-extensions/web-map-links).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

WEB_MAP_LINKS_EXTENSION = "https://stac-extensions.github.io/web-map-links/v1.2.0/schema.json"
DATA_ASSET = "zarr"
# what the JSON text of every cube item holds: harvested NetCDF items describe their
# variables too, but have no `zarr` asset, and stay on the serializer's text path
CUBE_MARKERS = ('"cube:variables"', f'"{DATA_ASSET}"')
MAX_LAYERS = 20  # variables advertised; the WMTS capabilities list them all
TMS = "WebMercatorQuad"


def may_be_cube(item_text: str) -> bool:
    """Whether an item's JSON text may be a cube with map layers (a cheap test before
    parsing it to add the links)."""
    return all(marker in item_text for marker in CUBE_MARKERS)


def map_variables(item: Mapping[str, Any]) -> list[str]:
    """The variables of a cube item that draw as a map (y and x as last dimensions), in
    alphabetical order (the stored order is the database's); none for an item that is not
    a cube (no Zarr data asset)."""
    asset = (item.get("assets") or {}).get(DATA_ASSET)
    if not isinstance(asset, Mapping) or not isinstance(asset.get("href"), str):
        return []
    variables = (item.get("properties") or {}).get("cube:variables")
    if not isinstance(variables, Mapping):
        return []
    return sorted(
        name
        for name, entry in variables.items()
        if isinstance(entry, Mapping) and list(entry.get("dimensions") or [])[-2:] == ["y", "x"]
    )


def item_url(item: Mapping[str, Any], base_url: str) -> str:
    """The item's own URL, under which its tiles and queries are served."""
    return (
        f"{base_url}collections/{quote(str(item['collection']), safe='')}"
        f"/items/{quote(str(item['id']), safe='')}"
    )


def add_web_map_links(item: dict[str, Any], base_url: str) -> None:
    """Add the links and declare the extension, when `item` is a cube with map variables."""
    variables = map_variables(item)[:MAX_LAYERS]
    if not variables:
        return
    url = item_url(item, base_url)
    title = str((item.get("properties") or {}).get("title") or item["id"])
    links: list[dict[str, Any]] = []
    for name in variables:
        query = f"variable={quote(name, safe='')}"
        links.append(
            {
                "rel": "xyz",
                "href": f"{url}/tiles/{TMS}/{{z}}/{{x}}/{{y}}.png?{query}",
                "type": "image/png",
                "title": f"{title}: {name}",
            }
        )
        links.append(
            {
                "rel": "tilejson",
                "href": f"{url}/tilejson.json?tileMatrixSetId={TMS}&{query}",
                "type": "application/json",
                "title": f"{title}: {name} (TileJSON)",
            }
        )
    links.append(_wmts_link(item, url, title, variables))
    item["links"] = [*(item.get("links") or []), *links]
    extensions = list(item.get("stac_extensions") or [])
    if WEB_MAP_LINKS_EXTENSION not in extensions:
        item["stac_extensions"] = [*extensions, WEB_MAP_LINKS_EXTENSION]


def _wmts_link(
    item: Mapping[str, Any], url: str, title: str, variables: list[str]
) -> dict[str, Any]:
    link: dict[str, Any] = {
        "rel": "wmts",
        "href": f"{url}/WMTSCapabilities.xml",
        "type": "image/png",
        "title": f"{title} (WMTS)",
        "wmts:layer": variables,
    }
    latest = _latest_time(item)
    if latest is not None:
        link["wmts:dimensions"] = {"Time": latest}
    return link


def _latest_time(item: Mapping[str, Any]) -> str | None:
    """The cube's last time step, which WMTS clients request by default."""
    time = ((item.get("properties") or {}).get("cube:dimensions") or {}).get("time")
    if not isinstance(time, Mapping):
        return None
    values = time.get("values") or []
    if values and isinstance(values[-1], str):
        return values[-1]
    extent = time.get("extent") or []
    return extent[-1] if len(extent) == 2 and isinstance(extent[-1], str) else None
