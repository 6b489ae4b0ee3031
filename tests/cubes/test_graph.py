"""Graphs never carry array data (issue 5, "Compute"): every task of a cube's write graph
pickles to a small fraction of one chunk, whatever the inputs hold."""

from __future__ import annotations

import cloudpickle

from cubes.build import build_cube
from cubes.cf import cf_dataset, encoding
from cubes.grid import target_geobox
from cubes.resolve import ResolvedInput
from cubes.spec import CubeSpec
from tests.cubes import data

TILE = 128
CHUNK_BYTES = TILE * TILE * 4  # one float32 tile


def test_no_task_carries_pixels(tmp_path) -> None:
    (tmp_path / "hooks_graph.py").write_text(
        "def mean(ds):\n    return ds.mean('member', keep_attrs=True)\n"
    )
    sources = [
        data.forest_type(tmp_path), data.biomass(tmp_path), data.cci_biomass(tmp_path),
        data.forest_age(tmp_path), data.disturbance(tmp_path),
    ]  # fmt: skip
    spec = CubeSpec.model_validate({
        "id": "graph", "collection": "c", "grid": {**data.GRID, "tile_size": TILE},
        "inputs": [
            {"collection": "forest-type", "resampling": "mode"},
            {"collection": "biomass", "resampling": "bilinear"},
            {"collection": "cci-biomass", "resampling": "bilinear", "rename": {"agb": "cci"}},
            {"collection": "forest-age", "resampling": "bilinear",
             "processing": "hooks_graph:mean"},
            {"collection": "disturbance", "resampling": "nearest"},
        ],
    })  # fmt: skip
    geobox = target_geobox(spec.grid, spec.id)
    inputs = [ResolvedInput(i, spec.inputs[i], [s.item]) for i, s in enumerate(sources)]
    built = build_cube(spec, inputs, geobox, tmp_path)
    dataset = cf_dataset(built, spec, geobox)
    work = dataset.to_zarr(
        tmp_path / "cube.zarr", compute=False, zarr_format=2,
        encoding=encoding(dataset, built, spec),
    )  # fmt: skip
    tasks = dict(work.__dask_graph__())
    sizes = [len(cloudpickle.dumps(task)) for task in tasks.values()]
    input_bytes = sum(a.nbytes for s in sources for a in s.arrays.values())
    assert input_bytes > 20 * CHUNK_BYTES  # the inputs hold many tiles' worth of pixels
    assert max(sizes) < CHUNK_BYTES / 4  # yet no task could hold even a quarter of one
    assert sum(sizes) / len(sizes) < 4096
