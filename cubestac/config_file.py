"""Reading CONFIG: YAML with `${VAR}` taken from the environment, errors with file and line.

Each package validates its own section (`ingest` its `sources`, `cubes` its `cubes`);
`cubestac.config` composes them into the full schema that `cubestac config schema` prints.
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
SECTIONS = ("sources", "cubes")  # the top-level keys of CONFIG (cubestac.run_commands)


class ConfigError(Exception):
    """A CONFIG that cannot be used; the message names the file and the field or line."""


def _expand(value: Any, path: Path, where: str) -> Any:
    if isinstance(value, str):

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in os.environ:
                raise ConfigError(f"{path}: {where}: environment variable {name} is not set")
            return os.environ[name]

        return ENV_REFERENCE.sub(substitute, value)
    if isinstance(value, list):
        return [_expand(item, path, f"{where}[{index}]") for index, item in enumerate(value)]
    if isinstance(value, dict):
        return {key: _expand(item, path, f"{where}.{key}") for key, item in value.items()}
    return value


def read_config(path: Path) -> dict[str, Any]:
    """The parsed, environment-expanded CONFIG mapping."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror}") from error
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "YAML"
        raise ConfigError(f"{path}: {where}: {getattr(error, 'problem', error)}") from error
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping with sources/cubes")
    _check_sections(path, data)
    return _expand(data, path, "config")


def _check_sections(path: Path, data: dict[str, Any]) -> None:
    """Every command refuses an unknown top-level key, by name: a misspelt `cube:` would
    otherwise be silently ignored by `cubestac cubes` (nothing built, exit 0)."""
    problems = []
    for key in data:
        if key in SECTIONS:
            continue
        close = difflib.get_close_matches(str(key), SECTIONS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        problems.append(
            f"{path}: {key}: unknown top-level key{hint}; CONFIG has {' and '.join(SECTIONS)}"
        )
    if problems:
        raise ConfigError("\n".join(problems))


def describe_validation_error(path: Path, error: ValidationError) -> str:
    """`file: sources[1].url: message` lines, one per problem."""
    lines = []
    for problem in error.errors():
        where = ""
        for part in problem["loc"]:
            where += f"[{part}]" if isinstance(part, int) else (f".{part}" if where else str(part))
        lines.append(f"{path}: {where or 'config'}: {problem['msg']}")
    return "\n".join(lines)
