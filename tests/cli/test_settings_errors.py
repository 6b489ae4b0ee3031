"""A bad CUBESTAC_* variable is named on stderr, exit status 2, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("CUBESTAC_CUBE_PUBLIC_BASE", "bucket.example.org", "valid URL"),
        ("CUBESTAC_CUBE_ANON", "maybe", "valid boolean"),
        # settings added for issues 13 and 14: out of range or not a value of their type
        ("CUBESTAC_API__COUNT_TIMEOUT_MS", "-1", "greater than or equal to 0"),
        ("CUBESTAC_API__COUNT_TIMEOUT_MS", "600000", "less than or equal to 60000"),
        ("CUBESTAC_API__MAX_LIMIT", "20000", "less than or equal to 10000"),
        ("CUBESTAC_SERVER__HEADER_TIMEOUT_S", "0", "greater than 0"),
        ("CUBESTAC_MONITORING__METRICS", "maybe", "valid boolean"),
        ("CUBESTAC_CUBES__MAX_GRID_PIXELS", "lots", "valid integer"),
        # issue 16
        ("CUBESTAC_API__AGGREGATE_TIMEOUT_MS", "10", "greater than or equal to 100"),
        ("CUBESTAC_API__MAX_CHILD_LINKS", "0", "greater than or equal to 1"),
        # issue 15
        ("CUBESTAC_EDR__MAX_AREA_PIXELS", "0", "greater than or equal to 1"),
        ("CUBESTAC_EDR__MAX_VERTICES", "3", "greater than or equal to 4"),
        ("CUBESTAC_EDR__MAX_POSITION_CHUNKS", "none", "valid integer"),
        ("CUBESTAC_TILES__CHUNK_CACHE_MB", "-1", "greater than or equal to 0"),
    ],
)
def test_a_bad_setting_is_named(name: str, value: str, says: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", "from cubestac.cli import main; main()", "db", "status"],
        env={**os.environ, name: value},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert f"error: {name}: " in done.stderr and says in done.stderr
    assert "Traceback" not in done.stderr
