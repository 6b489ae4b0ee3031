"""Retries of transient upstream failures: 5xx, 429, timeouts and connection resets.

One policy per source (`retries`, `retry_wait_s` in CONFIG), exponential back-off with a
little jitter, shared by the async readers (aiohttp, fsspec) and the sync STAC API client
(pystac-client runs in a worker thread). Anything else (404, invalid JSON, a refused
request) is not retried: trying again would give the same answer.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import aiohttp
import requests
from pystac_client.exceptions import APIError
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from ingest.errors import TransientError

logger = logging.getLogger(__name__)
RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
MAX_WAIT_S = 60.0


def is_transient(error: BaseException) -> bool:
    """Whether trying again may succeed."""
    if isinstance(error, TransientError):
        return True
    if isinstance(error, APIError):  # pystac-client: an HTTP status, or a requests failure
        status = getattr(error, "status_code", None)
        return status in RETRYABLE_STATUSES or status is None and _looks_like_network(error)
    if isinstance(error, aiohttp.ClientResponseError):
        return error.status in RETRYABLE_STATUSES
    if isinstance(error, aiohttp.ClientPayloadError | aiohttp.ClientConnectionError):
        return True
    if isinstance(error, requests.ConnectionError | requests.Timeout):
        return True
    return isinstance(error, TimeoutError | asyncio.TimeoutError | ConnectionError)


def _looks_like_network(error: APIError) -> bool:
    """pystac-client wraps transport errors in an APIError without a status; its message is
    the only trace of the cause."""
    text = str(error).lower()
    return any(word in text for word in ("timed out", "timeout", "connection", "reset", "refused"))


@dataclass(frozen=True)
class RetryPolicy:
    """`retries` further attempts after the first, waiting `first_wait_s`, doubling."""

    retries: int
    first_wait_s: float

    def _arguments(self) -> dict[str, Any]:
        return {
            "stop": stop_after_attempt(self.retries + 1),
            "wait": wait_exponential_jitter(
                multiplier=self.first_wait_s, max=MAX_WAIT_S, jitter=self.first_wait_s / 4
            ),
            "retry": retry_if_exception(is_transient),
            "before_sleep": _log_retry,
            "reraise": True,
        }

    def asynchronous(self) -> AsyncRetrying:
        return AsyncRetrying(**self._arguments())

    def synchronous(self) -> Retrying:
        return Retrying(**self._arguments())


def describe(error: BaseException | None) -> str:
    """An error for a report: timeouts (asyncio's and aiohttp's) have no message of their own."""
    if isinstance(error, TimeoutError | asyncio.TimeoutError) and not str(error):
        return "timed out"
    return str(error) or type(error).__name__


def _log_retry(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome else None
    wait = state.next_action.sleep if state.next_action else 0.0
    logger.warning(
        "transient upstream error (attempt %d): %s; retrying in %.1f s",
        state.attempt_number,
        describe(error),
        wait,
    )
