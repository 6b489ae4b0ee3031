"""The one rule for collection and item ids, held by every write path.

An id becomes a path segment of its own `self` link (`/collections/{c}/items/{i}`), so an
id that a URL cannot carry as one segment breaks the catalogue, sometimes destructively:

- `.` and `..` are dot-segments. Every HTTP client removes them (RFC 3986 section 5.2.4)
  before sending, so the `self` link of item `..` is the collection's URL, and a DELETE
  sent to it deleted the whole collection (issue 14). Percent-encoding does not help:
  `%2E` is an unreserved character and equivalent to `.` (RFC 3986 section 6.2.2.2).
- `/` splits the segment: the server decodes `%2F` before routing, so item `a/b` was
  stored and then unreachable (404 on its own `self` link). `\\` is a path separator to
  WHATWG URL parsers (browsers, STAC Browser) and to Windows-hosted proxies.
- Control characters (C0, DEL, C1) are invisible in logs and refused by HTTP stacks;
  PostgreSQL cannot store NUL at all; lone surrogates are not text in any encoding.
- Ids are kept under `MAX_ID_BYTES` so that (collection, id) always fits PostgreSQL's
  primary-key index (at most 2704 bytes per entry).

Everything else is accepted, including spaces, `?`, `#`, `:`, `%` and non-ASCII letters:
links percent-encode them (`%3F`, `%23`, ...) and every client and server decodes them back
to the same id; unlike `%2F` and `%2E%2E`, none of them changes which path is meant.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from pydantic import AfterValidator

from catalogue.errors import InvalidInputError

MAX_ID_BYTES = 1024
DOT_SEGMENTS = frozenset({".", ".."})
FORBIDDEN = re.compile(r"[/\\\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def id_problem(value: Any) -> str | None:
    """Why `value` cannot be a collection or item id, or None when it can."""
    if not isinstance(value, str) or not value:
        return "must be a non-empty string"
    if value in DOT_SEGMENTS:
        return "may not be '.' or '..' (a URL path would drop or climb that segment)"
    found = FORBIDDEN.search(value)
    if found is not None:
        return f"may not contain {found.group()!r} (it cannot be one segment of a URL path)"
    if len(value.encode()) > MAX_ID_BYTES:
        return f"is longer than {MAX_ID_BYTES} bytes"
    return None


def check_id(value: Any, what: str) -> str:
    """`value` when it is a valid id; InvalidInputError naming `what` and `value` otherwise.

    `what` says where the id was found ("item", "collection", "item 'x': collection") so
    that the message points at the field to fix.
    """
    problem = id_problem(value)
    if problem is not None:
        shown = value if not isinstance(value, str) or len(value) <= 80 else value[:77] + "..."
        raise InvalidInputError(f"{what} id {shown!r} {problem}")
    return value


def first_duplicate(ids: Iterable[str]) -> str | None:
    """The first id that appears a second time, or None: config sections (sources, cubes)
    name one thing per id, since the id keys its state, lock and published item."""
    seen: set[str] = set()
    for value in ids:
        if value in seen:
            return value
        seen.add(value)
    return None


def unique_ids(what: str) -> AfterValidator:
    """A pydantic validator of a list of things with an `id` (sources, cubes): a ValueError
    naming the first repeated id, e.g. "cube id 'a' is used more than once"."""

    def check(items: list[Any]) -> list[Any]:
        repeated = first_duplicate(item.id for item in items)
        if repeated is not None:
            raise ValueError(f"{what} id {repeated!r} is used more than once")
        return items

    return AfterValidator(check)
