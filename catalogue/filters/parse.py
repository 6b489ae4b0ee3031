"""CQL2 text and CQL2-JSON in, one normalised CQL2-JSON tree out (or a 400 saying where).

Parsing is the `cql2` library's (cql2-rs). Two of its limits are guarded here, because a
filter is untrusted input:

* its text parser recurses per nesting level on the native stack: a few thousand nested
  parentheses (or `NOT NOT ...`) overflow it and kill the whole process. So the text is
  bounded (length, parenthesis depth) and parsed on one worker thread with a large stack.
* it accepts any JSON-shaped expression; the tree it returns is bounded here (node count,
  depth), so that the translator's recursion and the statement's parameter count stay small.

https://docs.ogc.org/is/21-065r2/21-065r2.html (CQL2), https://github.com/stac-api-extensions/filter
"""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

import cql2
import orjson

from catalogue.errors import InvalidInputError
from catalogue.json_codec import refuse_big_integers

CQL2_TEXT = "cql2-text"
CQL2_JSON = "cql2-json"
FILTER_LANGS = (CQL2_TEXT, CQL2_JSON)
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
ACCEPTED_CRS = frozenset({CRS84, CRS84.replace("http://", "https://", 1)})

# 64 KiB of `NOT NOT ...` needs ~30 MiB of native stack in cql2 0.6; pages are only
# committed when touched, so the reservation costs address space, not memory. The text
# length limit may not go above MAX_TEXT_CHARS_CEILING, which this stack still holds.
PARSER_STACK_BYTES = 128 * 1024 * 1024
MAX_TEXT_CHARS_CEILING = 256 * 1024


@dataclass(frozen=True)
class FilterLimits:
    """Bounds on one filter; the API builds them from `ApiSettings` (the `setting` names in
    the messages are the `CUBESTAC_API__*` variables that raise them)."""

    text_chars: int = 64 * 1024  # a cql2-text filter
    json_chars: int = 1024 * 1024  # a cql2-json filter, as compact JSON
    depth: int = 100  # JSON levels (each operator is two: its object and its args);
    # also the deepest nesting of parentheses in cql2-text
    nodes: int = 10_000  # objects, arrays and values; a geometry's coordinates count once
    vertices: int = 10_000  # positions of all geometry literals together


DEFAULT_LIMITS = FilterLimits()

_POSITION = re.compile(r"-->\s*(\d+):(\d+)")
_EXPECTED = re.compile(r"=\s*(expected .*)$", re.DOTALL)
_JSON_AT = re.compile(r"(.*) at line (\d+) column (\d+)$")


def check_crs(crs: str | None) -> None:
    """`filter-crs`: spatial literals are longitude/latitude (CRS84), the only CRS we take."""
    if crs is not None and crs not in ACCEPTED_CRS:
        raise InvalidInputError(f"filter-crs: {crs!r} is not supported; use {CRS84}")


def parse_filter(
    value: str | dict[str, Any] | None,
    lang: str | None = None,
    crs: str | None = None,
    limits: FilterLimits = DEFAULT_LIMITS,
) -> Any:
    """The filter as normalised CQL2-JSON (operators lower-case, numbers as floats).

    `lang` defaults to cql2-text for a string and cql2-json for an object, which is what
    GET and POST /search default to.
    """
    check_crs(crs)
    if value is None or value == "":
        return None
    lang = lang or (CQL2_TEXT if isinstance(value, str) else CQL2_JSON)
    if lang not in FILTER_LANGS:
        raise InvalidInputError(f"filter-lang: {lang!r} is not one of {', '.join(FILTER_LANGS)}")
    if lang == CQL2_TEXT:
        if not isinstance(value, str):
            raise InvalidInputError("filter: filter-lang cql2-text needs the filter as a string")
        tree = _parse_text(value, limits)
    else:
        tree = _parse_json(value, limits)
    check_size(tree, limits)
    return tree


def check_size(tree: Any, limits: FilterLimits = DEFAULT_LIMITS) -> None:
    """At most `limits.nodes` nodes, `limits.depth` levels and `limits.vertices` geometry
    positions, counted without recursion. A geometry's coordinates count as one node: they
    become one bound parameter (WKB)."""
    stack = [(tree, 1)]
    nodes = vertices = 0
    while stack:
        node, depth = stack.pop()
        nodes += 1
        if depth > limits.depth:
            raise InvalidInputError(
                f"filter: nested more than {limits.depth} levels deep"
                " (limit CUBESTAC_API__MAX_FILTER_DEPTH)"
            )
        if nodes > limits.nodes:
            raise InvalidInputError(
                f"filter: more than {limits.nodes} nodes (limit CUBESTAC_API__MAX_FILTER_NODES)"
            )
        if isinstance(node, dict):
            if "coordinates" in node:
                vertices += count_positions(node["coordinates"])
                if vertices > limits.vertices:
                    raise InvalidInputError(
                        f"filter: geometry literals with more than {limits.vertices} vertices"
                        " (limit CUBESTAC_API__MAX_GEOMETRY_VERTICES)"
                    )
            children = [value for key, value in node.items() if key != "coordinates"]
            stack.extend((child, depth + 1) for child in children)
        elif isinstance(node, list):
            stack.extend((child, depth + 1) for child in node)


def count_positions(coordinates: Any) -> int:
    """How many positions (vertices) GeoJSON `coordinates` hold, at any nesting, without
    recursion; a position is a list (or tuple) whose first element is a number."""
    count = 0
    stack = [coordinates]
    while stack:
        node = stack.pop()
        if isinstance(node, list | tuple) and node:
            if isinstance(node[0], int | float) and not isinstance(node[0], bool):
                count += 1
            else:
                stack.extend(node)
    return count


# -- cql2-text -------------------------------------------------------------------------------
def _parse_text(text: str, limits: FilterLimits) -> Any:
    if len(text) > limits.text_chars:
        raise InvalidInputError(
            f"filter: longer than {limits.text_chars} characters"
            " (limit CUBESTAC_API__MAX_FILTER_TEXT_CHARS)"
        )
    depth = parentheses_depth(text)
    if depth > limits.depth:
        raise InvalidInputError(
            f"filter: parentheses nested {depth} deep, at most {limits.depth}"
            " (limit CUBESTAC_API__MAX_FILTER_DEPTH)"
        )
    try:
        try:
            return orjson.loads(_parsed_text(text))
        except TypeError:  # deeper than orjson writes (254 levels): not cached, refused later
            return _parser().submit(_text_to_json, text).result()
    except cql2.ParseError as error:
        raise InvalidInputError(
            f"filter: invalid cql2-text {_text_position(text, error)}"
        ) from error


@lru_cache(maxsize=256)
def _parsed_text(text: str) -> bytes:
    """cql2-text as CQL2-JSON, remembered for the texts seen last.

    Clients repeat filters (every page of a search carries the same one, UIs re-run them)
    and parsing in the worker thread costs the event loop time on every request
    (bench/results/code_figures.md). The
    JSON is kept as bytes so each caller gets its own tree; texts are bounded by
    `max_filter_text_chars`, so the cache is too. Parse errors are not cached.
    """
    return orjson.dumps(_parser().submit(_text_to_json, text).result())


def _text_to_json(text: str) -> Any:
    return cql2.parse_text(text).to_json()


@cache
def _parser() -> ThreadPoolExecutor:
    """One worker thread with a large native stack (created on first use, not at import)."""
    previous = threading.stack_size(PARSER_STACK_BYTES)
    try:
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cql2-parser")
        pool.submit(int).result()  # start the worker now, while the stack size is ours
    finally:
        threading.stack_size(previous)
    return pool


def parentheses_depth(text: str) -> int:
    """Deepest nesting of parentheses outside 'string' and "identifier" quotes."""
    depth = deepest = 0
    quote: str | None = None
    for char in text:
        if quote is not None:
            quote = None if char == quote else quote  # '' inside a string re-enters it
        elif char in "'\"":
            quote = char
        elif char == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif char == ")":
            depth -= 1
    return deepest


def _text_position(text: str, error: Exception) -> str:
    """'at line L, column C (near '...'): expected ...' from the parser's report."""
    message = str(error)
    position = _POSITION.search(message)
    expected = _EXPECTED.search(message)
    if position is None:
        return f": {message.strip()}"
    line, column = int(position.group(1)), int(position.group(2))
    lines = text.splitlines() or [""]
    source = lines[line - 1] if line <= len(lines) else ""
    near = source[max(column - 21, 0) : column + 20]
    what = expected.group(1).strip() if expected else message.strip()
    return f"at line {line}, column {column} (near {near!r}): {what}"


# -- cql2-json -------------------------------------------------------------------------------
def _parse_json(value: str | dict[str, Any], limits: FilterLimits) -> Any:
    if not isinstance(value, str):
        check_size(value, limits)  # before orjson, which refuses more than 254 levels
        refuse_big_integers(value, "filter")  # orjson cannot write them; CQL2 reads doubles
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    if len(text) > limits.json_chars:
        raise InvalidInputError(
            f"filter: longer than {limits.json_chars} characters as JSON"
            " (limit CUBESTAC_API__MAX_FILTER_JSON_CHARS)"
        )
    try:
        return cql2.parse_json(text).to_json()
    except cql2.ParseError as error:
        raise InvalidInputError(
            f"filter: invalid cql2-json: {_json_problem(text, error, limits)}"
        ) from error


def _json_problem(text: str, error: Exception, limits: FilterLimits) -> str:
    """The library names a position for JSON syntax errors, and nothing for a well-formed
    document that is not CQL2; then the deepest node that does not parse is named."""
    message = str(error)
    at = _JSON_AT.match(message)
    if at is not None:
        what = "nested too deeply" if "recursion limit" in at.group(1) else at.group(1)
        return f"{what} at line {at.group(2)}, column {at.group(3)}"
    tree = orjson.loads(text)
    check_size(tree, limits)  # bounds the search below
    node = _deepest_invalid(tree)
    return f"{show(node)} is not a CQL2 expression"


def _deepest_invalid(node: Any) -> Any:
    """Walk down into the first child that fails to parse on its own, as long as one does."""
    while True:
        children = node.get("args", []) if isinstance(node, dict) else node
        if not isinstance(children, list):
            return node
        failing = next((child for child in children if not _parses(child)), None)
        if failing is None:
            return node
        node = failing


def _parses(node: Any) -> bool:
    if isinstance(node, list):
        return all(_parses(child) for child in node)
    try:
        cql2.parse_json(orjson.dumps(node).decode())
    except cql2.ParseError:
        return False
    return True


def show(node: Any, limit: int = 120) -> str:
    """A node as compact JSON for error messages, cut at `limit` characters."""
    text = orjson.dumps(node).decode()
    return text if len(text) <= limit else text[: limit - 3] + "..."
