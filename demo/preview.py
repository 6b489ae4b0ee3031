"""A PNG quicklook per demo cube, published as the item's `thumbnail` asset (STAC Browser
shows it on the item page and in lists).

The picture is the newest time step of the cube's first variable with a time axis (else its
first variable), stretched between its 2nd and 98th percentiles onto a green ramp; nodata is
transparent. GDAL's PNG driver (through rasterio, already a dependency) writes the file, so
no imaging library is added. It goes inside the cube's version folder
(`<version>.zarr/quicklook.png`): Zarr ignores files it does not know, and the picture lives
and is swept with the version it shows.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from catalogue.database import Database
from catalogue.repositories.items import get_item, upsert_items
from catalogue.serializers import item_to_row
from catalogue.settings import Settings

QUICKLOOK = "quicklook.png"
MAX_SIDE = 512
LOW = np.array([247, 252, 185], np.float32)  # pale yellow-green
HIGH = np.array([0, 90, 50], np.float32)  # dark green


async def add_quicklook(database: Database, spec: Any, href: str, settings: Settings) -> None:
    """Render the quicklook of the store at `href` and add it to the published item."""
    from cubes.write import CubeStore

    store = CubeStore(settings.cube_root or "", spec.collection, spec.id)
    filesystem, _ = store.filesystem()
    png, variable = await asyncio.to_thread(render, href, spec.zarr_format)
    target = f"{href}/{QUICKLOOK}"
    await asyncio.to_thread(filesystem.pipe_file, target, png)
    async with database.write() as conn:
        item = await get_item(conn, spec.collection, spec.id)
        item.setdefault("assets", {})["thumbnail"] = {
            "href": target,
            "type": "image/png",
            "roles": ["thumbnail"],
            "title": f"Quicklook: {variable}",
        }
        await upsert_items(conn, [item_to_row(item)])


def render(href: str, zarr_format: int) -> tuple[bytes, str]:
    """PNG bytes of the quicklook and the name of the variable it shows."""
    from catalogue.cube_layout import FULL_RESOLUTION_GROUP, group_url, store_url
    from cubes.write import open_written

    dataset = open_written(group_url(store_url(href), FULL_RESOLUTION_GROUP), zarr_format)
    names = [name for name in dataset.data_vars if {"y", "x"} <= set(dataset[name].dims)]
    timed = [name for name in names if "time" in dataset[name].dims]
    name = (timed or names)[0]
    data = dataset[name]
    for dim in data.dims:
        if dim not in ("y", "x"):
            data = data.isel({dim: -1})
    step = max(1, int(np.ceil(max(data.sizes["y"], data.sizes["x"]) / MAX_SIDE)))
    values = data.isel(y=slice(None, None, step), x=slice(None, None, step)).values
    return _png(_colour(values.astype(np.float64), data.attrs.get("_FillValue"))), str(name)


def _colour(values: np.ndarray, fill: Any) -> np.ndarray:
    valid = np.isfinite(values)
    if fill is not None and np.isfinite(fill):
        valid &= values != fill
    rgba = np.zeros((4, *values.shape), np.uint8)
    if valid.any():
        low, high = np.percentile(values[valid], [2, 98])
        scaled = np.clip((values - low) / ((high - low) or 1.0), 0, 1)
        colours = LOW[:, None, None] + (HIGH - LOW)[:, None, None] * scaled
        rgba[:3] = np.where(valid, colours, 0).astype(np.uint8)
    rgba[3] = np.where(valid, 255, 0)
    return rgba


def _png(rgba: np.ndarray) -> bytes:
    from rasterio.io import MemoryFile
    from rasterio.shutil import copy

    bands, height, width = rgba.shape
    with MemoryFile() as source, MemoryFile() as target:
        profile = {"driver": "GTiff", "width": width, "height": height, "count": bands}
        with source.open(**profile, dtype="uint8") as dataset:
            dataset.write(rgba)
        with source.open() as dataset:
            copy(dataset, target.name, driver="PNG")
        return target.read()
