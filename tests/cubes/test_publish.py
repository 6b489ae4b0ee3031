"""Atomic publishing: a rebuild writes a new version and switches the item's href last; old
versions stay readable for the grace period; a failed build changes nothing readers see."""

from __future__ import annotations

import textwrap
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from catalogue.cube_layout import store_url
from catalogue.repositories.collections import get_collection
from catalogue.repositories.items import get_item
from catalogue.repositories.jobs import JobStatus, recent_jobs, target_lock
from cubes.runner import Reporter
from tests.cubes import data
from tests.cubes.conftest import build, seed

FAILING_HOOK = """
import xarray as xr


def fail_mid_write(ds: xr.Dataset) -> xr.Dataset:
    def maybe_fail(block, block_info=None):
        if block_info[0]["chunk-location"][-1] == 1:
            raise RuntimeError("disk on fire")
        return block

    def fail_in_one_block(v: xr.DataArray) -> xr.DataArray:
        return v.copy(data=v.data.rechunk(128).map_blocks(maybe_fail, dtype=v.dtype))

    return ds.map(fail_in_one_block)
"""


def cube(**extra: Any) -> dict[str, Any]:
    return {
        "id": "types",
        "collection": "scs2",
        "grid": data.GRID,
        "inputs": [{"collection": "forest-type", "resampling": "mode", **extra.pop("input", {})}],
        **extra,
    }


async def href_of(database, collection: str = "scs2", cube_id: str = "types") -> str:
    async with database.read() as conn:
        item = await get_item(conn, collection, cube_id)
    return item["assets"]["zarr"]["href"]


async def store_of(database) -> str:
    """The store (version) the item's `zarr` asset (`<store>/0`) lives in."""
    return store_url(await href_of(database))


def versions(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "scs2" / "types").iterdir())


async def test_a_rebuild_switches_the_href_and_the_old_version_stays_readable(
    database, compute_pool, tmp_path
) -> None:
    await seed(database, [data.forest_type(tmp_path).item])
    root = tmp_path / "cubes"
    [first] = await build(database, [cube()], root, compute_pool)
    old = await href_of(database)
    [second] = await build(database, [cube()], root, compute_pool)
    new = await href_of(database)
    assert first.status is second.status is JobStatus.SUCCEEDED
    assert old != new and second.href == new
    assert Path(store_url(old)).with_suffix(".retired").is_file()  # kept for the grace period
    xr.testing.assert_equal(xr.open_zarr(old).load(), xr.open_zarr(new).load())
    old_levels = xr.open_datatree(store_url(old), engine="zarr", consolidated=True)
    new_levels = xr.open_datatree(store_url(new), engine="zarr", consolidated=True)
    assert set(old_levels.children) == set(new_levels.children) == {"0", "1", "2"}
    for path in ("1", "2"):  # a reader of the old version still has all its levels
        xr.testing.assert_equal(old_levels[path].to_dataset(), new_levels[path].to_dataset())


async def test_versions_past_the_grace_period_are_removed(database, compute_pool, tmp_path) -> None:
    await seed(database, [data.forest_type(tmp_path).item])
    root = tmp_path / "cubes"
    spec = cube(grace_period=0)
    await build(database, [spec], root, compute_pool)
    await build(database, [spec], root, compute_pool)
    assert versions(root) == [Path(await store_of(database)).name]


async def test_a_failed_rebuild_leaves_the_published_cube_untouched(
    database, compute_pool, tmp_path
) -> None:
    (tmp_path / "hooks_fail.py").write_text(textwrap.dedent(FAILING_HOOK))
    await seed(database, [data.forest_type(tmp_path).item])
    root = tmp_path / "cubes"
    await build(database, [cube()], root, compute_pool)
    published = await href_of(database)
    before = xr.open_zarr(published).load()
    failing = cube(input={"processing": "hooks_fail:fail_mid_write"})
    [result] = await build(database, [failing], root, compute_pool, config_dir=tmp_path)
    assert result.status is JobStatus.FAILED
    assert "disk on fire" in result.message
    assert await href_of(database) == published
    xr.testing.assert_identical(xr.open_zarr(published).load(), before)
    assert versions(root) == [Path(store_url(published)).name]  # the partial one was removed


async def test_leftovers_of_a_killed_build_are_swept_by_the_next_build(
    database, compute_pool, tmp_path
) -> None:
    await seed(database, [data.forest_type(tmp_path).item])
    root = tmp_path / "cubes"
    debris = root / "scs2" / "types" / "20000101T000000000000Z-dead00.zarr"
    (debris / "forest_type").mkdir(parents=True)
    (debris / ".zgroup").write_text('{"zarr_format": 2}')
    [result] = await build(database, [cube()], root, compute_pool)
    assert result.status is JobStatus.SUCCEEDED
    assert not debris.exists()


async def test_a_cube_locked_by_another_run_is_skipped(
    database, compute_pool, tmp_path, session_engine
) -> None:
    await seed(database, [data.forest_type(tmp_path).item])
    async with target_lock(session_engine, "cube", "types") as held:
        assert held
        [result] = await build(database, [cube()], tmp_path / "cubes", compute_pool)
    assert result.status is JobStatus.SKIPPED and "another run" in result.message
    async with database.read() as conn:
        jobs = [job for job in await recent_jobs(conn) if job["target"] == "types"]
    assert jobs[0]["status"] == JobStatus.SKIPPED
    assert not (tmp_path / "cubes").exists()


async def test_jobs_record_each_build(database, compute_pool, tmp_path) -> None:
    await seed(database, [data.forest_type(tmp_path).item])
    [result] = await build(database, [cube()], tmp_path / "cubes", compute_pool)
    async with database.read() as conn:
        [job] = [job for job in await recent_jobs(conn) if job["target"] == "types"]
    assert job["kind"] == "cube" and job["status"] == JobStatus.SUCCEEDED
    assert job["counts"]["bytes"] == result.size_bytes > 0
    assert job["counts"]["items"] == 1 and job["counts"]["variables"] == 1
    assert job["message"] == f"published {result.href}"


async def test_a_static_cube_takes_its_time_from_the_items(
    database, compute_pool, tmp_path
) -> None:
    await seed(database, [data.forest_type(tmp_path).item])
    await build(database, [cube()], tmp_path / "cubes", compute_pool)
    async with database.read() as conn:
        item = await get_item(conn, "scs2", "types")
    assert item["properties"]["datetime"] == "2020-06-01T00:00:00Z"
    assert "time" not in item["properties"]["cube:dimensions"]


async def test_the_collection_extent_grows_with_each_cube(database, compute_pool, tmp_path) -> None:
    source = data.forest_type(tmp_path)
    await seed(database, [source.item])
    shifted = {
        **data.GRID,
        "bbox": [b + (300 if i % 2 == 0 else 0) for i, b in enumerate(data.BBOX)],
    }
    specs = [cube(), {**cube(), "id": "types-east", "grid": shifted}]
    results = await build(database, specs, tmp_path / "cubes", compute_pool)
    assert [r.status for r in results] == [JobStatus.SUCCEEDED] * 2
    async with database.read() as conn:
        collection = await get_collection(conn, "scs2")
        items = [await get_item(conn, "scs2", cube_id) for cube_id in ("types", "types-east")]
    [bbox] = collection["extent"]["spatial"]["bbox"]
    assert bbox[0] == items[0]["bbox"][0] and bbox[2] == items[1]["bbox"][2]
    assert bbox[0] < items[1]["bbox"][0] and np.isclose(bbox[2] - bbox[0], bbox[2] - bbox[0])


async def test_progress_is_reported_per_cube_up_to_completion(
    database, compute_pool, tmp_path
) -> None:
    await seed(database, [data.forest_type(tmp_path).item])
    events: list[tuple[str, Any]] = []
    reporter = Reporter(
        started=lambda cube: events.append(("started", cube)),
        progress=lambda cube, done, total: events.append(("progress", (cube, done, total))),
        finished=lambda result: events.append(("finished", result.cube)),
    )
    await build(database, [cube()], tmp_path / "cubes", compute_pool, reporter=reporter)
    assert events[0] == ("started", "types") and events[-1] == ("finished", "types")
    cube_id, done, total = events[-2][1]
    assert events[-2][0] == "progress" and cube_id == "types" and done == total > 0


def test_grace_period_accepts_seconds_and_iso_durations() -> None:
    from cubes.spec import CubeSpec

    assert CubeSpec.model_validate(cube(grace_period="PT2H")).grace_period == timedelta(hours=2)
    assert CubeSpec.model_validate(cube(grace_period=90)).grace_period == timedelta(seconds=90)


async def test_the_sweep_never_deletes_the_live_store_named_by_a_group_href(
    database, compute_pool, tmp_path
) -> None:
    """The item's hrefs point inside the store (`<store>/0`, `<store>/timeseries`): the
    sweep must compare stores, or it would take the live store for an unpublished one."""
    from cubes.write import CubeStore, sweep

    await seed(database, [data.forest_type(tmp_path).item])
    root = tmp_path / "cubes"
    await build(database, [cube(timeseries=True)], root, compute_pool)
    live = await href_of(database)
    store = CubeStore(str(root), "scs2", "types")
    for href in (live, f"{store_url(live)}/timeseries", f"{store_url(live)}/"):
        assert sweep(store, href, timedelta(0)) == []
        assert versions(root) == [Path(store_url(live)).name]
    assert xr.open_zarr(live).sizes == {"y": data.HEIGHT, "x": data.WIDTH}


def _legacy_copy(levelled: Path, root: Path) -> Path:
    """A store as cubes were written before levels: the full resolution at its root, no
    `multiscales` attribute."""
    import shutil

    legacy = root / "scs2" / "types" / "20200101T000000000000Z-old000.zarr"
    shutil.copytree(levelled / "0", legacy)
    return legacy


async def _publish_legacy(database, legacy: Path) -> None:
    from catalogue.repositories.items import upsert_items
    from catalogue.serializers import item_to_row

    async with database.write() as conn:
        item = await get_item(conn, "scs2", "types")
        item["assets"] = {"zarr": {**item["assets"]["zarr"], "href": str(legacy)}}
        await upsert_items(conn, [item_to_row(item)])


async def test_a_legacy_store_is_read_then_replaced_by_a_levelled_one(
    database, compute_pool, tmp_path
) -> None:
    import zarr

    from catalogue.cube_layout import LEGACY_ROOT, levels_from_attrs
    from cubes.publish import current_href
    from cubes.spec import CubeSpec

    await seed(database, [data.forest_type(tmp_path).item])
    root = tmp_path / "cubes"
    await build(database, [cube(grace_period=0)], root, compute_pool)
    first = Path(await store_of(database))
    legacy = _legacy_copy(first, root)
    await _publish_legacy(database, legacy)
    for name in ("0", "1"):  # only the legacy store is current now
        assert (first / name).is_dir()
    spec = CubeSpec.model_validate(cube(grace_period=0))
    assert await current_href(database, spec) == str(legacy)
    attrs = dict(zarr.open_consolidated(str(legacy), mode="r").attrs)
    assert [level.path for level in levels_from_attrs(attrs)] == [LEGACY_ROOT]
    before = xr.open_zarr(str(legacy)).load()
    [result] = await build(database, [cube(grace_period="PT1H")], root, compute_pool)
    assert result.status is JobStatus.SUCCEEDED
    new = await href_of(database)
    assert new == result.href and new.endswith(".zarr/0")
    assert legacy.is_dir() and legacy.with_suffix(".retired").is_file()  # readers keep it
    assert not first.exists()  # neither current nor retired: swept at once
    xr.testing.assert_identical(xr.open_zarr(str(legacy)).load(), before)
    xr.testing.assert_equal(xr.open_zarr(new).load(), before)
    root = zarr.open_consolidated(store_url(new), mode="r")
    assert levels_from_attrs(dict(root.attrs))[1:]  # the new store has levels
