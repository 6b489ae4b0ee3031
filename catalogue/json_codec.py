"""JSON text for documents that may hold integers beyond 64 bits.

orjson is the fast path everywhere, but it handles integers only within
[-2**63, 2**64 - 1]: `dumps` raises `TypeError: Integer exceeds 64-bit range` (a 500 for any
client that put such a number in an item, issue 14) and `loads` silently turns them into
floats (other digits come back). JSON itself has no such limit, PostgreSQL's `jsonb` keeps
them exactly (as `numeric`), and FastAPI parses request bodies with the stdlib `json`, which
keeps them as Python ints. These functions keep orjson's speed for every ordinary document
and fall back to the stdlib only for the rare one that needs it, so the digits a client
sent are the digits it reads back.

Where a big integer cannot be honoured (a CQL2 filter: its parser reads numbers as
doubles) `big_integer` finds it, so the caller can refuse it by name.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from catalogue.errors import InvalidInputError

INT_MIN = -(2**63)  # orjson's range: int64 below zero, uint64 above
INT_MAX = 2**64 - 1
# what orjson cannot write but JSON can: the stdlib writes these (as digits, as escapes),
# and PostgreSQL then keeps the number or refuses the lone surrogate (a 400)
_STDLIB_ONLY = frozenset(
    {"Integer exceeds 64-bit range", "str is not valid UTF-8: surrogates not allowed"}
)
# An integer outside orjson's range has at least 19 digits; a text without such a run of
# digits (nearly every document) is read by orjson. A false alarm (a long float, a string
# of digits) only costs the stdlib parse, which reads it exactly the same. The run is found
# by mapping digits to "0" and the rest to " " (bytes.translate) and one bytes.find, far
# faster than a regular expression (bench/results/code_figures.md).
_DIGITS_AS_ZEROS = bytes(ord("0") if chr(c) in "0123456789" else ord(" ") for c in range(256))
_LONG_RUN = b"0" * 19


def dumps_bytes(value: Any) -> bytes:
    """`orjson.dumps(value)`, or the stdlib's compact JSON when it holds a big integer (or
    a lone surrogate, which only the stdlib can write, as a `\\udxxx` escape)."""
    try:
        return orjson.dumps(value)
    except TypeError as error:
        if str(error) not in _STDLIB_ONLY:
            raise
    return json.dumps(value, separators=(",", ":")).encode()


def dumps(value: Any) -> str:
    """As `dumps_bytes`, as text (what SQLAlchemy's JSONB binding and COPY take)."""
    return dumps_bytes(value).decode()


def loads(text: str | bytes) -> Any:
    """`orjson.loads(text)`, except that integers beyond 64 bits stay exact ints."""
    data = text.encode() if isinstance(text, str) else text
    if data.translate(_DIGITS_AS_ZEROS).find(_LONG_RUN) == -1:
        return orjson.loads(text)
    try:
        return json.loads(text)
    except RecursionError as error:  # orjson stops at 1024 levels with a JSONDecodeError
        raise ValueError("JSON nested too deeply") from error


def big_integer(value: Any) -> int | None:
    """An integer in `value` (nested lists and dicts) outside [INT_MIN, INT_MAX], if any."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, int) and not INT_MIN <= node <= INT_MAX:
            return node
    return None


def refuse_big_integers(value: Any, where: str) -> None:
    """InvalidInputError naming the first integer of `value` beyond 64 bits, if any.

    For inputs read as doubles (CQL2 filters, the Query extension): there a big integer
    would be compared after rounding, matching numbers the client did not ask for.
    """
    found = big_integer(value)
    if found is None:
        return
    digits = str(found)
    shown = digits if len(digits) <= 40 else f"{digits[:20]}... ({len(digits)} digits)"
    raise InvalidInputError(
        f"{where}: the integer {shown} is beyond the 64-bit range ({INT_MIN} to {INT_MAX}) "
        "that filters compare exactly; write it with an exponent (e.g. 1.8e19) to compare "
        "it as a double"
    )
