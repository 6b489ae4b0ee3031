"""Logging set-up, for entry points only: rich on a terminal, one JSON line per event otherwise."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime

import orjson
from rich.logging import RichHandler


class JsonLineFormatter(logging.Formatter):
    """One JSON object per line, for cron mail and log collectors."""

    def format(self, record: logging.LogRecord) -> str:
        event = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            event["error"] = self.formatException(record.exc_info)
        return orjson.dumps(event).decode()


def configure_logging(verbose: bool = False) -> None:
    level = logging.DEBUG if verbose else logging.INFO
    if sys.stderr.isatty():
        handler: logging.Handler = RichHandler(show_path=False, rich_tracebacks=True)
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonLineFormatter())
    logging.basicConfig(level=level, handlers=[handler], force=True)
    for noisy in ("uvicorn.access", "asyncio", "alembic.runtime.migration"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # stac-fastapi builds a module-level ApiSettings() at import and warns about its defaults;
    # ours are passed explicitly to StacApi, so that warning is noise.
    logging.getLogger("stac_fastapi.types.config").setLevel(logging.ERROR)
