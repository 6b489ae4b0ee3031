"""What every part of the core-search benchmark shares: its constants, log lines,
failures, ports, processes, and the description of the code and the box it ran on.
"""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CORE_QUERIES = (
    "a_simple_get,a_simple_post,b_bbox_month_get,b_bbox_month_post,c_intersects_get,"
    "c_intersects_post,g_item_get,i_ids20_get,i_ids20_post"
)
ALL_QUERIES = (  # every query of the harness's loadgen.py
    "a_simple_get,a_simple_post,b_bbox_month_get,b_bbox_month_post,c_intersects_get,"
    "c_intersects_post,d_filter_get,d_filter_post,e_sortby_get,e_sortby_post,f_paging5_get,"
    "f_paging5_post,g_item_get,h_fields_get,h_fields_post,i_ids20_get,i_ids20_post,x_landing_get"
)
QUERY_SETS = {"core": CORE_QUERIES, "all": ALL_QUERIES}
# Targets of issue 3 (at 1,000,000 items): every query >= 1.5x pgstac's req/s, the median query
# >= 5x, p95 < 100 ms for the bbox/intersects + datetime and filter queries, API < 300 MB RSS.
TARGET_MIN_RATIO, TARGET_MEDIAN_RATIO = 1.5, 5.0
TARGET_P95_MS, TARGET_P95_PREFIXES = 100.0, ("b_", "c_", "d_")
TARGET_RSS_MB = 300.0
BYTES_PER_ITEM = 12_000  # free disk needed per item: ndjson 2.8 kB + ours 3.5 + pgstac 2 + WAL
PEER_OS_USER = "pgbench"
ANCHOR_RESULT = "results/pgstac_w2_apihydrate.json"  # the harness's anchor run (answers only)


def log(message: str) -> None:
    print(f"[core_search {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class BenchFailure(Exception):
    """A step failed; the message says which and where its log is."""


# -- small helpers ----------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    """Nobody listens on 127.0.0.1:port (SO_REUSEADDR, as servers bind: TIME_WAIT is fine)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def run_logged(
    command: list[str],
    log_path: Path,
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 300,
) -> float:
    """Run a command to completion (bounded), output appended to `log_path`; return seconds."""
    started = time.perf_counter()
    with open(log_path, "a", encoding="utf-8") as handle:
        handle.write(f"\n$ {' '.join(command)}\n")
        handle.flush()
        result = subprocess.run(
            command, stdout=handle, stderr=subprocess.STDOUT, env=env, cwd=cwd, timeout=timeout
        )
    if result.returncode != 0:
        raise BenchFailure(
            f"{' '.join(command[:3])} ... failed ({result.returncode}), see {log_path}:\n"
            f"{tail(log_path)}"
        )
    return round(time.perf_counter() - started, 3)


def wait_http(url: str, seconds: float, process: subprocess.Popen[bytes] | None = None) -> None:
    """Poll `url` until it answers 200 (bounded); fail early when `process` died."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise BenchFailure(f"server exited with {process.returncode} before answering {url}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback only
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise BenchFailure(f"{url} did not answer within {seconds:.0f} s")


def code_version() -> dict[str, Any]:
    """The code measured: HEAD and how many files of the working tree differ from it."""

    def git(*command: str) -> str:
        result = subprocess.run(
            ["git", "-C", str(REPO), *command], capture_output=True, text=True, timeout=30
        )
        return result.stdout.strip() if result.returncode == 0 else "?"

    from catalogue.schema import head_revision

    status = git("status", "--porcelain")
    return {
        "head": git("rev-parse", "--short", "HEAD"),
        "modified_or_new_files": len(status.splitlines()) if status != "?" else None,
        "schema_head": head_revision(),
    }


def box_description() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
