"""The peer of the core-search benchmark: stac-fastapi-pgstac through the harness's scripts."""

from __future__ import annotations

import argparse
import json
import os
import pwd
import shutil
import subprocess
from pathlib import Path
from typing import Any

from search_common import PEER_OS_USER, BenchFailure, free_port, log, port_is_free, run_logged
from search_data import load_timeout
from search_ours import postmaster_pid


class PeerStack:
    """The harness README's steps for pgstac in WORK/peer (= ANCHOR_DIR), as run_peer.sh."""

    def __init__(self, args: argparse.Namespace, root: Path, logs: Path) -> None:
        self.args = args
        self.root = root
        self.logs = logs
        self.pgdata = root / "pgdata"
        self.marker = root / "loaded.json"
        self.pg_port = free_port()
        self.api_port = free_port()
        self.pg_started = False
        self.api_started = False

    def env(self, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            "ANCHOR_DIR": str(self.root),
            "PG_BIN": str(self.args.pg_bin),
            "PGPORT": str(self.pg_port),
            "API_PORT": str(self.api_port),
            "PG_OS_USER": PEER_OS_USER,
            **extra,
        }

    def stack(self, verb: str, log_name: str, **extra: str) -> float:
        script = str(self.args.harness / "pgstac_stack.sh")
        return run_logged(
            [script, verb], self.logs / log_name, env=self.env(**extra), cwd=self.args.harness,
            timeout=180,
        )  # fmt: skip

    def prepare(self, fingerprint: str) -> bool:
        """Link the peer venv as ANCHOR_DIR/venv; True when the loaded DB can be reused."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)
        venv_link = self.root / "venv"
        if venv_link.is_symlink() or venv_link.exists():
            if venv_link.resolve() != self.args.peer_venv.resolve():
                venv_link.unlink()
        if not venv_link.exists():
            venv_link.symlink_to(self.args.peer_venv.resolve())
        if os.geteuid() == 0:
            try:
                pwd.getpwnam(PEER_OS_USER)
            except KeyError:
                subprocess.run(
                    ["useradd", "-M", "-r", "-s", "/usr/sbin/nologin", PEER_OS_USER],
                    check=True, timeout=30,
                )  # fmt: skip
        reuse = (
            self.args.reuse
            and self.marker.is_file()
            and json.loads(self.marker.read_text()).get("data") == fingerprint
            and (self.pgdata / "PG_VERSION").is_file()
        )
        if reuse:
            self.pg_port = _configured_port(self.pgdata / "postgresql.conf") or self.pg_port
            if not port_is_free(self.pg_port):
                raise BenchFailure(f"peer: port {self.pg_port} of the kept cluster is taken")
            log(f"peer: reusing the loaded pgstac cluster in {self.pgdata} (port {self.pg_port})")
        return bool(reuse)

    def init_and_start(self, reuse: bool) -> dict[str, float]:
        steps: dict[str, float] = {}
        if not reuse:
            self.marker.unlink(missing_ok=True)
            if self.pgdata.exists():
                shutil.rmtree(self.pgdata)  # initdb refuses a non-empty folder
            steps["pg_init_s"] = self.stack("pg-init", "peer_pg_init.log")
        self.pg_started = True
        steps["pg_start_s"] = self.stack("pg-start", "peer_pg_start.log")
        return steps

    def load(self, out: Path, fingerprint: str) -> dict[str, Any]:
        env = self.env(PGHOST="127.0.0.1", PGUSER="postgres", PGDATABASE="stac")
        python = str(self.args.peer_venv / "bin" / "python")
        loader_args = ["--data-dir", str(self.args.data_dir), "--out", str(out)]
        truncs = getattr(self.args, "pgstac_partition_trunc", None) or []
        if truncs:  # pgstac's time partitioning on the named collections (harness unchanged)
            wrapper = Path(__file__).resolve().parent / "pgstac_load_partitioned.py"
            flags = [f"--partition-trunc={entry}" for entry in truncs]
            command = [python, str(wrapper), *flags, "--", *loader_args]
        else:
            command = [python, str(self.args.harness / "load_pgstac.py"), *loader_args]
        wall = run_logged(
            command, self.logs / "peer_load.log", env=env, cwd=self.args.harness,
            timeout=load_timeout(self.args.n_items),
        )  # fmt: skip
        result = json.loads(out.read_text())
        result["process_wall_s"] = wall
        result["partition_trunc"] = dict(entry.split("=", 1) for entry in truncs)
        self.marker.write_text(json.dumps({"data": fingerprint, "load": result}, indent=2))
        return result

    def start_api(self) -> float:
        self.api_started = True
        return self.stack(
            "api-start", "peer_api_start.log", WORKERS=str(self.args.workers),
            USE_API_HYDRATE="true",
        )  # fmt: skip

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def sizes(self) -> dict[str, Any]:
        """Database, items partitions and index sizes, read while the cluster runs."""
        from search_sizes import sizes

        return sizes(self.args.pg_bin / "psql", self.pg_port, "postgres", "stac", "pgstac")

    def monitor_roots(self) -> set[int]:
        pid = postmaster_pid(self.pgdata)
        return {pid} if pid else set()

    def api_roots(self) -> set[int]:
        try:
            return {int((self.root / "api.pid").read_text().strip())}
        except (OSError, ValueError):
            return set()

    def stop(self) -> None:
        if self.api_started:
            try:
                self.stack("api-stop", "peer_stop.log")
            except (BenchFailure, subprocess.TimeoutExpired) as error:
                log(f"WARNING: peer api-stop: {error}")
            self.api_started = False
        if self.pg_started and self._pg_running():
            try:
                self.stack("pg-stop", "peer_stop.log")
                log("peer: cluster stopped (data kept)")
            except (BenchFailure, subprocess.TimeoutExpired) as error:
                log(f"WARNING: peer pg-stop: {error}")
        self.pg_started = False

    def _pg_running(self) -> bool:
        command = [str(self.args.pg_bin / "pg_ctl"), "status", "-D", str(self.pgdata)]
        if os.geteuid() == 0:
            command = ["runuser", "-u", PEER_OS_USER, "--", *command]
        result = subprocess.run(command, capture_output=True, check=False, timeout=30)
        return result.returncode == 0


def _configured_port(conf: Path) -> int | None:
    port = None
    try:
        for line in conf.read_text().splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "port":
                port = int(value.split("#")[0].strip())
    except (OSError, ValueError):
        return None
    return port
