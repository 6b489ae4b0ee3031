"""The Fields extension: include/exclude (nested) paths of each returned item.

https://github.com/stac-api-extensions/fields — semantics implemented:
- no `fields` at all: the whole item;
- `fields` given but empty: the default set (type, stac_version, id, geometry, bbox,
  links, assets, collection and the datetime properties);
- `include`: exactly those paths; `exclude`: the item (or the included part) without them;
- `exclude` with `include` given as null or [] (POST): the default set without them;
- a path both included and excluded, or excluded above an included path, stays included.
Paths are dotted (`properties.eo:cloud_cover`, `assets.B02.href`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from catalogue.errors import InvalidInputError

DEFAULT_PATHS = (
    "type", "stac_version", "id", "collection", "geometry", "bbox", "links", "assets",
    "properties.datetime", "properties.start_datetime", "properties.end_datetime",
)  # fmt: skip


MAX_PATH_NAMES = 32  # an item has about ten top-level members


def _paths(values: Iterable[str] | None) -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(value.split(".")) for value in values or () if value)


def _copy_path(source: dict[str, Any], target: dict[str, Any], path: tuple[str, ...]) -> None:
    for depth, key in enumerate(path):
        if not isinstance(source, dict) or key not in source:
            return
        if depth == len(path) - 1:
            target[key] = source[key]
            return
        source = source[key]
        existing = target.get(key)
        target = target.setdefault(key, {}) if isinstance(existing, dict | None) else existing


def _remove_path(document: dict[str, Any], path: tuple[str, ...]) -> None:
    for key in path[:-1]:
        document = document.get(key)  # type: ignore[assignment]  # walked only while dicts
        if not isinstance(document, dict):
            return
    document.pop(path[-1], None)


@dataclass(frozen=True)
class FieldSelection:
    """What to keep of each item; `None` from the constructors means "the whole item"."""

    include: tuple[tuple[str, ...], ...]
    exclude: tuple[tuple[str, ...], ...]
    requested: tuple[tuple[str, ...], ...] = ()  # includes the client named (win over exclude)

    @classmethod
    def from_get(cls, fields: list[str] | None, present: bool) -> FieldSelection | None:
        """`fields=id,-geometry,+assets` (GET); `fields=` alone asks for the default set."""
        if not present:
            return None
        include = [value.lstrip("+") for value in fields or [] if not value.startswith("-")]
        exclude = [value[1:] for value in fields or [] if value.startswith("-")]
        return cls.build(include, exclude)

    @classmethod
    def from_post(cls, fields: Any, present: bool) -> FieldSelection | None:
        """`{"fields": {"include": [...], "exclude": [...]}}` (POST); null is refused."""
        if not present:
            return None
        if fields is None:
            raise InvalidInputError("fields: must be an object with include/exclude, not null")
        include_given = "include" in fields.model_fields_set
        return cls.build(list(fields.include or ()), list(fields.exclude or ()), include_given)

    @classmethod
    def build(
        cls, include: list[str], exclude: list[str], include_given: bool = False
    ) -> FieldSelection:
        requested = _paths(include)
        if not include and (not exclude or include_given):
            include = list(DEFAULT_PATHS)
        return cls(_paths(include), _paths(exclude), requested)

    def _excludable(self, path: tuple[str, ...]) -> bool:
        """Excluding a path that is, or contains, an included path would drop it: skip."""
        return not any(kept[: len(path)] == path for kept in self.requested)

    def database_paths(self) -> tuple[tuple[str, ...], ...] | None:
        """The include paths for the database to select (item_text.item_text_columns), when
        the selection has them and does not name `links` (which the API adds to every
        item); None when it needs the whole item. Past `MAX_PATH_NAMES` names in all the
        whole item is read too: each name is a term of the SQL, and a request must not be
        able to make that statement arbitrarily long."""
        if not self.include or any(path[0] == "links" for path in self.include):
            return None
        if sum(len(path) for path in self.include) > MAX_PATH_NAMES:
            return None
        return self.include

    @property
    def exact_in_database(self) -> bool:
        """Whether what `database_paths` select is the whole answer (nothing to exclude)."""
        return not self.exclude

    def apply(self, item: dict[str, Any]) -> dict[str, Any]:
        if self.include:
            result: dict[str, Any] = {}
            for path in self.include:
                _copy_path(item, result, path)
        else:
            result = item  # each response builds its own item dicts, so edit in place
        for path in self.exclude:
            if self._excludable(path):
                _remove_path(result, path)
        return result
