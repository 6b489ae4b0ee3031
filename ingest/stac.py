"""STAC item checks and small pure transformations shared by the harvesters.

`check_item` is the structural part of "valid STAC" that `catalogue.serializers.item_to_row`
leaves out (it checks id, collection, geometry and datetimes): version, bbox, links and
assets. It is deliberately hand-written and cheap, because it runs on every harvested item;
the tests validate what harvesting produces against the full JSON schemas.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Set as AbstractSet
from typing import Any

import orjson
from pystac.utils import make_absolute_href

from catalogue.errors import InvalidBboxError, InvalidInputError
from catalogue.serializers import item_to_row
from catalogue.stac_migration import Normalised, normalise_collection, normalise_item
from ingest.errors import RecordError

logger = logging.getLogger(__name__)
NUMBERS = (int, float)  # a tuple: `int | float` would build a union object per call


def _problem(item: dict[str, Any]) -> str | None:
    """What makes `item` structurally invalid, or None."""
    if not isinstance(item.get("stac_version"), str):
        return "`stac_version` must be a string"
    extensions = item.get("stac_extensions", [])
    if not isinstance(extensions, list) or not all(isinstance(e, str) for e in extensions):
        return "`stac_extensions` must be a list of schema URLs"
    bbox = item.get("bbox")
    if bbox is not None and not _is_bbox(bbox):
        return "`bbox` must be 4 or 6 finite numbers"
    links = item.get("links", [])
    if not isinstance(links, list) or not all(_is_link(link) for link in links):
        return "`links` must be a list of objects with `rel` and `href` strings"
    assets = item.get("assets")
    if not isinstance(assets, dict):
        return "`assets` must be an object"
    for key, asset in assets.items():
        if not isinstance(asset, dict) or not isinstance(asset.get("href"), str):
            return f"asset {key!r} must be an object with an `href` string"
    return None


def _is_bbox(bbox: Any) -> bool:
    return (
        isinstance(bbox, list)
        and len(bbox) in (4, 6)
        and all(isinstance(v, NUMBERS) and math.isfinite(v) for v in bbox)
    )


def _is_link(link: Any) -> bool:
    return (
        isinstance(link, dict)
        and isinstance(link.get("rel"), str)
        and isinstance(link.get("href"), str)
    )


def item_row(item: Any, url: str) -> dict[str, Any]:
    """Check a harvested item and turn it into a catalogue row; RecordError names `url`."""
    if not isinstance(item, dict) or item.get("type") != "Feature":
        raise RecordError(url, "not a STAC item (expected a GeoJSON Feature object)")
    problem = _problem(item)
    if problem is not None:
        raise RecordError(url, f"not a valid STAC item: {problem}")
    try:
        try:
            return item_to_row(item)
        except InvalidBboxError as error:
            # upstream data is what it is: the geometry is what search uses, so a bbox that
            # disagrees with it is recomputed (and said) rather than losing the item
            logger.warning("%s: %s; stored with the geometry's bounds instead", url, error)
            return item_to_row({**item, "bbox": error.geometry_bbox})
    except InvalidInputError as error:
        raise RecordError(url, str(error)) from error


def current_item(item: Any, url: str) -> Normalised:
    """The harvested item in the served STAC version (`catalogue.stac_migration`), with
    what was changed; RecordError names `url` when it cannot be migrated."""
    try:
        return normalise_item(item)
    except InvalidInputError as error:
        raise RecordError(url, str(error)) from error


def current_collection(collection: Any, where: str) -> Normalised:
    """The harvested collection in the served STAC version, with what was changed."""
    try:
        return normalise_collection(collection)
    except InvalidInputError as error:
        raise RecordError(where, str(error)) from error


def absolute_hrefs(document: dict[str, Any], base: str) -> dict[str, Any]:
    """A copy whose relative asset and link hrefs are resolved against `base` (the URL the
    document was read from), so they still work once the item lives in the catalogue."""
    resolved = dict(document)
    if isinstance(document.get("assets"), dict):
        resolved["assets"] = {
            key: _resolved(asset, base) for key, asset in document["assets"].items()
        }
    if isinstance(document.get("links"), list):
        resolved["links"] = [_resolved(link, base) for link in document["links"]]
    return resolved


def collection_document(
    document: dict[str, Any], base: str, dropped_rels: AbstractSet[str]
) -> dict[str, Any]:
    """A harvested collection as the catalogue keeps it: hrefs absolute (`absolute_hrefs`)
    and no links of `dropped_rels`, which lead into the upstream tree or its paging and
    would send a client back there instead of to the catalogue."""
    resolved = absolute_hrefs(document, base)
    resolved["links"] = [
        link
        for link in resolved.get("links") or []
        if isinstance(link, dict) and link.get("rel") not in dropped_rels
    ]
    return resolved


def _resolved(target: Any, base: str) -> Any:
    if not isinstance(target, dict):
        return target
    href = target.get("href")
    if not isinstance(href, str) or "://" in href:
        return target
    return {**target, "href": make_absolute_href(href, base)}


def item_fingerprint(item: dict[str, Any]) -> str:
    """What tells an unchanged item from a changed one without comparing it whole: its
    `updated` timestamp when it has one, else a hash of its content."""
    properties = item.get("properties")
    updated = properties.get("updated") if isinstance(properties, dict) else None
    if isinstance(updated, str) and updated:
        return f"updated:{updated}"
    content = orjson.dumps(item, option=orjson.OPT_SORT_KEYS)
    return "sha256:" + hashlib.sha256(content).hexdigest()
