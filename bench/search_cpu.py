"""CPU accounting of the core-search benchmark: how busy the box is, and how much of it is
not us (other processes during a measurement; waiting for a quiet box first).
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from pathlib import Path
from typing import Any

from search_common import log


def _proc_stat_total() -> tuple[int, int]:
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields[:8]), idle


def _processes() -> dict[int, tuple[int, int, str, int]]:
    """pid -> (ppid, utime + stime ticks, command, resident pages) of every readable process."""
    table: dict[int, tuple[int, int, str, int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_text()
            name = raw[raw.index("(") + 1 : raw.rindex(")")]
            fields = raw.rsplit(")", 1)[1].split()
            table[int(entry)] = (
                int(fields[1]), int(fields[11]) + int(fields[12]), name, int(fields[21])
            )  # fmt: skip
        except (OSError, ValueError, IndexError):
            continue
    return table


def _descendants(table: dict[int, tuple[int, int, str, int]], roots: set[int]) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, row in table.items():
        children.setdefault(row[0], []).append(pid)
    found, stack = set(), [pid for pid in roots if pid in table]
    while stack and len(found) < 100_000:
        pid = stack.pop()
        if pid not in found:
            found.add(pid)
            stack.extend(children.get(pid, []))
    return found


def busy_cores(seconds: float = 3.0) -> float:
    """Average busy cores of the whole box over `seconds`."""
    total0, idle0 = _proc_stat_total()
    time.sleep(seconds)
    total1, idle1 = _proc_stat_total()
    ticks = max(total1 - total0, 1)
    return round((1 - (idle1 - idle0) / ticks) * (os.cpu_count() or 1), 2)


def _cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()[:160]


class CpuMonitor:
    """Samples /proc every second in a thread: box busy cores, ours vs foreign CPU, API memory.

    "Ours" is this script's process tree plus the given roots (API master, postmaster) and
    their descendants; everything else on the box is foreign load that skews the figures.
    The resident set size of every process of the API's tree (`api_roots`: the uvicorn master
    and its workers) is sampled too; the summary gives each one's peak.
    """

    def __init__(self, roots: set[int], api_roots: set[int], interval: float = 1.0) -> None:
        self.roots = {os.getpid(), *roots, *api_roots}
        self.api_roots = set(api_roots)
        self.page_mb = os.sysconf("SC_PAGE_SIZE") / 2**20
        self.api_rss: dict[int, dict[str, Any]] = {}
        self.interval = interval
        self.hz = os.sysconf("SC_CLK_TCK")
        self.ours_ticks = 0
        self.foreign_ticks = 0
        self.foreign_by_name: dict[str, int] = {}
        self.box_busy: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._started = 0.0

    def __enter__(self) -> CpuMonitor:
        self._started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        previous = _processes()
        self._sample_api_rss(previous)
        total0, idle0 = _proc_stat_total()
        while not self._stop.wait(self.interval):
            current = _processes()
            total1, idle1 = _proc_stat_total()
            ours = _descendants(current, self.roots)
            self._sample_api_rss(current)
            for pid, (_, ticks, name, _) in current.items():
                delta = ticks - (previous[pid][1] if pid in previous else 0)
                if delta <= 0:
                    continue
                if pid in ours:
                    self.ours_ticks += delta
                else:
                    self.foreign_ticks += delta
                    self.foreign_by_name[name] = self.foreign_by_name.get(name, 0) + delta
            ticks_all = max(total1 - total0, 1)
            self.box_busy.append((1 - (idle1 - idle0) / ticks_all) * (os.cpu_count() or 1))
            previous, total0, idle0 = current, total1, idle1

    def _sample_api_rss(self, table: dict[int, tuple[int, int, str, int]]) -> None:
        for pid in _descendants(table, self.api_roots):
            rss_mb = table[pid][3] * self.page_mb
            entry = self.api_rss.get(pid)
            if entry is None:
                cmd = _cmdline(pid)
                role = "master" if pid in self.api_roots else "child"
                role = "worker" if "spawn_main" in cmd else role
                role = "resource tracker" if "resource_tracker" in cmd else role
                entry = self.api_rss[pid] = {"pid": pid, "role": role, "cmd": cmd,
                                             "peak_mb": 0.0, "samples": 0}  # fmt: skip
            entry["peak_mb"] = round(max(entry["peak_mb"], rss_mb), 1)
            entry["samples"] += 1

    def summary(self) -> dict[str, Any]:
        elapsed = max(time.monotonic() - self._started, 1e-6)
        top = sorted(self.foreign_by_name.items(), key=lambda kv: -kv[1])[:5]
        return {
            "seconds": round(elapsed, 1),
            "box_busy_cores_mean": round(statistics.fmean(self.box_busy), 2)
            if self.box_busy
            else None,
            "bench_cores_mean": round(self.ours_ticks / self.hz / elapsed, 2),
            "foreign_cores_mean": round(self.foreign_ticks / self.hz / elapsed, 2),
            "foreign_top": {name: round(ticks / self.hz, 1) for name, ticks in top},
            "api_rss": sorted(self.api_rss.values(), key=lambda e: e["pid"]),
        }


def wait_for_quiet(max_busy: float, max_wait: float) -> dict[str, Any]:
    """Before a timed run: wait (bounded) until the box is nearly idle; report what we saw."""
    deadline = time.monotonic() + max_wait
    samples: list[float] = []
    while True:
        busy = busy_cores(3.0)
        samples.append(busy)
        if busy <= max_busy:
            break
        if time.monotonic() >= deadline:
            log(f"WARNING: box still busy ({busy} cores) after {max_wait:.0f} s; measuring anyway")
            break
        log(f"box busy ({busy} cores > {max_busy}, load {os.getloadavg()[0]:.2f}); waiting 30 s")
        time.sleep(min(30.0, max(deadline - time.monotonic(), 1.0)))
    return {
        "busy_cores_samples": samples,
        "quiet": samples[-1] <= max_busy,
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }
