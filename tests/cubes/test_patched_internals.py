"""The distributed internals `cubes.compute._Feed` relies on, pinned.

`_Feed` subclasses distributed's `ProgressBar` and overrides its private `_draw_bar` to
report cube-build progress through a callback (requirements.lock pins distributed). It
relies on `ProgressBar.listen` calling `self._draw_bar(**response)` with `all` and
`remaining` task counts, and on the constructor's parameters. When an upgrade changes
these, these tests fail and name the patch to revisit.
"""

from __future__ import annotations

import inspect

import dask.array as da
from distributed.diagnostics.progressbar import ProgressBar

from cubes.compute import ComputePool, run
from cubes.spec import ComputeSpec
from tests.internals import assert_source_unchanged

PATCH = "cubes/compute.py (_Feed._draw_bar)"


def test_progress_bar_constructor_takes_what_feed_passes() -> None:
    parameters = list(inspect.signature(ProgressBar.__init__).parameters)
    assert parameters == ["self", "keys", "scheduler", "interval", "complete"], (
        f"ProgressBar.__init__ is now {parameters}: revisit {PATCH}"
    )
    assert_source_unchanged(ProgressBar.__init__, "5762143bc4947312", PATCH)


def test_listen_draws_each_report_with_all_and_remaining() -> None:
    assert inspect.iscoroutinefunction(ProgressBar.listen), PATCH
    source = inspect.getsource(ProgressBar.listen)
    relied_on = ['"all": len(p.all_keys)', '"remaining": len(p.keys)', "self._draw_bar(**response)"]
    missing = [code for code in relied_on if code not in source]
    assert missing == [], f"ProgressBar.listen no longer has {missing}: revisit {PATCH}"
    assert_source_unchanged(ProgressBar.listen, "cfe4792ab1ab3e1d", PATCH)


def test_run_reports_the_tasks_done_up_to_all_of_them() -> None:
    """Progress only comes through `_draw_bar`: a final (total, total) proves it is called."""
    events: list[tuple[int, int]] = []
    work = da.ones((64, 64), chunks=8).sum()
    with ComputePool() as pool:
        client = pool.client(ComputeSpec(workers=1, threads=1, memory_limit="1GB"))
        run(client, work, lambda done, total: events.append((done, total)))
    assert events, f"no progress was reported: revisit {PATCH}"
    done, total = events[-1]
    assert done == total > 1
    assert all(0 <= d <= t == total for d, t in events)
