"""Schema state: run Alembic, and tell whether a database is at the code's head revision."""

from __future__ import annotations

from importlib.resources import files

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import URL, Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from catalogue.errors import NotMigratedError

UPGRADE_HINT = "run `cubestac db upgrade`"


def alembic_config(url: URL) -> Config:
    """An Alembic config pointing at the packaged `migrations` folder (no alembic.ini needed)."""
    config = Config()
    config.set_main_option("script_location", str(files("migrations")))
    config.set_main_option(
        "sqlalchemy.url", url.render_as_string(hide_password=False).replace("%", "%%")
    )
    return config


def upgrade(url: URL, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def head_revision() -> str | None:
    script = ScriptDirectory(str(files("migrations")))
    return script.get_current_head()


def _current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def ensure_migrated(engine: AsyncEngine) -> None:
    """Refuse to serve a database that is not at head, saying which command fixes it."""
    async with engine.connect() as connection:
        current = await connection.run_sync(_current_revision)
    head = head_revision()
    if current is None:
        raise NotMigratedError(f"the catalogue database has no schema yet: {UPGRADE_HINT}")
    if current != head:
        raise NotMigratedError(
            f"the catalogue database is at revision {current}, the code expects {head}: "
            f"{UPGRADE_HINT}"
        )
