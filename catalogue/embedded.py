"""The embedded default: a private PostGIS cluster in a folder the project owns.

Built from the machine's own PostgreSQL binaries (`initdb`, `pg_ctl`), listening on
127.0.0.1 only, with a generated password (SCRAM) kept next to the cluster. PostgreSQL
refuses to run as root, so when we are root every server command runs as an
unprivileged OS user (`postgres` by default) through `runuser`, and that user owns the
data folder. Used by `cubestac db start|stop|status`, `cubestac demo` and the test suite.

Layout of `data_dir`:
    pgdata/      the cluster (owned by the server's OS user)
    run/         unix socket and server log (owned by the server's OS user)
    password     the superuser password (owned by the invoking user, mode 600)
"""

from __future__ import annotations

import enum
import glob
import logging
import os
import pwd
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import URL

from catalogue.errors import EmbeddedDatabaseError
from catalogue.settings import EmbeddedDatabaseSettings

logger = logging.getLogger(__name__)

SUPERUSER = "cubestac"
INSTALL_HINT = (
    "install them with `apt-get install postgresql-15 postgresql-15-postgis-3` "
    "(or set CUBESTAC_DB__PG_BIN_DIR to a PostgreSQL >= 15 bin folder), "
    "or set DATABASE_URL to an existing PostGIS database"
)
SERVER_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "max_connections": "200",
    "shared_buffers": "'512MB'",
    "work_mem": "'32MB'",
    "maintenance_work_mem": "'256MB'",
    "effective_cache_size": "'4GB'",
    "random_page_cost": "1.1",
    "jit": "off",
}


class ClusterState(enum.StrEnum):
    """What `cubestac db status` reports."""

    MISSING = "not initialised"
    STOPPED = "stopped"
    RUNNING = "running"


@dataclass(frozen=True)
class ClusterStatus:
    state: ClusterState
    data_dir: Path
    port: int
    url: str | None


def find_pg_bin_dir(configured: Path | None) -> Path:
    """The folder holding `initdb`/`pg_ctl`: configured, on PATH, or Debian's layout."""
    candidates: list[Path] = []
    if configured is not None:
        candidates.append(configured)
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    candidates += sorted(
        (Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin")),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    raise EmbeddedDatabaseError(
        f"PostgreSQL server binaries (initdb, pg_ctl) not found: {INSTALL_HINT}"
    )


def check_postgis(bin_dir: Path) -> None:
    """Fail early, naming the package, when the PostGIS extension files are absent."""
    pg_config = bin_dir / "pg_config"
    share = None
    if pg_config.is_file():
        share = subprocess.run(
            [str(pg_config), "--sharedir"], capture_output=True, text=True, check=False
        ).stdout.strip()
    controls = glob.glob(f"{share}/extension/postgis.control") if share else []
    if not controls:
        version = bin_dir.parent.name if bin_dir.parent.name.isdigit() else "15"
        raise EmbeddedDatabaseError(
            f"PostGIS is not installed for the PostgreSQL in {bin_dir}: "
            f"install it with `apt-get install postgresql-{version}-postgis-3`"
        )


class EmbeddedCluster:
    """Start, stop and describe the private cluster; every method is idempotent."""

    def __init__(self, settings: EmbeddedDatabaseSettings) -> None:
        self.settings = settings
        self.data_dir = settings.data_dir.resolve()
        self.pgdata = self.data_dir / "pgdata"
        self.run_dir = self.data_dir / "run"
        self.password_file = self.data_dir / "password"

    # -- public -----------------------------------------------------------------------------
    def start(self) -> URL:
        """Initialise if needed, start if stopped, make sure the database has PostGIS."""
        bin_dir = find_pg_bin_dir(self.settings.pg_bin_dir)
        check_postgis(bin_dir)
        if not (self.pgdata / "PG_VERSION").is_file():
            self._initdb(bin_dir)
        if self._is_running(bin_dir):
            logger.info("embedded PostGIS already running on port %s", self.settings.port)
        else:
            self._pg_ctl_start(bin_dir)
        self._ensure_database(bin_dir)
        return self.url()

    def stop(self) -> bool:
        """Stop the cluster (fast shutdown); False when it was not running."""
        if not (self.pgdata / "PG_VERSION").is_file():
            return False
        bin_dir = find_pg_bin_dir(self.settings.pg_bin_dir)
        if not self._is_running(bin_dir):
            return False
        self._run_as_server(
            [str(bin_dir / "pg_ctl"), "stop", "-D", str(self.pgdata), "-m", "fast", "-w"]
        )
        return True

    def status(self) -> ClusterStatus:
        if not (self.pgdata / "PG_VERSION").is_file():
            return ClusterStatus(ClusterState.MISSING, self.data_dir, self.settings.port, None)
        bin_dir = find_pg_bin_dir(self.settings.pg_bin_dir)
        running = self._is_running(bin_dir)
        url = self.url().render_as_string(hide_password=True) if running else None
        state = ClusterState.RUNNING if running else ClusterState.STOPPED
        return ClusterStatus(state, self.data_dir, self.settings.port, url)

    def url(self, driver: str = "postgresql+asyncpg") -> URL:
        return URL.create(
            driver,
            username=SUPERUSER,
            password=self._password(),
            host="127.0.0.1",
            port=self.settings.port,
            database=self.settings.database,
        )

    # -- steps ------------------------------------------------------------------------------
    def _initdb(self, bin_dir: Path) -> None:
        logger.info("initialising embedded PostGIS in %s", self.pgdata)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o755)
        self._check_traversable()
        for folder in (self.pgdata, self.run_dir):
            folder.mkdir(exist_ok=True)
            self._give_to_server(folder)
        self.pgdata.chmod(0o700)
        password = secrets.token_urlsafe(24)
        pwfile = self.run_dir / "initdb-password"
        pwfile.write_text(password + "\n")
        self._give_to_server(pwfile)
        try:
            self._run_as_server(
                [
                    str(bin_dir / "initdb"),
                    "-D", str(self.pgdata),
                    "-U", SUPERUSER,
                    f"--pwfile={pwfile}",
                    "--auth-host=scram-sha-256",
                    "--auth-local=scram-sha-256",
                    "--encoding=UTF8",
                    "--locale=C.UTF-8",
                ]
            )  # fmt: skip
        finally:
            pwfile.unlink(missing_ok=True)
        self.password_file.write_text(password + "\n")
        self.password_file.chmod(0o600)
        conf = "".join(f"{key} = {value}\n" for key, value in SERVER_SETTINGS.items())
        conf += f"unix_socket_directories = '{self.run_dir}'\n"
        with open(self.pgdata / "postgresql.auto.conf", "a", encoding="utf-8") as handle:
            handle.write(conf)

    def _pg_ctl_start(self, bin_dir: Path) -> None:
        log = self.run_dir / "postgres.log"
        try:
            self._run_as_server(
                [
                    str(bin_dir / "pg_ctl"), "start", "-D", str(self.pgdata), "-w", "-t", "60",
                    "-l", str(log), "-o", f"-p {self.settings.port}",
                ]
            )  # fmt: skip
        except EmbeddedDatabaseError as error:
            tail = _tail(log)
            raise EmbeddedDatabaseError(
                f"embedded PostGIS did not start on 127.0.0.1:{self.settings.port} "
                f"(is the port taken? set CUBESTAC_DB__PORT): {error}\n{tail}"
            ) from error

    def _ensure_database(self, bin_dir: Path) -> None:
        name = self.settings.database
        exists = self._psql(
            bin_dir, "postgres", "SELECT 1 FROM pg_database WHERE datname = :'db'", name
        )
        if exists.strip() != "1":
            self._psql(bin_dir, "postgres", 'CREATE DATABASE :"db"', name)
        self._psql(bin_dir, name, "CREATE EXTENSION IF NOT EXISTS postgis", name)

    # -- helpers ----------------------------------------------------------------------------
    def _psql(self, bin_dir: Path, database: str, sql: str, db_var: str) -> str:
        """Run one statement with psql; the name is passed as a psql variable, never formatted."""
        env = {**os.environ, "PGPASSWORD": self._password()}
        result = subprocess.run(
            [
                str(bin_dir / "psql"), "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1",
                "-h", "127.0.0.1", "-p", str(self.settings.port), "-U", SUPERUSER,
                "-d", database, "-v", f"db={db_var}",
            ],
            input=sql + ";\n", capture_output=True, text=True, env=env, check=False, timeout=60,
        )  # fmt: skip
        if result.returncode != 0:
            raise EmbeddedDatabaseError(f"psql failed: {result.stderr.strip()}")
        return result.stdout

    def _is_running(self, bin_dir: Path) -> bool:
        result = subprocess.run(
            self._as_server([str(bin_dir / "pg_ctl"), "status", "-D", str(self.pgdata)]),
            capture_output=True,
            check=False,
        )
        return result.returncode == 0

    def _password(self) -> str:
        try:
            return self.password_file.read_text().strip()
        except OSError as error:
            raise EmbeddedDatabaseError(
                f"cannot read the embedded cluster's password at {self.password_file}: {error}"
            ) from error

    def _server_user(self) -> pwd.struct_passwd | None:
        """The OS user that runs the server, or None when it is us (not root)."""
        if os.geteuid() != 0:
            return None
        try:
            return pwd.getpwnam(self.settings.os_user)
        except KeyError as error:
            raise EmbeddedDatabaseError(
                f"running as root, PostgreSQL must run as an unprivileged user, but user "
                f"{self.settings.os_user!r} does not exist: install PostgreSQL (it creates "
                "`postgres`) or set CUBESTAC_DB__OS_USER"
            ) from error

    def _as_server(self, command: list[str]) -> list[str]:
        user = self._server_user()
        return command if user is None else ["runuser", "-u", user.pw_name, "--", *command]

    def _run_as_server(self, command: list[str]) -> None:
        result = subprocess.run(
            self._as_server(command), capture_output=True, text=True, check=False, timeout=120
        )
        if result.returncode != 0:
            raise EmbeddedDatabaseError(
                f"{Path(command[0]).name} failed ({result.returncode}): "
                f"{(result.stderr or result.stdout).strip()}"
            )

    def _give_to_server(self, path: Path) -> None:
        user = self._server_user()
        if user is not None:
            os.chown(path, user.pw_uid, user.pw_gid)

    def _check_traversable(self) -> None:
        """The server user must reach the data folder through every parent folder."""
        if self._server_user() is None:
            return
        for parent in [self.data_dir, *self.data_dir.parents]:
            if not parent.stat().st_mode & 0o001:
                raise EmbeddedDatabaseError(
                    f"{parent} is not traversable by user {self.settings.os_user!r}, which must "
                    "own the cluster: choose another CUBESTAC_DB__DATA_DIR (e.g. /var/lib/cubestac)"
                )


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
