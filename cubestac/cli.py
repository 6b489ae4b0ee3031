"""`cubestac`: the command line (contract in README.md). Thin: each command calls a package.

Exit status: 0 on success, 1 when the work failed, 2 for a bad command line or config.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Annotated

import typer
from rich.console import Console

from catalogue.database import Database, create_engine, database_url
from catalogue.embedded import ClusterState, EmbeddedCluster
from catalogue.errors import CatalogueError
from catalogue.repositories import collections as collection_repo
from catalogue.repositories import items as item_repo
from catalogue.schema import ensure_migrated, upgrade
from catalogue.serializers import item_to_row
from catalogue.settings import Settings
from cubestac.cube_commands import register_cube_commands
from cubestac.ingest_commands import register_ingest_commands
from cubestac.logs import configure_logging
from cubestac.run_commands import register_run_commands
from cubestac.sample import sample_collection, sample_items

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
db_app = typer.Typer(no_args_is_help=True, help="The catalogue database (embedded PostGIS).")
app.add_typer(db_app, name="db")
register_ingest_commands(app)
register_cube_commands(app)
register_run_commands(app)
console = Console(stderr=True)


def _fail(message: str, code: int = 1) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}", highlight=False)
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
    serve(host, port, workers)


async def _load_sample(settings: Settings) -> str:
    database = Database(create_engine(settings))
    try:
        async with database.write() as conn:
            await collection_repo.upsert_collection(conn, sample_collection())
            rows = [item_to_row(item) for item in sample_items()]
            counts = await item_repo.upsert_items(conn, rows)
    finally:
        await database.dispose()
    return f"{counts.inserted} new, {counts.updated} changed, {counts.unchanged} unchanged"


@app.command("demo")
def demo(
    port: Annotated[int, typer.Option(help="Port of the API on 127.0.0.1.")] = 8080,
) -> None:
    """The embedded default: start PostGIS, migrate, load sample data, serve on 127.0.0.1."""
    from cubestac.serve import serve

    settings = Settings()
    try:
        if settings.database_url is None:
            url = EmbeddedCluster(settings.db).start()
            console.print(f"embedded PostGIS: {url.render_as_string(hide_password=True)}")
        upgrade(database_url(settings))
        console.print(f"sample collection loaded: {asyncio.run(_load_sample(settings))}")
    except CatalogueError as error:
        raise _fail(str(error)) from error
    base = f"http://127.0.0.1:{port}"
    typer.echo(
        f"\nSTAC API: {base}/  (docs {base}/api.html)\n"
        "Try it:\n"
        "  from pystac_client import Client\n"
        f"  client = Client.open('{base}')\n"
        "  items = client.search(collections=['sample-s2-l2a'], bbox=[5, 45, 15, 55],\n"
        "                        datetime='2023-06/2023-08', max_items=5).item_collection()\n"
        "  print([item.id for item in items])\n"
        "Ctrl-C stops the API; `cubestac db stop` stops the database.",
        err=True,
    )
    serve("127.0.0.1", port, 1)


def main() -> None:
    configure_logging()
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
