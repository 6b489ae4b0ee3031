"""The `cubes:` section's model."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from cubes.spec import CubesConfig, CubeSpec
from tests.cubes import data


def spec(**changes: Any) -> dict[str, Any]:
    return {
        "id": "c", "collection": "k", "grid": data.GRID,
        "inputs": [{"collection": "x"}], **changes,
    }  # fmt: skip


def test_defaults_follow_the_design() -> None:
    cube = CubeSpec.model_validate(spec())
    assert cube.zarr_format == 2 and cube.compressor.name == "blosc"
    assert cube.inputs[0].resampling == "nearest" and cube.time is None
    assert cube.grid.tile_size == data.TILE


def test_shorthands_epsg_numbers_compressor_names_and_xy_resolution() -> None:
    cube = CubeSpec.model_validate(
        spec(grid={**data.GRID, "crs": 3035, "resolution": [30, 20]}, compressor="zstd")
    )
    assert cube.grid.crs == "EPSG:3035" and cube.grid.xy_resolution == (30, 20)
    assert cube.compressor.name == "zstd"


def test_a_date_range_covers_whole_days() -> None:
    cube = CubeSpec.model_validate(spec(time={"range": ["2007-01-01", "2022-12-31"]}))
    start, end = cube.time.bounds
    assert start == datetime(2007, 1, 1, tzinfo=UTC)
    assert end.date().isoformat() == "2022-12-31" and (end.hour, end.minute) == (23, 59)


@pytest.mark.parametrize(
    ("changes", "where"),
    [
        ({"id": "Not Valid"}, ("cubes", 0, "id")),
        ({"grid": {**data.GRID, "bbox": [10, 0, 0, 10]}}, ("cubes", 0, "grid", "bbox")),
        ({"grid": {**data.GRID, "resolution": 0}}, ("cubes", 0, "grid", "resolution")),
        ({"time": {"period": "fortnight"}}, ("cubes", 0, "time", "period")),
        ({"time": {"range": ["2020-01-01", "2019-01-01"]}}, ("cubes", 0, "time")),
        ({"zarr_format": 4}, ("cubes", 0, "zarr_format")),
        ({"inputs": []}, ("cubes", 0, "inputs")),
        ({"inputs": [{"collection": "x", "processing": "no colon"}]},
         ("cubes", 0, "inputs", 0, "processing")),
        ({"inputs": [{"collection": "x", "filter": {"op": "near", "args": []}}]},
         ("cubes", 0, "inputs", 0, "filter")),
        ({"compute": {"workers": 0}}, ("cubes", 0, "compute", "workers")),
        ({"collection": "../../x"}, ("cubes", 0, "collection")),
        ({"collection": ".."}, ("cubes", 0, "collection")),
        ({"inputs": [{"collection": "a/b"}]}, ("cubes", 0, "inputs", 0, "collection")),
        ({"unknown": 1}, ("cubes", 0, "unknown")),
        ({"timeseries": {"chunk": 0}}, ("cubes", 0, "timeseries")),
        ({"timeseries": {"chunks": 16}}, ("cubes", 0, "timeseries")),
        ({"timeseries": [16]}, ("cubes", 0, "timeseries")),
    ],
)  # fmt: skip
def test_bad_fields_are_reported_with_their_path(changes, where) -> None:
    with pytest.raises(ValidationError) as raised:
        CubesConfig.model_validate({"cubes": [spec(**changes)]})
    assert any(tuple(error["loc"][: len(where)]) == where for error in raised.value.errors())


def test_other_sections_are_left_to_their_owners() -> None:
    config = CubesConfig.model_validate({"sources": [{"id": "s"}], "cubes": [spec()]})
    assert [cube.id for cube in config.cubes] == ["c"]


@pytest.mark.parametrize(
    ("value", "chunk"), [(False, None), (True, "default"), ({}, "default"), ({"chunk": 16}, 16)]
)
def test_the_timeseries_layout_is_off_by_default_and_on_by_switch_or_chunk(value, chunk) -> None:
    layout = CubeSpec.model_validate(spec(timeseries=value)).timeseries_layout
    assert CubeSpec.model_validate(spec()).timeseries_layout is None
    if chunk is None:
        assert layout is None
    else:
        assert layout is not None and layout.chunk == (None if chunk == "default" else chunk)


def test_a_timeseries_chunk_larger_than_a_tile_is_refused_with_both_sizes() -> None:
    with pytest.raises(ValidationError, match=r"timeseries.chunk \(128\) is larger than grid"):
        CubeSpec.model_validate(spec(timeseries={"chunk": 2 * data.TILE}))


def test_the_config_schema_documents_the_timeseries_switch() -> None:
    from cubestac.run_commands import CubestacConfig

    schema = CubestacConfig.model_json_schema()
    field = schema["$defs"]["CubeSpec"]["properties"]["timeseries"]
    assert {"type": "boolean"} in field["anyOf"] and "time-series" in field["description"]
    assert "chunk" in schema["$defs"]["TimeseriesSpec"]["properties"]
