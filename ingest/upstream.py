"""Reading upstream documents by URL: http(s) with conditional requests, anything else
through fsspec (local paths, file://, s3://), every read retried on transient failures.

A read returns the document's bytes and its fingerprint, or None when the fingerprint the
previous run stored still holds: for HTTP the server says so (304 to If-None-Match /
If-Modified-Since), for files their size and modification time (the ETag on S3) are
compared before anything is read.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import fsspec
import orjson
from fsspec.spec import AbstractFileSystem

from ingest.errors import RecordError, TransientError
from ingest.resource import Resource
from ingest.retry import RETRYABLE_STATUSES, RetryPolicy

USER_AGENT = "cubestac-ingest"


@dataclass(frozen=True)
class Document:
    url: str
    body: bytes
    fingerprint: str

    def json(self) -> Any:
        """The parsed body; a body that is not JSON is a bad record, not a crash."""
        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError as error:
            raise RecordError(self.url, f"not valid JSON: {error}") from error


def is_http(url: str) -> bool:
    return urlsplit(url).scheme.lower() in ("http", "https")


def http_fingerprint(headers: Mapping[str, str], body: bytes) -> str:
    """The strongest validator the server gave; a content hash when it gave none."""
    if etag := headers.get("ETag"):
        return f"etag:{etag}"
    if modified := headers.get("Last-Modified"):
        return f"modified:{modified}"
    return "sha256:" + hashlib.sha256(body).hexdigest()


def conditional_headers(known: str | None) -> dict[str, str]:
    if not known:
        return {}
    if known.startswith("etag:"):
        return {"If-None-Match": known.removeprefix("etag:")}
    if known.startswith("modified:"):
        return {"If-Modified-Since": known.removeprefix("modified:")}
    return {}


def file_fingerprint(info: Mapping[str, Any]) -> str:
    """ETag when the store has one (S3), else size and modification time."""
    etag = info.get("ETag") or info.get("etag")
    if etag:
        return f"etag:{etag}"
    modified = info.get("mtime") or info.get("LastModified") or info.get("last_modified")
    return f"file:{info.get('size')}:{modified}"


@dataclass
class FileSystems:
    """fsspec file systems of one run, one per protocol, with fresh listing caches (a rerun
    in the same process must not see the previous run's listings)."""

    storage_options: Mapping[str, Any] = field(default_factory=dict)
    _cache: dict[str, AbstractFileSystem] = field(default_factory=dict)

    def resolve(self, url: str) -> tuple[AbstractFileSystem, str]:
        protocol = fsspec.utils.get_protocol(url)
        if protocol not in self._cache:
            options = dict(self.storage_options) if protocol not in ("file", "local") else {}
            self._cache[protocol] = fsspec.filesystem(protocol, skip_instance_cache=True, **options)
        filesystem = self._cache[protocol]
        return filesystem, filesystem._strip_protocol(url)


class Upstream(Resource):
    """Reads documents of one source: bounded, retried, conditional. Use `async with`."""

    def __init__(
        self,
        *,
        policy: RetryPolicy,
        timeout_s: float,
        concurrency: int,
        storage_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.policy = policy
        self.timeout_s = timeout_s
        self.concurrency = concurrency
        self.filesystems = FileSystems(storage_options or {})
        self._session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.timeout_s),
            connector=aiohttp.TCPConnector(limit=self.concurrency),
            headers={"User-Agent": USER_AGENT},
            trust_env=True,
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def read(self, url: str, known: str | None = None) -> Document | None:
        """The document at `url`, or None when `known` (its stored fingerprint) still holds.

        Raises RecordError for answers that retrying cannot change, and the last transient
        error once the retries are spent.
        """
        reader = self._read_http if is_http(url) else self._read_file
        async for attempt in self.policy.asynchronous():
            with attempt:
                return await reader(url, known)
        raise AssertionError("unreachable: tenacity re-raises the last error")

    async def _read_http(self, url: str, known: str | None) -> Document | None:
        assert self._session is not None, "use `async with Upstream(...)`"
        async with self._session.get(url, headers=conditional_headers(known)) as response:
            if response.status == 304:
                return None
            if response.status in RETRYABLE_STATUSES:
                raise TransientError(f"{url}: HTTP {response.status} {response.reason}")
            if response.status >= 400:
                raise RecordError(url, f"HTTP {response.status} {response.reason}")
            body = await response.read()
            fingerprint = http_fingerprint(response.headers, body)
        return None if fingerprint == known else Document(url, body, fingerprint)

    async def _read_file(self, url: str, known: str | None) -> Document | None:
        filesystem, path = self.filesystems.resolve(url)
        try:
            info = await asyncio.to_thread(filesystem.info, path)
            fingerprint = file_fingerprint(info)
            if fingerprint == known:
                return None
            body = await asyncio.to_thread(filesystem.cat_file, path)
        except FileNotFoundError as error:
            raise RecordError(url, "not found") from error
        except (PermissionError, IsADirectoryError) as error:
            raise RecordError(url, f"cannot be read: {error}") from error
        return Document(url, body, fingerprint)
