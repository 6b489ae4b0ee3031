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


GUARD = "cubes/compute.py (GuardedThreadPoolExecutor)"


def test_worker_runs_tasks_of_a_thread_pool_subclass_and_fails_them_on_its_errors() -> None:
    """The guard relies on the worker running a task in any executor whose type name holds
    "ThreadPoolExecutor" (with the task's context), and on an ordinary exception out of
    the executor failing that task."""
    from distributed.worker import Worker

    source = inspect.getsource(Worker.execute)
    relied_on = ['"ThreadPoolExecutor" in str(type(e))', "except Exception as exc:"]
    missing = [code for code in relied_on if code not in source]
    assert missing == [], f"Worker.execute no longer has {missing}: revisit {GUARD}"


def test_tasks_let_system_exit_through_which_the_guard_turns_into_task_ended() -> None:
    """Why the guard exists: distributed re-raises SystemExit/KeyboardInterrupt from a task
    to shut the worker down. If that changes, the guard may no longer be needed."""
    from distributed.worker import _run_task_simple

    source = inspect.getsource(_run_task_simple)
    assert "except (SystemExit, KeyboardInterrupt):" in source, f"revisit {GUARD}"
