"""`cubestac`: the command line (contract in README.md). Thin: each command calls a package.

Exit status: 0 on success, 1 when the work failed, 2 for a bad command line or config.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from catalogue.database import create_engine, database_url
from catalogue.embedded import ClusterState, EmbeddedCluster
from catalogue.errors import CatalogueError
from catalogue.schema import ensure_migrated, upgrade
from catalogue.settings import Settings
from cubestac.config_file import ConfigError
from cubestac.cube_commands import register_cube_commands
from cubestac.ingest_commands import register_ingest_commands
from cubestac.logs import configure_logging
from cubestac.run_commands import register_run_commands

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
db_app = typer.Typer(no_args_is_help=True, help="The catalogue database (embedded PostGIS).")
app.add_typer(db_app, name="db")
register_ingest_commands(app)
register_cube_commands(app)
register_run_commands(app)
console = Console(stderr=True)


def _fail(message: str, code: int = 1) -> typer.Exit:
    console.print(f"[red]error:[/red] {escape(message)}", highlight=False)
    return typer.Exit(code)


def _embedded_in_use(settings: Settings) -> bool:
    if settings.database_url is not None:
        console.print("DATABASE_URL is set: the embedded PostGIS is not used.")
        return False
    return True


@db_app.command("start")
def db_start() -> None:
    """Start the embedded PostGIS (created on first use); a no-op with DATABASE_URL."""
    settings = Settings()
    if not _embedded_in_use(settings):
        return
    try:
        url = EmbeddedCluster(settings.db).start()
    except CatalogueError as error:
        raise _fail(str(error)) from error
    console.print(f"embedded PostGIS running: {url.render_as_string(hide_password=True)}")


@db_app.command("stop")
def db_stop() -> None:
    """Stop the embedded PostGIS cleanly."""
    settings = Settings()
    if not _embedded_in_use(settings):
        return
    try:
        stopped = EmbeddedCluster(settings.db).stop()
    except CatalogueError as error:
        raise _fail(str(error)) from error
    console.print("embedded PostGIS stopped" if stopped else "embedded PostGIS was not running")


@db_app.command("status")
def db_status() -> None:
    """Say whether the embedded PostGIS exists and runs (exit 1 when not running)."""
    settings = Settings()
    if not _embedded_in_use(settings):
        return
    try:
        status = EmbeddedCluster(settings.db).status()
    except CatalogueError as error:
        raise _fail(str(error)) from error
    console.print(f"embedded PostGIS {status.state} (data: {status.data_dir}, port {status.port})")
    if status.url:
        console.print(f"url: {status.url}")
    if status.state is not ClusterState.RUNNING:
        raise typer.Exit(1)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Migrate the catalogue to the newest schema (Alembic upgrade head)."""
    settings = Settings()
    try:
        upgrade(database_url(settings))
    except CatalogueError as error:
        raise _fail(str(error)) from error
    except Exception as error:  # noqa: BLE001 - connection problems surface as many types
        raise _fail(f"migration failed: {error}") from error
    console.print("catalogue schema is up to date")


async def _check_ready(settings: Settings) -> None:
    engine = create_engine(settings)
    try:
        await ensure_migrated(engine)
    finally:
        await engine.dispose()


@app.command("serve")
def serve_command(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    workers: Annotated[int, typer.Option(min=1, max=64, help="uvicorn worker processes.")] = 1,
) -> None:
    """Serve the STAC API (refuses an unmigrated database)."""
    from cubestac.serve import serve

    settings = Settings()
    try:
        asyncio.run(_check_ready(settings))
    except CatalogueError as error:
        raise _fail(str(error)) from error
    except OSError as error:
        raise _fail(f"cannot reach the catalogue database: {error}") from error
    serve(host, port, workers, settings)


@app.command("demo")
def demo(
    port: Annotated[int, typer.Option(help="Port of the API on 127.0.0.1.")] = 8080,
    files_port: Annotated[
        int, typer.Option(help="Port on 127.0.0.1 that serves the demo world's files.")
    ] = 8081,
    folder: Annotated[
        Path | None, typer.Option(help="Demo folder (default: <CUBESTAC_DB__DATA_DIR>/demo).")
    ] = None,
) -> None:
    """The embedded default: PostGIS, a demo world harvested and built into cubes, the API."""
    from cubestac.serve import serve
    from demo.files import check_free
    from demo.session import DemoError, DemoOptions, default_folder, demo_session, summary

    settings = Settings()
    options = DemoOptions(folder or default_folder(settings), files_port)
    if not settings.cube_root:  # the API process reads it from the environment
        os.environ["CUBESTAC_CUBE_ROOT"] = str(options.default_cube_root)
        settings = Settings()
    try:
        check_free(port, "--port")
        if settings.database_url is None:
            url = EmbeddedCluster(settings.db).start()
            console.print(f"embedded PostGIS: {url.render_as_string(hide_password=True)}")
        upgrade(database_url(settings))
        with demo_session(settings, options) as run:
            typer.echo(summary(run, f"http://127.0.0.1:{port}"), err=True)
            serve("127.0.0.1", port, 1)
    except (CatalogueError, DemoError, ConfigError, OSError) as error:
        raise _fail(str(error)) from error


def main() -> None:
    configure_logging()
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
    except ValidationError as error:
        if error.title != Settings.__name__:
            raise
        for problem in error.errors():  # a bad environment variable: name it, no traceback
            name = "CUBESTAC_" + "__".join(str(part) for part in problem["loc"]).upper()
            print(f"error: {name}: {problem['msg']} (got {problem['input']!r})", file=sys.stderr)
        sys.exit(2)
