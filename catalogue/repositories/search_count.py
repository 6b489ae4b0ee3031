"""The exact number of items a search matches (`numberMatched`), within a time budget.

A page never needs the count: keyset paging reads `limit + 1` rows whatever the size of the
result. Counting every match of a broad search at a million items costs far more than its
page (a full index scan), so the count runs as its own statement under a transaction-local
`statement_timeout` (`set_config(..., true)`, a bound parameter): it is exact when it ends
within the budget and left out when PostgreSQL cancels it. A search whose count was
cancelled is remembered for `SLOW_TTL_S`, so that paging through it, or asking it again,
does not spend the budget on every page.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from time import monotonic
from typing import Any

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from catalogue.repositories.search import prepared
from catalogue.repositories.search_shape import SearchShape, search_parameters
from catalogue.search import ItemQuery

logger = logging.getLogger(__name__)

QUERY_CANCELED = "57014"  # what PostgreSQL raises when statement_timeout fires
SLOW_TTL_S = 60.0
SLOW_ENTRIES = 1_024  # keys come from clients' searches: bounded, oldest dropped first

# search key -> when to try counting it again (monotonic clock)
_SLOW: OrderedDict[tuple[Any, ...], float] = OrderedDict()


def _key(shape: SearchShape, query: ItemQuery, parameters: dict[str, Any]) -> tuple[Any, ...]:
    """What the count depends on: the conditions and their values, not the page's limit,
    token or order. Values are taken by repr (lists and dicts are not hashable)."""
    values = sorted(
        (name, repr(value))
        for name, value in parameters.items()
        if name != "limit" and not name.startswith("token_")
    )
    return (shape, repr(query.filter), tuple(values))


def _known_slow(key: tuple[Any, ...]) -> bool:
    retry_at = _SLOW.get(key)
    if retry_at is None:
        return False
    if retry_at <= monotonic():
        del _SLOW[key]
        return False
    return True


def _remember_slow(key: tuple[Any, ...]) -> None:
    _SLOW[key] = monotonic() + SLOW_TTL_S
    _SLOW.move_to_end(key)
    if len(_SLOW) > SLOW_ENTRIES:
        _SLOW.popitem(last=False)


async def count_matched(conn: AsyncConnection, query: ItemQuery, timeout_ms: int) -> int | None:
    """Every item the query matches, or None when counting takes over `timeout_ms`.

    `conn` must be in a transaction of its own that the caller rolls back after this (the
    timeout is transaction-local, and a cancelled statement aborts the transaction). Sort
    fields and filter names have been checked by the page's search already, so the filter
    is translated here without the queryables.
    """
    shape = SearchShape.of(query).counted
    parameters = search_parameters(query)
    key = _key(shape, query, parameters)
    if _known_slow(key):
        return None
    statement = prepared(shape, query, None).statement
    await conn.exec_driver_sql(
        "SELECT set_config('statement_timeout', $1, true)", (str(timeout_ms),)
    )
    try:
        return int((await conn.execute(statement, parameters)).scalar_one())
    except DBAPIError as error:
        if str(getattr(error.orig, "sqlstate", "")) != QUERY_CANCELED:
            raise
        logger.debug("count over %d ms, numberMatched left out", timeout_ms)
        _remember_slow(key)
        return None
