"""The assets and version fields of a versioned (Icechunk) cube's item
(`catalogue.icechunk_repo`; README, "Versioned cubes").

The `zarr` asset is the repository itself, typed `application/vnd.zarr+icechunk` with the
role `latest-version`: it opens the tip of `main`, whatever was committed last, which is
how xpystac opens it (no `version` field on the asset). The item states the version it
describes in `version` (the version extension: the snapshot id), and links the version
before it (`predecessor-version`) and the latest (`latest-version`, the item itself) by
hrefs relative to the item, which the API makes absolute when it serves the item
(`catalogue.version_links`, which also sets these fields); the API's
`/collections/{c}/items/{i}/versions/{snapshot id}` serves the item of any past version,
its assets pinned to that snapshot by the asset field `version` (`api.versions`).
"""

from __future__ import annotations

from typing import Any

from catalogue.cube_layout import DATA_ASSET, TIMESERIES_ASSET, TIMESERIES_GROUP
from catalogue.icechunk_repo import ICECHUNK_MEDIA_TYPE, LATEST_ROLE, ROOT_LEVEL
from cubes.pyramid import Pyramid
from cubes.sharding import read_chunks
from cubes.spec import CubeSpec


def icechunk_assets(
    cube: CubeSpec,
    repository: str,
    storage_options: dict[str, Any],
    categorical: list[str],
    pyramid: Pyramid,
) -> dict[str, dict[str, Any]]:
    """`zarr` (the repository: level 0 at its root, every level in it) and, with the
    time-series layout, `zarr-timeseries` (its group `timeseries/`)."""
    title = cube.title or cube.id
    open_kwargs: dict[str, Any] = {"consolidated": False, "zarr_format": 3, "chunks": {}}
    if categorical:
        open_kwargs["mask_and_scale"] = {name: False for name in categorical}
    common = {
        "href": repository,
        "type": ICECHUNK_MEDIA_TYPE,
        "zarr:zarr_format": 3,
        "zarr:node_type": "group",
        "zarr:consolidated": False,
        "xarray:storage_options": dict(storage_options),
    }
    full = {
        **common,
        "title": f"{title} (Icechunk repository, Zarr format 3): the latest version",
        "description": "An Icechunk repository; branch `main` is the latest version, each "
        "build one commit. Open it with icechunk: `Repository.open(storage)."
        "readonly_session(branch='main').store` (a past version: `snapshot_id=` the "
        "item's `version`), then `xarray.open_zarr(store, **xarray:open_kwargs)`. Level 0 "
        "is the root group; level k the group `k/`.",
        "roles": ["data", LATEST_ROLE],
        "xarray:open_kwargs": {
            **open_kwargs,
            "chunks": read_chunks(pyramid.shard_sides.get("map")),
        },
        "multiscales": _levels(pyramid),
    }
    assets = {DATA_ASSET: full}
    if pyramid.timeseries_chunk is not None:
        assets[TIMESERIES_ASSET] = {
            **common,
            "title": f"{title}: time-series layout (group `{TIMESERIES_GROUP}/` of the "
            "Icechunk repository)",
            "description": "The full resolution again, each chunk holding the whole time "
            f"axis of {pyramid.timeseries_chunk} x {pyramid.timeseries_chunk} pixels.",
            "roles": ["data", "timeseries"],
            "xarray:open_kwargs": {
                **open_kwargs,
                "group": TIMESERIES_GROUP,
                "chunks": read_chunks(pyramid.shard_sides.get("timeseries")),
            },
        }
    return assets


def _levels(pyramid: Pyramid) -> dict[str, Any]:
    return {
        "levels": [
            {
                "path": ROOT_LEVEL if index == 0 else level.path,
                "scale": level.scale,
                "shape": list(level.shape or ()),
                "transform": list(level.transform or ()),
            }
            for index, level in enumerate(pyramid.levels)
        ],
        "resampling": dict(pyramid.resampling),
    }
