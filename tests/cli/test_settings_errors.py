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
