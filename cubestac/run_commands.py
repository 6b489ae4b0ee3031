"""`cubestac run CONFIG` (what cron calls: ingest, then cubes) and `cubestac config schema`.

The whole CONFIG is validated before anything runs, so a typo in `cubes:` stops a nightly
run before it harvests, with the file, field and problem named (exit status 2).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from rich.console import Console
from rich.markup import escape

from cubes.spec import CubesConfig, CubeSpec
from cubestac.config_file import ConfigError, describe_validation_error, read_config
from cubestac.cube_commands import cubes_command, validation_context
from cubestac.ingest_commands import ingest_command
from ingest.config import SourceConfig, SourcesSection

console = Console(stderr=True)


class CubestacConfig(BaseModel):
    """CONFIG: the harvest sources and the cubes built from them."""

    model_config = ConfigDict(extra="forbid", title="cubestac CONFIG")

    sources: list[SourceConfig] = Field(default_factory=list, description="Sources to harvest.")
    cubes: list[CubeSpec] = Field(default_factory=list, description="Cubes to build.")


def validate_config(path: Path) -> CubestacConfig:
    """Every section checked the way its own command checks it, plus unknown top-level keys."""
    data = read_config(path)
    context = validation_context(None)
    try:
        SourcesSection.model_validate({"sources": data.get("sources") or []})
        CubesConfig.model_validate({"cubes": data.get("cubes") or []}, context=context)
        return CubestacConfig.model_validate(data, context=context)
    except ValidationError as error:
        raise ConfigError(describe_validation_error(path, error)) from error


def _exit_code(command: Callable[..., object], *args: object) -> int:
    try:
        command(*args)  # a Typer command function, called directly
    except typer.Exit as done:
        return done.exit_code
    return 0


def run_command(
    config: Annotated[Path, typer.Argument(help="CONFIG file (YAML): sources and cubes.")],
) -> None:
    """Harvest every source, then build every cube: the nightly job."""
    try:
        parsed = validate_config(config)
    except ConfigError as error:
        console.print(f"[red]error:[/red] {escape(str(error))}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from error
    codes = []
    if parsed.sources:
        codes.append(_exit_code(ingest_command, config, None))
    if parsed.cubes:
        codes.append(_exit_code(cubes_command, config, None))
    if not codes:
        console.print(escape(f"{config}: nothing to do (no sources, no cubes)"))
    raise typer.Exit(max(codes, default=0))


def schema_command() -> None:
    """Print the JSON Schema of CONFIG."""
    typer.echo(json.dumps(CubestacConfig.model_json_schema(), indent=2))


def register_run_commands(app: typer.Typer) -> None:
    app.command("run")(run_command)
    config_app = typer.Typer(no_args_is_help=True, help="CONFIG file helpers.")
    config_app.command("schema")(schema_command)
    app.add_typer(config_app, name="config")
