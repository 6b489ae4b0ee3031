"""Waiting on a condition instead of sleeping and assuming another task got somewhere.

A fixed sleep is either too short on a loaded machine (the test fails for no reason) or
longer than needed everywhere; polling the real condition (the job row exists, the backend
waits on a lock, the hook is running) with a bounded deadline is neither.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

TIMEOUT_S = 60.0
POLL_S = 0.02


async def until(
    condition: Callable[[], Awaitable[bool]], what: str, timeout_s: float = TIMEOUT_S
) -> None:
    """Return once `condition()` holds; fail naming `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not await condition():
        assert time.monotonic() < deadline, f"timed out after {timeout_s} s waiting for {what}"
        await asyncio.sleep(POLL_S)


def until_sync(condition: Callable[[], bool], what: str, timeout_s: float = TIMEOUT_S) -> None:
    """`until` for synchronous conditions (subprocesses, files)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout_s} s waiting for {what}"
        time.sleep(POLL_S)
