"""The version extension's fields and links of a versioned (Icechunk) cube item
(https://github.com/stac-extensions/version, v1.2.0; `catalogue.icechunk_repo`).

An item states the version it describes in `properties.version` (the snapshot id). Each
version of such an item is served at `<item>/versions/<snapshot id>` (`api.versions`),
its Icechunk assets pinned to the snapshot by the asset field `version` (which xpystac
opens as a branch, tag or snapshot id). The builder stores the link to the previous
version relative to the item (`./<id>/versions/<id>`), since it does not know the public
URL; when the API serves the item (or one of its versions) the version links are made
absolute, and the latest version is linked as the item itself, whose `zarr` asset always
opens the tip of `main`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urljoin

from catalogue.icechunk_repo import LATEST_ROLE, is_icechunk
from catalogue.storage_extension import (
    SCHEMES,
    S3Access,
    add_storage_fields,
    environment_region,
)
from catalogue.web_map_links import item_url

VERSION_EXTENSION = "https://stac-extensions.github.io/version/v1.2.0/schema.json"
VERSIONS_PATH = "versions"
VERSION_RELS = ("latest-version", "predecessor-version", "successor-version")
GEOJSON = "application/geo+json"


def version_href(item_id: str, snapshot_id: str) -> str:
    """The href of one version, relative to the item's own URL."""
    return f"./{quote(item_id, safe='')}/{VERSIONS_PATH}/{quote(snapshot_id, safe='')}"


def version_link(rel: str, item_id: str, snapshot_id: str) -> dict[str, Any]:
    which = "before" if rel == "predecessor-version" else "after"
    return {
        "rel": rel,
        "href": version_href(item_id, snapshot_id),
        "type": GEOJSON,
        "title": f"The version {which} (snapshot {snapshot_id})",
    }


def add_version_fields(
    item: dict[str, Any],
    snapshot_id: str,
    predecessor_id: str | None,
    storage_options: dict[str, Any],
    successor_id: str | None = None,
) -> dict[str, Any]:
    """The version extension's `version` and links to the versions before and after, and
    the storage extension's fields when the repository is on S3 (what xpystac's Icechunk
    reader needs). The schema wants `storage:schemes` in the properties; xpystac 0.5,
    written for collection-level assets, reads them at the top level of the asset's owner,
    so an item carries them in both places."""
    item["properties"]["version"] = snapshot_id
    links = [link for link in item.get("links") or [] if link.get("rel") not in VERSION_RELS]
    for rel, other in (
        ("predecessor-version", predecessor_id),
        ("successor-version", successor_id),
    ):
        if other is not None:
            links.append(version_link(rel, item["id"], other))
    item["links"] = links
    extensions = item.setdefault("stac_extensions", [])
    if VERSION_EXTENSION not in extensions:
        extensions.append(VERSION_EXTENSION)
    add_storage_fields(item, S3Access.from_options(storage_options, environment_region()))
    schemes = item["properties"].get(SCHEMES)
    if schemes:  # xpystac 0.5 reads them from the asset's owner's top-level fields
        item[SCHEMES] = schemes
    return item


def pin_assets(item: dict[str, Any], snapshot_id: str) -> dict[str, Any]:
    """A past version's item: each Icechunk asset opens `snapshot_id` (its `version`
    field) and no longer has the role `latest-version`."""
    for asset in (item.get("assets") or {}).values():
        if is_icechunk(asset):
            asset["version"] = snapshot_id
            asset["roles"] = [role for role in asset.get("roles") or [] if role != LATEST_ROLE]
    return item


def is_versioned(item: Mapping[str, Any]) -> bool:
    return VERSION_EXTENSION in (item.get("stac_extensions") or ())


def add_version_links(item: dict[str, Any], base_url: str) -> None:
    """Make the stored version links absolute and link the latest version (the item)."""
    if not is_versioned(item):
        return
    url = item_url(item, base_url)
    links = [link for link in item.get("links") or [] if link.get("rel") != "latest-version"]
    for link in links:
        if link.get("rel") in VERSION_RELS and str(link.get("href", "")).startswith("./"):
            link["href"] = urljoin(url, link["href"])
    latest = {"rel": "latest-version", "href": url, "type": GEOJSON, "title": "The latest version"}
    item["links"] = [*links, latest]
