"""The xpublish-tiles side of bench/tiles.py: one Zarr store served by xpublish's
`SingleDatasetRest` with the `TilesPlugin`, as xpublish-tiles' own CLI serves a
`zarr+file://` store. It runs with the peer venv's python (xpublish-tiles needs Python >=
3.12), never with the project's, and imports nothing from the project.

    TILEBENCH_ZARR=/path/store.zarr/0 python -m uvicorn tiles_xpublish_app:app --workers 2

`TILEBENCH_ZARR` is the store or group to serve; with `TILEBENCH_TREE=1` it is opened as
a DataTree (a GeoZarr multiscales root: xpublish-tiles picks the level per zoom).
"""

from __future__ import annotations

import os

import xarray as xr
import xpublish
from xpublish_tiles.xpublish.tiles.plugin import TilesPlugin


def open_store(path: str, as_tree: bool) -> xr.Dataset | xr.DataTree:
    """Open the store as the xpublish-tiles CLI does (no dask chunks, coords decoded)."""
    if as_tree:
        data: xr.Dataset | xr.DataTree = xr.open_datatree(
            path, engine="zarr", chunks=None, decode_coords="all"
        )
    else:
        data = xr.open_zarr(path, chunks=None, decode_coords="all")
    data.attrs["_xpublish_id"] = f"zarr+file:{path}"  # its caches are keyed by this id
    return data


app = xpublish.SingleDatasetRest(
    open_store(os.environ["TILEBENCH_ZARR"], os.environ.get("TILEBENCH_TREE") == "1"),
    plugins={"tiles": TilesPlugin()},
).app
