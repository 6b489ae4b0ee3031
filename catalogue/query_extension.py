"""The legacy Query extension, translated to CQL2-JSON so that one translator serves both.

https://github.com/stac-api-extensions/query — `{"eo:cloud_cover": {"lt": 10}}`; operators
eq, neq (ne), lt, lte, gt, gte, startsWith, endsWith, contains, in; every condition ANDed.
On the cube arrays (`cube:variable_names` ...), `contains` is A_CONTAINS of that one value
and `in` is A_OVERLAPS (any of the values): the cube-finding queries a Query client sends.
"""

from __future__ import annotations

from typing import Any

from catalogue import cube_properties
from catalogue.errors import InvalidInputError
from catalogue.json_codec import refuse_big_integers

COMPARISONS = {"eq": "=", "neq": "<>", "ne": "<>", "lt": "<", "lte": "<=", "gt": ">", "gte": ">="}
MAX_CONDITIONS = 100


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _as_number(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if number == number and abs(number) != float("inf") else None


def _comparison(name: str, operator: str, value: Any) -> dict[str, Any]:
    """A typed comparison; a numeric string also compares as a number.

    The Query extension predates typed filters and clients send `{"gsd": {"eq": "10"}}` for a
    numeric `gsd`. Each typed comparison only holds for values of its type, so OR-ing the
    string and the number reading matches exactly the items either reading would.
    """
    op = COMPARISONS[operator]
    prop = {"property": name}
    as_text = {"op": op, "args": [prop, value]}
    number = _as_number(value)
    if number is None:
        return as_text
    return {"op": "or", "args": [as_text, {"op": op, "args": [prop, number]}]}


def _array_condition(name: str, operator: str, value: Any) -> dict[str, Any] | None:
    """`contains`/`in` on a cube array property as array functions; None for the rest."""
    if operator == "contains" and isinstance(value, str | int | float):
        return {"op": "a_contains", "args": [{"property": name}, [value]]}
    if operator == "in" and isinstance(value, list) and value:
        return {"op": "a_overlaps", "args": [{"property": name}, value]}
    return None


def _condition(name: str, operator: str, value: Any) -> dict[str, Any]:
    prop = {"property": name}
    if name.removeprefix("properties.") in cube_properties.ARRAY_NAMES:
        array = _array_condition(name, operator, value)
        if array is not None:
            return array
    if operator in COMPARISONS:
        return _comparison(name, operator, value)
    if operator == "in":
        if not isinstance(value, list) or not value:
            raise InvalidInputError(f"query: {name}.in must be a non-empty list")
        return {"op": "in", "args": [prop, value]}
    if operator in ("startsWith", "endsWith", "contains"):
        if not isinstance(value, str):
            raise InvalidInputError(f"query: {name}.{operator} needs a string")
        escaped = _like_escape(value)
        pattern = {
            "startsWith": f"{escaped}%",
            "endsWith": f"%{escaped}",
            "contains": f"%{escaped}%",
        }[operator]
        return {"op": "like", "args": [prop, pattern]}
    raise InvalidInputError(
        f"query: unknown operator {operator!r} for {name!r} "
        f"(use {', '.join([*COMPARISONS, 'in', 'startsWith', 'endsWith', 'contains'])})"
    )


def query_to_cql2(query: dict[str, Any] | None) -> dict[str, Any] | None:
    """The CQL2-JSON equivalent of a Query-extension object (None when empty)."""
    if not query:
        return None
    if not isinstance(query, dict):
        raise InvalidInputError("query: must be an object of {property: {operator: value}}")
    refuse_big_integers(query, "query")
    conditions = []
    for name, operators in query.items():
        if not isinstance(operators, dict) or not operators:
            raise InvalidInputError(f"query: {name!r} must map operators to values")
        conditions += [_condition(name, operator, value) for operator, value in operators.items()]
    if len(conditions) > MAX_CONDITIONS:
        raise InvalidInputError(f"query: at most {MAX_CONDITIONS} conditions")
    return conditions[0] if len(conditions) == 1 else {"op": "and", "args": conditions}
