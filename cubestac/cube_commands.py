"""`cubestac cubes CONFIG [--cube ID]...`: build the CONFIG's cubes and publish their items.

Exit status (DESIGN.md, "Command-line contract"): 0 when every selected cube was built (or
skipped because another run is building it), 1 when any failed -- the others were still
built -- and 2 for a bad CONFIG or command line, with the field path in the message.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from catalogue.repositories.jobs import JobStatus
from catalogue.settings import Settings
from cubes.spec import CubesConfig, CubeSpec
from cubestac.config_file import ConfigError, describe_validation_error, read_config

if TYPE_CHECKING:  # the build stack (xarray, dask, GDAL) loads only when cubes are built
    from cubes.compute import ComputeSettings
    from cubes.runner import CubeResult, Reporter

logger = logging.getLogger(__name__)
LOG_WIDTH = 200
STATUS_STYLE = {
    JobStatus.SUCCEEDED: "green",
    JobStatus.FAILED: "red",
    JobStatus.SKIPPED: "yellow",
}


def load_cubes(path: Path, settings: Settings | None = None) -> list[CubeSpec]:
    """The `cubes:` section of CONFIG, validated against the limits of `settings`;
    ConfigError names file and field."""
    data = read_config(path)
    try:
        return CubesConfig.model_validate(
            {"cubes": data.get("cubes") or []}, context=validation_context(settings)
        ).cubes
    except ValidationError as error:
        raise ConfigError(describe_validation_error(path, error)) from error


def validation_context(settings: Settings | None) -> dict[str, Any]:
    """What `cubes.spec` checks against (`CUBESTAC_CUBES__*`)."""
    limits = (settings or Settings()).cubes
    return {"max_grid_pixels": limits.max_grid_pixels}


def compute_settings() -> ComputeSettings:
    """`CUBESTAC_DASK_*`, checked before anything runs; ConfigError names the variable."""
    from cubes.compute import ComputeSettings

    try:
        return ComputeSettings()
    except ValidationError as error:
        problems = [
            f"CUBESTAC_DASK_{str(problem['loc'][0]).upper()}: {problem['msg']}"
            for problem in error.errors()
        ]
        raise ConfigError("\n".join(problems)) from error


def select_cubes(specs: list[CubeSpec], wanted: list[str], path: Path) -> list[CubeSpec]:
    known = {spec.id for spec in specs}
    unknown = [cube for cube in wanted if cube not in known]
    if unknown:
        raise ConfigError(
            f"{path}: no cube {', '.join(map(repr, unknown))} (cubes: {', '.join(sorted(known))})"
        )
    return [spec for spec in specs if not wanted or spec.id in wanted]


def cubes_command(
    config: Annotated[Path, typer.Argument(help="CONFIG file (YAML) with a `cubes:` section.")],
    cube: Annotated[
        list[str] | None, typer.Option("--cube", help="Only this cube (repeatable).")
    ] = None,
) -> None:
    """Build cubes from catalogue items and publish them as STAC items."""
    console = Console(stderr=True)
    if not console.is_terminal:
        console = Console(stderr=True, width=LOG_WIDTH)  # cron mail: don't fold messages
    settings = Settings()
    try:
        specs = select_cubes(load_cubes(config, settings), cube or [], config)
        compute = compute_settings() if specs else None
    except ConfigError as error:
        console.print(f"[red]error:[/red] {escape(str(error))}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from error
    logging.getLogger("distributed").setLevel(logging.WARNING)  # its INFO is cluster chatter
    if not settings.cube_root:
        console.print("[red]error:[/red] set CUBESTAC_CUBE_ROOT (a folder or s3://bucket/prefix)")
        raise typer.Exit(2)
    if not specs:
        console.print(escape(f"{config}: no cubes to build"))
        return
    results = asyncio.run(_run(specs, settings, compute, config.resolve().parent, console))
    console.print(status_table(results))
    failed = any(result.status is JobStatus.FAILED for result in results)
    raise typer.Exit(1 if failed else 0)


async def _run(
    specs: list[CubeSpec],
    settings: Settings,
    compute: ComputeSettings | None,
    config_dir: Path,
    console: Console,
) -> list[CubeResult]:
    from catalogue.database import Database, create_engine
    from cubes.compute import ComputePool
    from cubes.runner import RunContext, run_cubes

    database = Database(create_engine(settings))
    try:
        with ComputePool(compute) as pool, _progress(console) as reporter:
            context = RunContext(
                database, settings.cube_root or "", pool, config_dir, reporter,
                cube_anon=settings.cube_anon,
                values_per_thread_s=settings.cubes.values_per_thread_s,
            )  # fmt: skip
            return await run_cubes(specs, context)
    finally:
        await database.dispose()


class _progress:  # noqa: N801 - used like a function in a `with`
    """A rich bar per cube on a terminal; a log line per 10 % otherwise."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.bars: Progress | None = None
        self.tasks: dict[str, TaskID] = {}
        self.logged: dict[str, int] = {}
        self.lock = threading.Lock()

    def __enter__(self) -> Reporter:
        from cubes.runner import Reporter

        if self.console.is_terminal:
            self.bars = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total} tasks"),
                TimeElapsedColumn(),
                console=self.console,
                transient=False,
            )
            self.bars.start()
        return Reporter(
            started=self._started,
            planned=self._planned,
            progress=self._advance,
            finished=self._finished,
        )

    def __exit__(self, *exc: object) -> None:
        if self.bars is not None:
            self.bars.stop()

    def _started(self, cube: str) -> None:
        with self.lock:
            if self.bars is not None:
                self.tasks[cube] = self.bars.add_task(cube, total=None)
            else:
                logger.info("cube %s: building", cube)

    def _planned(self, cube: str, estimate: str) -> None:
        with self.lock:
            if self.bars is not None:
                self.bars.console.print(f"{cube}: {escape(estimate)}", highlight=False)
            else:
                logger.info("cube %s: %s", cube, estimate)

    def _advance(self, cube: str, done: int, total: int) -> None:
        with self.lock:
            if self.bars is not None and cube in self.tasks:
                self.bars.update(self.tasks[cube], completed=done, total=total)
                return
            step = (10 * done // total) if total else 0
            if step > self.logged.get(cube, -1):
                self.logged[cube] = step
                logger.info("cube %s: %d/%d tasks", cube, done, total)

    def _finished(self, result: CubeResult) -> None:
        with self.lock:
            if self.bars is not None and result.cube in self.tasks:
                style = STATUS_STYLE[result.status]
                task = next(t for t in self.bars.tasks if t.id == self.tasks[result.cube])
                total = task.total or 1  # a cube that failed before computing: a still bar
                done = total if result.status is JobStatus.SUCCEEDED else task.completed
                self.bars.update(
                    self.tasks[result.cube],
                    description=f"{result.cube} [{style}]{result.status}[/{style}]",
                    total=total,
                    completed=done,
                )


def status_table(results: list[CubeResult]) -> Table:
    table = Table(title="cubes", title_justify="left")
    for column in ("cube", "status", "duration", "size", "message"):
        table.add_column(column, overflow="fold")
    for result in results:
        style = STATUS_STYLE[result.status]
        table.add_row(
            result.cube,
            f"[{style}]{result.status}[/{style}]",
            f"{result.duration_s:.1f} s",
            _size(result.size_bytes),
            escape(result.message),
        )
    return table


def _size(size: int | None) -> str:
    if size is None:
        return ""
    amount = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if amount < 1000 or unit == "GB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1000
    return ""


def register_cube_commands(app: typer.Typer) -> None:
    """Add `cubes` to the `cubestac` command line."""
    app.command("cubes")(cubes_command)
