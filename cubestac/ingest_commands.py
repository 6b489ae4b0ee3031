"""`cubestac ingest CONFIG [--source ID]...` and `cubestac jobs [--limit N]`.

Thin, like the rest of the CLI: CONFIG is read and validated before anything runs (exit 2
with the field path when it is wrong), then `ingest.runner` does the work and this module
prints one summary line per source (stdout) and sets the exit status (DESIGN.md).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from contextlib import nullcontext
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from catalogue.database import create_engine
from catalogue.errors import CatalogueError
from catalogue.repositories.jobs import recent_jobs
from catalogue.settings import Settings
from cubestac.config_file import ConfigError, describe_validation_error, read_config
from ingest.config import SourceConfig, parse_sources
from ingest.progress import RichProgress, for_stream
from ingest.runner import exit_code, run_ingest, tune_gc_for_bulk

console = Console(stderr=True)


def load_sources(path: Path) -> list[SourceConfig]:
    """The validated `sources:` of CONFIG; ConfigError names the file, field and problem."""
    data = read_config(path)
    try:
        return parse_sources(data)
    except ValidationError as error:
        raise ConfigError(describe_validation_error(path, error)) from error


def select_sources(sources: Sequence[SourceConfig], wanted: Sequence[str]) -> list[SourceConfig]:
    """The sources named with --source (all when none), in CONFIG order."""
    known = {source.id for source in sources}
    unknown = [name for name in wanted if name not in known]
    if unknown:
        raise ConfigError(
            f"no source {', '.join(map(repr, unknown))} in CONFIG "
            f"(it has: {', '.join(sorted(known)) or 'none'})"
        )
    return [source for source in sources if not wanted or source.id in wanted]


def _refuse(message: str, code: int) -> typer.Exit:
    console.print(f"[red]error:[/red] {escape(message)}", highlight=False)
    return typer.Exit(code)


def ingest_command(
    config: Annotated[Path, typer.Argument(help="CONFIG file (YAML) with a `sources:` list.")],
    source: Annotated[
        list[str] | None,
        typer.Option("--source", "-s", help="Only this source id (repeatable)."),
    ] = None,
) -> None:
    """Harvest the sources of CONFIG into the catalogue (incremental, safe to run from cron)."""
    try:
        sources = select_sources(load_sources(config), source or [])
    except ConfigError as error:
        raise _refuse(str(error), 2) from error
    if not sources:
        raise _refuse(f"{config}: no sources to harvest", 2)
    tune_gc_for_bulk()
    progress = for_stream(sys.stderr)
    display = progress if isinstance(progress, RichProgress) else nullcontext()
    try:
        with display:
            outcomes = asyncio.run(run_ingest(Settings(), sources, progress))
    except CatalogueError as error:
        raise _refuse(str(error), 1) from error
    except OSError as error:
        raise _refuse(f"cannot reach the catalogue database: {error}", 1) from error
    for outcome in outcomes:
        typer.echo(outcome.summary())
    raise typer.Exit(exit_code(outcomes))


async def _recent(settings: Settings, limit: int) -> list[dict[str, Any]]:
    engine = create_engine(settings)
    try:
        async with engine.connect() as conn:
            return await recent_jobs(conn, limit)
    finally:
        await engine.dispose()


def jobs_command(
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="How many runs.")] = 20,
) -> None:
    """Recent ingest and cube runs, newest first, with counts and errors."""
    try:
        jobs = asyncio.run(_recent(Settings(), limit))
    except CatalogueError as error:
        raise _refuse(str(error), 1) from error
    except OSError as error:
        raise _refuse(f"cannot reach the catalogue database: {error}", 1) from error
    Console(width=200 if not sys.stdout.isatty() else None).print(jobs_table(jobs))


def jobs_table(jobs: Sequence[dict[str, Any]]) -> Table:
    table = Table("id", "kind", "target", "status", "started", "took", "counts", "errors")
    for job in jobs:
        table.add_row(
            str(job["id"]),
            job["kind"],
            escape(job["target"]),
            job["status"],
            f"{job['started_at']:%Y-%m-%d %H:%M:%S}",
            _took(job["started_at"], job["finished_at"]),
            " ".join(f"{key}={value}" for key, value in (job["counts"] or {}).items()),
            escape(_errors(job)),
        )
    return table


def _took(started: datetime, finished: datetime | None) -> str:
    return "-" if finished is None else f"{(finished - started).total_seconds():.1f} s"


def _errors(job: dict[str, Any]) -> str:
    """The job's message, then its first problems. Ingest problems are `{url, reason}`,
    cube failures `{cube, where, message}` (whose message is usually the job's own)."""
    message = job.get("message")
    errors = [
        line for error in job["errors"] or [] if (line := _problem(error)) and line != message
    ]
    lines = [message] if message else []
    lines += errors[:3]
    if len(errors) > 3:
        lines.append(f"... and {len(errors) - 3} more")
    return "\n".join(lines)


def _problem(error: dict[str, Any]) -> str:
    where = error.get("url") or error.get("where")
    what = error.get("reason") or error.get("message") or ""
    return f"{where}: {what}" if where and not what.startswith(str(where)) else what


def register_ingest_commands(app: typer.Typer) -> None:
    app.command("ingest")(ingest_command)
    app.command("jobs")(jobs_command)
