"""The cube root's disk fills up during a rebuild: the build fails with the system's own
"No space left on device", the published version keeps its href and its values, the partial
version is removed, and once there is room again the next build publishes.

The small disk is a 4 MiB tmpfs mounted for the test (root with CAP_SYS_ADMIN, as in CI);
where mounting is refused the test is skipped and says why."""

from __future__ import annotations

import errno
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import xarray as xr

from catalogue.cube_layout import store_url
from catalogue.repositories.jobs import JobStatus
from tests.cubes import data
from tests.cubes.conftest import build, seed
from tests.cubes.test_publish import cube, href_of, versions


@pytest.fixture
def small_disk() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="cubestac-small-disk-"))
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        folder.rmdir()
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=False)
        folder.rmdir()


def fill(folder: Path) -> Path:
    """Write a file until the disk is full; returns it."""
    filler = folder / "filler"
    with filler.open("wb") as handle:
        try:
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
        except OSError as error:
            assert error.errno == errno.ENOSPC
    return filler


async def test_a_full_cube_root_fails_the_build_and_keeps_the_published_version(
    database, compute_pool, tmp_path, small_disk: Path
) -> None:
    await seed(database, [data.forest_type(tmp_path).item])
    root = small_disk / "cubes"
    [first] = await build(database, [cube()], root, compute_pool)
    assert first.status is JobStatus.SUCCEEDED, first.message
    published = await href_of(database)
    before = xr.open_zarr(published).load()

    filler = fill(small_disk)
    [full] = await build(database, [cube()], root, compute_pool)
    assert full.status is JobStatus.FAILED
    assert "No space left on device" in full.message, full.message
    assert await href_of(database) == published
    xr.testing.assert_identical(xr.open_zarr(published).load(), before)
    assert versions(root) == [Path(store_url(published)).name]  # the partial one was removed

    filler.unlink()
    [again] = await build(database, [cube()], root, compute_pool)
    assert again.status is JobStatus.SUCCEEDED, again.message
    assert await href_of(database) != published
    xr.testing.assert_equal(xr.open_zarr(await href_of(database)).load(), before)
