"""Bad input fails that cube alone, with a message naming the cube and the input; the next
cube of the run is still built (issue 5, "Bad input")."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from catalogue.repositories.jobs import JobStatus, recent_jobs
from tests.cubes import data
from tests.cubes.conftest import build, seed

HOOKS = """
import xarray as xr


def raises(ds: xr.Dataset) -> xr.Dataset:
    raise ValueError("no forest here")


def returns_an_array(ds: xr.Dataset):
    return ds["forest_type"]


def drops_space(ds: xr.Dataset) -> xr.Dataset:
    return ds.mean(["y", "x"])
"""


def good() -> dict[str, Any]:
    return {
        "id": "good",
        "collection": "ok",
        "grid": data.GRID,
        "inputs": [{"collection": "forest-type", "resampling": "mode"}],
    }


def bad(**changes: Any) -> dict[str, Any]:
    spec = {**good(), "id": "bad", **changes}
    if "input" in spec:
        spec["inputs"] = [{**spec["inputs"][0], **spec.pop("input")}]
    return spec


def no_crs_item(folder: Path, collection: str, **properties: Any) -> dict[str, Any]:
    """A GeoTIFF without any CRS; the item may claim one in `proj:` fields."""
    transform, width, height = data.grid_3035(30.0)
    path = folder / f"{collection}.tif"
    array = np.ones((height, width), np.float32)
    data.write_gtiff(path, transform, [array], math.nan, crs=None)
    geometry = data.footprint(transform, width, height, data.GRID_CRS)
    item = data.file_item(
        f"{collection}-1", collection, str(path), data.GTIFF, geometry, data.STATIC
    )
    item["properties"].update(properties)
    return item


far_away = {**data.GRID, "bbox": [b + 500_000 for b in data.BBOX]}
CASES = {
    "bbox misses every input": (
        bad(grid=far_away),
        ["cube 'bad' input 1 (forest-type)", "no item of collection 'forest-type' intersects"],
    ),
    "missing variable": (
        bad(input={"variables": ["forest_type", "tree_genus"]}),
        ["cube 'bad' input 1 (forest-type), item 'forest-type-1'",
         "variable 'tree_genus' not found (available: forest_type)"],
    ),
    "input without CRS": (
        bad(input={"collection": "no-crs"}),
        ["cube 'bad' input 1 (no-crs), item 'no-crs-1'", "has no CRS"],
    ),
    "input with an unknown CRS": (
        bad(input={"collection": "odd-crs"}),
        ["cube 'bad' input 1 (odd-crs), item 'odd-crs-1'", "unknown CRS 'EPSG:999999'"],
    ),
    "user code raises": (
        bad(input={"processing": "hooks_bad:raises"}),
        ["cube 'bad' input 1 (forest-type), item 'forest-type-1'",
         "processing 'hooks_bad:raises' raised ValueError: no forest here"],
    ),
    "user code returns the wrong type": (
        bad(input={"processing": "hooks_bad:returns_an_array"}),
        ["cube 'bad' input 1 (forest-type)",
         "returned DataArray, expected xarray.Dataset"],
    ),
    "user code drops the spatial dimensions": (
        bad(input={"processing": "hooks_bad:drops_space"}),
        ["cube 'bad' input 1 (forest-type)", "without both y and x"],
    ),
    "user code that does not import": (
        bad(input={"processing": "no_such_module:f"}),
        ["cube 'bad' input 1 (forest-type)", "cannot import 'no_such_module'"],
    ),
    "unwritable output": (
        bad(collection="blocked"),
        ["cube 'bad' output", "cannot write under the cube root"],
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
async def test_bad_input_fails_that_cube_alone_naming_cube_and_input(
    database, compute_pool, tmp_path, case
) -> None:
    spec, expected = CASES[case]
    (tmp_path / "hooks_bad.py").write_text(textwrap.dedent(HOOKS))
    await seed(
        database,
        [
            data.forest_type(tmp_path).item,
            no_crs_item(tmp_path, "no-crs"),
            no_crs_item(tmp_path, "odd-crs", **{"proj:code": "EPSG:999999"}),
        ],
    )
    root = tmp_path / "cubes"
    root.mkdir()
    (root / "blocked").write_text("a file where the collection's folder would go")
    results = await build(database, [spec, good()], root, compute_pool, config_dir=tmp_path)
    assert [r.status for r in results] == [JobStatus.FAILED, JobStatus.SUCCEEDED]
    for fragment in expected:
        assert fragment in results[0].message
    async with database.read() as conn:
        jobs = {job["target"]: job for job in await recent_jobs(conn)}
    assert jobs["bad"]["status"] == JobStatus.FAILED
    assert jobs["bad"]["message"] == results[0].message
    assert Path(results[1].href or "").is_dir()
