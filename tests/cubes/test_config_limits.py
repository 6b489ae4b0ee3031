"""CONFIG problems that can be known before anything runs are refused with exit 2, naming
the field (or setting) and keeping every character of the message (issue 14, #5 and its
should-fix list): absurd grids, unknown CRSs, unparsable memory limits, unknown top-level
keys, messages with [brackets]."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from cubestac.cli import app
from tests.cubes.test_cli import cube, write_config


def run(args: list[str], **env: str) -> Any:
    result = CliRunner().invoke(app, args, env={"DATABASE_URL": "postgresql://-", **env})
    return result.exit_code, " ".join(result.output.split())  # rich wraps at spaces


ABSURD = {"crs": "EPSG:3035", "bbox": [0, 0, 40_000_000, 40_000_000], "resolution": 1}


@pytest.mark.parametrize("command", ["cubes", "run"])
def test_an_absurd_grid_is_refused_naming_its_size_and_the_setting(
    tmp_path: Path, command: str
) -> None:
    config = write_config(tmp_path, cube(grid=ABSURD))
    code, output = run([command, str(config)], CUBESTAC_CUBE_ROOT=str(tmp_path))
    assert code == 2, output
    assert "cubes[0].grid" in output
    assert "40,000,000 x 40,000,000 = 1.6e+15 pixels" in output
    assert "CUBESTAC_CUBES__MAX_GRID_PIXELS" in output


def test_the_grid_limit_is_a_setting(tmp_path: Path) -> None:
    config = write_config(tmp_path, cube())  # the test grid: a few thousand pixels
    code, output = run(
        ["cubes", str(config)],
        CUBESTAC_CUBE_ROOT=str(tmp_path),
        CUBESTAC_CUBES__MAX_GRID_PIXELS="100",
    )
    assert code == 2 and "over the limit of 100 pixels" in output


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"grid": {**cube()["grid"], "crs": "EPSG:999999"}}, "unknown CRS 'EPSG:999999'"),
        ({"compute": {"memory_limit": "lots"}}, "cubes[0].compute.memory_limit"),
        ({"compute": {"memory_limit": 0}}, "memory_limit must be positive"),
        ({"id": "Bad Id"}, "String should match pattern '^[a-z0-9][a-z0-9_-]*$'"),
        (
            {"grid": {**cube()["grid"], "bbox": [5, 0, 1, 10]}},
            "bbox must be [west, south, east, north] with west < east",
        ),
    ],
)
def test_config_errors_known_before_the_build_exit_2_in_full(
    tmp_path: Path, changes: dict[str, Any], expected: str
) -> None:
    config = write_config(tmp_path, cube(**changes))
    for command in ("cubes", "run"):
        code, output = run([command, str(config)], CUBESTAC_CUBE_ROOT=str(tmp_path))
        assert code == 2, output
        assert expected in output
        assert "Traceback" not in output


def test_an_unparsable_dask_memory_limit_variable_exits_2_naming_it(tmp_path: Path) -> None:
    config = write_config(tmp_path, cube())
    code, output = run(
        ["cubes", str(config)],
        CUBESTAC_CUBE_ROOT=str(tmp_path),
        CUBESTAC_DASK_MEMORY_LIMIT="lots",
    )
    assert code == 2 and "CUBESTAC_DASK_MEMORY_LIMIT" in output and "'lots'" in output


@pytest.mark.parametrize("command", ["cubes", "ingest", "run"])
def test_an_unknown_top_level_key_is_named(tmp_path: Path, command: str) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"sources": [], "cube": [cube()]}))
    code, output = run([command, str(config)], CUBESTAC_CUBE_ROOT=str(tmp_path))
    assert code == 2, output
    assert "cube: unknown top-level key (did you mean 'cubes'?)" in output
