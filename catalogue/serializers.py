"""The one seam between STAC JSON and table rows: `item_to_row` / `row_to_item`.

Structural links (self, parent, collection, root, items) are not stored: they are made at
response time from the public base URL, so the catalogue can move behind another host
name without a rewrite. Other links an item carries (license, via, derived_from ...) are kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any, NamedTuple
from urllib.parse import quote

import orjson
import shapely
from shapely.errors import GEOSException
from shapely.geometry import MultiPolygon, box
from shapely.geometry.base import BaseGeometry

from catalogue import json_codec
from catalogue.bbox import bbox_problem, geometry_bbox
from catalogue.edr_links import add_edr_links
from catalogue.errors import InvalidBboxError, InvalidInputError
from catalogue.icechunk_repo import is_icechunk
from catalogue.ids import check_id
from catalogue.storage_extension import drop_storage_refs
from catalogue.times import parse_datetime
from catalogue.version_links import add_version_links
from catalogue.web_map_links import add_web_map_links, may_be_cube

STRUCTURAL_RELS = frozenset({"self", "parent", "collection", "root", "items"})
STAC_VERSION = "1.1.0"


def _own_links(document: dict[str, Any]) -> list[Any]:
    """The document's links but the structural ones, which the catalogue writes itself
    when it serves the document (a stored `self` would point at wherever it came from)."""
    return [
        link
        for link in document.get("links") or []
        if isinstance(link, dict) and link.get("rel") not in STRUCTURAL_RELS
    ]


def _geometry(item: dict[str, Any]) -> tuple[str, BaseGeometry]:
    """The item's geometry as GeoJSON text (what PostGIS parses) and as a shapely geometry."""
    geometry = item.get("geometry")
    if not isinstance(geometry, dict):
        raise InvalidInputError(
            f"item {item.get('id')!r}: geometry is required (items without geometry are not "
            "searchable here)"
        )
    text = json_codec.dumps(geometry)
    try:
        # GEOS's own GeoJSON reader: several times faster than shapely.geometry.shape()
        parsed = shapely.from_geojson(text)
    except (ValueError, TypeError, GEOSException) as error:
        raise InvalidInputError(
            f"item {item.get('id')!r}: invalid GeoJSON geometry: {error}"
        ) from error
    if parsed is None or parsed.is_empty:
        raise InvalidInputError(f"item {item.get('id')!r}: geometry is empty")
    if not parsed.is_valid:
        reason = shapely.is_valid_reason(parsed)
        raise InvalidInputError(f"item {item.get('id')!r}: invalid geometry: {reason}")
    if parsed.has_z:  # GeoJSON positions may carry heights; the indexed column is 2D
        return shapely.to_geojson(shapely.force_2d(parsed)), parsed
    return text, parsed


def _check_bbox(item: dict[str, Any], geometry: BaseGeometry) -> None:
    """A bbox, when given, must be in range and contain the geometry (catalogue.bbox)."""
    bbox = item.get("bbox")
    if bbox is None:
        return
    problem = bbox_problem(bbox, item["geometry"], geometry)
    if problem is not None:
        raise InvalidBboxError(
            f"item {item.get('id')!r}: bbox {bbox} {problem}; send the geometry's bounds or "
            "leave bbox out",
            geometry_bbox(geometry),
        )


def _temporal_columns(item_id: Any, properties: dict[str, Any]) -> dict[str, datetime]:
    """`datetime` is the sort key (start for interval items); start/end are never NULL."""
    instant = properties.get("datetime")
    start_value = properties.get("start_datetime")
    end_value = properties.get("end_datetime")
    if instant is None and (start_value is None or end_value is None):
        raise InvalidInputError(
            f"item {item_id!r}: properties.datetime is null, so start_datetime and "
            "end_datetime are both required"
        )
    where = f"item {item_id!r}: properties"
    moment = parse_datetime(instant, f"{where}.datetime") if instant is not None else None
    start = parse_datetime(start_value, f"{where}.start_datetime") if start_value else moment
    end = parse_datetime(end_value, f"{where}.end_datetime") if end_value else moment
    assert start is not None and end is not None  # guaranteed by the check above
    if start > end:
        raise InvalidInputError(
            f"item {item_id!r}: start_datetime {start_value} is after end_datetime {end_value}"
        )
    return {"datetime": moment or start, "start_datetime": start, "end_datetime": end}


def item_to_row(item: dict[str, Any], collection_id: str | None = None) -> dict[str, Any]:
    """Validate the searchable parts of an item and return the row to store.

    `collection_id`, when given, wins over the item's own `collection` (the URL path of a
    transaction names the collection).
    """
    if not isinstance(item, dict) or item.get("type") != "Feature":
        raise InvalidInputError("an item must be a GeoJSON Feature object")
    item_id = check_id(item.get("id"), "item")
    properties = item.get("properties")
    if not isinstance(properties, dict):
        raise InvalidInputError(f"item {item_id!r}: `properties` must be an object")
    collection = check_id(collection_id or item.get("collection"), f"item {item_id!r}: collection")
    content = dict(item)
    content["collection"] = collection
    content.setdefault("stac_version", STAC_VERSION)
    content["links"] = _own_links(item)
    geometry_text, geometry = _geometry(item)
    _check_bbox(item, geometry)
    return {
        "collection": collection,
        "id": item_id,
        "geometry": geometry_text,
        **_temporal_columns(item_id, properties),
        "properties": properties,
        "content": content,
    }


def item_links(base_url: str, collection: str, item_id: str) -> list[dict[str, str]]:
    """The structural links of an item, absolute under `base_url` (which ends with '/')."""
    collection_url = f"{base_url}collections/{_quote(collection)}"
    item_url = f"{collection_url}/items/{_quote(item_id)}"
    return [
        {"rel": "self", "type": "application/geo+json", "href": item_url},
        {"rel": "parent", "type": "application/json", "href": collection_url},
        {"rel": "collection", "type": "application/json", "href": collection_url},
        {"rel": "root", "type": "application/json", "href": base_url},
    ]  # fmt: skip


@dataclass(frozen=True)
class CubeHrefs:
    """How asset hrefs under the cube root (as `cubes` stores them) are handed out.

    `root` is the stored prefix, ending with '/': a local folder ("/srv/cubes/") or an S3
    prefix ("s3://bucket/cubes/"). `public_base` (ending with '/') is where readers reach
    that root over HTTP(S): a bucket's public URL, a CDN; None for a local root means the
    API's own `<base_url>cubes/`. An S3 root without a public base needs no CubeHrefs: its
    `s3://` hrefs, their `xarray:storage_options` and `storage:refs` are handed out as
    stored. A rewritten asset loses both (plain HTTP needs neither), and the item the
    storage schemes no asset refers to any more.
    """

    root: str
    public_base: str | None = None

    @cached_property
    def json_root(self) -> str:
        """The root as it appears inside a JSON string (what `item_json_text` looks for)."""
        return orjson.dumps(self.root).decode()[1:-1]

    def public_href(self, href: str, base_url: str) -> str | None:
        """The URL readers get for a stored href, or None when it is not under the root."""
        if not href.startswith(self.root):
            return None
        relative = href[len(self.root) :].rstrip("/")
        if ".." in relative.split("/"):  # climbs out of the root: not a file the API serves
            return None
        base = self.public_base or f"{base_url}cubes/"
        return f"{base}{quote(relative)}"


def row_to_item(
    content: dict[str, Any], base_url: str, cube_hrefs: CubeHrefs | None = None
) -> dict[str, Any]:
    """The stored item with its structural links added (first in `links`, `links` last).

    Keys come in the stored document's order, which for a document read back from the
    database is PostgreSQL's JSONB order (shortest key first: `id`, `bbox`, `type` ...); the
    same order `item_json_text` gives, so a search page and a single item read alike.
    With `cube_hrefs`, asset hrefs under the cube root become HTTP(S) URLs (see CubeHrefs).
    A cube item gets its web-map-links (`catalogue.web_map_links`) and the templated links
    of its EDR queries (`catalogue.edr_links`) after the stored links.
    """
    stored_links = content.pop("links", None) or []
    if cube_hrefs is not None:
        _serve_cube_assets(content, base_url, cube_hrefs)
    content["links"] = item_links(base_url, content["collection"], content["id"]) + stored_links
    add_web_map_links(content, base_url)
    add_edr_links(content, base_url)
    add_version_links(content, base_url)
    return content


class StoredItemText(NamedTuple):
    """An item as the database prints it: its JSON without `links` (JSONB text output, see
    `catalogue.repositories.item_text`) and its stored links as JSON text. A tuple: a page
    makes up to a few hundred of them."""

    collection: str
    id: str
    body: str
    links: str


class ItemLinksText:
    """`orjson.dumps(item_links(base_url, collection, item_id)).decode()` for the items of
    one response, from pieces made once per collection: per item only the id is quoted and
    spliced in. The URLs are JSON-encoded by orjson (a Host header may hold a quote); a
    quoted id is plain ASCII and needs no escaping."""

    def __init__(self, base_url: str) -> None:
        self._base_url = base_url
        self._root = orjson.dumps(base_url).decode()
        self._pieces: dict[str, tuple[str, str]] = {}

    def _pieces_of(self, collection: str) -> tuple[str, str]:
        url = orjson.dumps(f"{self._base_url}collections/{_quote(collection)}").decode()
        head = '[{"rel":"self","type":"application/geo+json","href":' + url[:-1] + "/items/"
        tail = (
            '"},{"rel":"parent","type":"application/json","href":' + url
            + '},{"rel":"collection","type":"application/json","href":' + url
            + '},{"rel":"root","type":"application/json","href":' + self._root + "}]"
        )  # fmt: skip
        self._pieces[collection] = (head, tail)
        return head, tail

    def __call__(self, collection: str, item_id: str) -> str:
        head, tail = self._pieces.get(collection) or self._pieces_of(collection)
        return head + _quote(item_id) + tail


def item_json_text(
    stored: StoredItemText,
    base_url: str,
    cube_hrefs: CubeHrefs | None = None,
    links_text: ItemLinksText | None = None,
) -> str:
    """The item's JSON, structural links added, built from the database's text output.

    Why text: a search page of 100 items is 350 kB of JSON. Parsing it into dicts to add
    four links and printing it again (orjson both ways) was most of a search's Python time;
    splicing the links into the text costs a small part of that
    (bench/results/code_figures.md). The dict path (`row_to_item`) is taken only when an
    asset href lies under the cube root and must be rewritten, or when the item may be a
    cube (its web-map-links are added). The output holds what
    `orjson.dumps(row_to_item(...))` gives, in the same order; only whitespace and the
    spelling of numbers (PostgreSQL's) differ. A page passes one `links_text` for all its
    items.
    """
    rewrite = cube_hrefs is not None and cube_hrefs.json_root in stored.body
    if rewrite or may_be_cube(stored.body):
        item = json_codec.loads(stored.body)
        item["links"] = json_codec.loads(stored.links)
        return json_codec.dumps(row_to_item(item, base_url, cube_hrefs))
    links = (links_text or ItemLinksText(base_url))(stored.collection, stored.id)
    if stored.links != "[]":  # item_to_row always stores a list
        links = f"{links[:-1]}, {stored.links[1:]}"
    return f'{stored.body[:-1]}, "links": {links}}}'


def _serve_cube_assets(content: dict[str, Any], base_url: str, hrefs: CubeHrefs) -> None:
    for asset in (content.get("assets") or {}).values():
        if is_icechunk(asset):  # Icechunk 1.1 reads a local folder or S3, never HTTP
            continue
        href = asset.get("href") if isinstance(asset, dict) else None
        public = hrefs.public_href(href, base_url) if isinstance(href, str) else None
        if public is None:
            continue
        asset["href"] = public
        if "xarray:storage_options" in asset:  # they describe S3 access; HTTP needs none
            asset["xarray:storage_options"] = {}
        drop_storage_refs(content, asset)  # likewise its S3 storage scheme


def _extent_geometry(collection: dict[str, Any]) -> str | None:
    """The overall spatial extent (first bbox) as EWKT; split in two across the antimeridian."""
    try:
        bbox = collection["extent"]["spatial"]["bbox"][0]
        west, south, east, north = bbox if len(bbox) == 4 else [bbox[i] for i in (0, 1, 3, 4)]
        west, south, east, north = (float(v) for v in (west, south, east, north))
    except (KeyError, IndexError, TypeError, ValueError):
        return None
    if west <= east:
        return f"SRID=4326;{box(west, south, east, north).wkt}"
    parts = MultiPolygon([box(west, south, 180.0, north), box(-180.0, south, east, north)])
    return f"SRID=4326;{parts.wkt}"


def _extent_interval(collection: dict[str, Any]) -> tuple[datetime | None, datetime | None]:
    try:
        start, end = collection["extent"]["temporal"]["interval"][0]
    except (KeyError, IndexError, TypeError, ValueError):
        return None, None
    cid = collection.get("id")
    where = f"collection {cid!r}: extent.temporal.interval[0]"
    return (
        parse_datetime(start, where) if start else None,
        parse_datetime(end, where) if end else None,
    )


def collection_to_row(collection: dict[str, Any]) -> dict[str, Any]:
    """Validate the minimum a collection needs and strip its structural links."""
    if not isinstance(collection, dict):
        raise InvalidInputError("a collection must be a JSON object")
    collection_id = check_id(collection.get("id"), "collection")
    content = dict(collection)
    content["type"] = "Collection"
    content.setdefault("stac_version", STAC_VERSION)
    content["links"] = _own_links(collection)
    start, end = _extent_interval(content)
    return {
        "id": collection_id,
        "content": content,
        "extent_geometry": _extent_geometry(content),
        "extent_start": start,
        "extent_end": end,
    }


def collection_links(base_url: str, collection_id: str) -> list[dict[str, str]]:
    collection_url = f"{base_url}collections/{_quote(collection_id)}"
    return [
        {"rel": "self", "type": "application/json", "href": collection_url},
        {"rel": "parent", "type": "application/json", "href": base_url},
        {"rel": "root", "type": "application/json", "href": base_url},
        {"rel": "items", "type": "application/geo+json", "href": f"{collection_url}/items"},
        {
            "rel": "http://www.opengis.net/def/rel/ogc/1.0/queryables",
            "type": "application/schema+json",
            "href": f"{collection_url}/queryables",
        },
        {
            "rel": "http://www.opengis.net/def/rel/ogc/1.0/sortables",
            "type": "application/schema+json",
            "href": f"{collection_url}/sortables",
        },
    ]


def aggregation_links(url: str) -> list[dict[str, str]]:
    """The Aggregation extension's links of the landing page (`url` its root) or of a
    collection (`url` its own, ending in '/'): `aggregate` (GET and POST), `aggregations`."""
    return [
        {
            "rel": "aggregate",
            "type": "application/json",
            "href": f"{url}aggregate",
            "method": method,
        }
        for method in ("GET", "POST")
    ] + [{"rel": "aggregations", "type": "application/json", "href": f"{url}aggregations"}]


def row_to_collection(content: dict[str, Any], base_url: str) -> dict[str, Any]:
    own = f"{base_url}collections/{_quote(content['id'])}/"
    content["links"] = (
        collection_links(base_url, content["id"])
        + aggregation_links(own)
        + (content.get("links") or [])
    )
    return content


_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*")


def _quote(segment: str) -> str:
    """Percent-encode a path segment (ids may contain '/', spaces or '#'). Most ids hold
    only unreserved characters, which `quote` leaves alone: those are returned as they are,
    without its per-character work (a search page quotes every item's id)."""
    if _UNRESERVED.fullmatch(segment):
        return segment
    return quote(segment, safe="")
