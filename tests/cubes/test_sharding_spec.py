"""The `zarr_format` / `sharding` settings of a cube (issue 18): defaults, and CONFIG
mistakes refused with a message naming the field."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from cubes.sharding import shard_encoding, timeseries_shard_side
from cubes.spec import CubeSpec
from tests.cubes import data


def cube(**fields: Any) -> CubeSpec:
    grid = {**data.GRID, "tile_size": fields.pop("tile_size", 2048)}
    spec = {"id": "c", "collection": "c", "grid": grid, "inputs": [{"collection": "i"}]}
    return CubeSpec.model_validate({**spec, **fields})


@pytest.mark.parametrize(
    ("fields", "inner"),
    [
        ({}, None),  # Zarr v2: no shards
        ({"zarr_format": 3}, 512),  # v3: sharded by default, inner chunks of 512 px
        ({"zarr_format": 3, "sharding": True}, 512),
        ({"zarr_format": 3, "sharding": False}, None),
        ({"zarr_format": 3, "sharding": {"chunks": 256}}, 256),
        ({"zarr_format": 3, "tile_size": 1000}, 500),  # the largest divisor up to 512
        ({"zarr_format": 3, "tile_size": 256}, 256),  # a tile smaller than 512: one chunk
        ({"zarr_format": 3, "tile_size": 1031}, 1031),  # a prime: one chunk per shard
    ],
)
def test_inner_chunk_defaults(fields: dict[str, Any], inner: int | None) -> None:
    assert cube(**fields).inner_chunk == inner


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"sharding": True}, "sharding needs zarr_format: 3"),
        ({"sharding": {"chunks": 512}}, "sharding needs zarr_format: 3"),
        ({"zarr_format": 3, "sharding": {"chunks": 300}}, "sharding.chunks (300) must divide"),
        ({"zarr_format": 3, "sharding": {"chunks": 4096}}, "must divide grid.tile_size (2048)"),
        ({"zarr_format": 3, "sharding": {"chunks": 8}}, "greater than or equal to 16"),
        ({"zarr_format": 3, "sharding": {"shards": 2}}, "sharding.ShardingSpec.shards"),
        ({"zarr_format": 4}, "zarr_format"),
    ],
)
def test_bad_sharding_is_refused_naming_the_field(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as raised:
        cube(**fields)
    assert message in str(raised.value)


def test_a_shard_is_the_write_chunk_split_in_y_x_only() -> None:
    # level 0 of a (time, y, x) variable, tiles of 2048 written one step per task
    assert shard_encoding((1, 2048, 2048), ("time", "y", "x"), 512) == {
        "chunks": (1, 512, 512),
        "shards": (1, 2048, 2048),
    }
    # a level written 4 steps per task: inner chunks of one step
    assert shard_encoding((4, 100, 2048), ("time", "y", "x"), 512) == {
        "chunks": (1, 100, 512),
        "shards": (4, 100, 2048),
    }
    # an axis shorter than a tile and than an inner chunk... or longer than an inner chunk
    assert shard_encoding((700,), ("x",), 512) == {"chunks": (512,), "shards": (1024,)}
    # the time-series layout keeps the whole time axis in each inner chunk
    assert shard_encoding((365, 64, 64), ("time", "y", "x"), 16, whole=("time",)) == {
        "chunks": (365, 16, 16),
        "shards": (365, 64, 64),
    }


def test_time_series_shards_stay_under_their_byte_target() -> None:
    assert timeseries_shard_side(16, 3650, 4, 2048) == 64  # 3650 x 64 x 64 x 4 B = 60 MB
    assert timeseries_shard_side(16, 10, 4, 2048) == 1024
    assert timeseries_shard_side(16, 10, 4, 256) == 256  # never wider than a tile
    assert timeseries_shard_side(64, 100_000, 8, 2048) == 64  # one chunk is over: alone
