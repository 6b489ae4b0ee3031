"""Offline JSON schemas for STAC validators, served in-process; nothing leaves the loopback.

stac-api-validator and the libraries it drives (stac_validator, stac_check, pystac,
pystac_client) fetch JSON schemas by URL: the STAC core schemas on schemas.stacspec.org, the
GeoJSON schemas on geojson.org and extension schemas on stac-extensions.github.io. There is no
internet where the tests run, so `offline_schemas()` answers those URLs from the mirror in
`tests/data/schemas/<host>/<path>` (see its README.md) and refuses every other off-loopback
fetch before any DNS lookup or connection happens. The fetch paths it covers:

* `requests` (stac_validator: `set_schema_addr` names the remote core schema, as the installed
  stac_validator ships no `local_schemas`, and `fetch_and_parse_schema` -> `requests.get`
  loads it and every `$ref` the `referencing` registry resolves; stac_check's
  `Linter.load_data`; stac-api-validator's own session; pystac_client): `HTTPAdapter.send` is
  wrapped, so `requests.get` and every `Session` see it.
* `urllib3.PoolManager.urlopen` (pystac's `DefaultStacIO`, which reads the extension schemas
  behind `pystac.validation` and walks the catalogue for stac-api-validator): wrapped.
* `urllib.request.urlopen` (stac_validator's link and asset checks): a handler is installed in
  the global opener, ahead of the proxy handler.
* Anything else: `socket.getaddrinfo` refuses every host that is not loopback (or explicitly
  allowed, e.g. the test database's host), and HTTP(S)_PROXY point at a closed loopback port
  with NO_PROXY for 127.0.0.1/localhost, so a stray fetch fails fast and locally.

Only use it as a context manager around in-process validation; it restores everything on exit.
"""

from __future__ import annotations

import email.message
import io
import socket
import threading
import urllib.request
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.error import URLError
from urllib.parse import urlsplit
from urllib.response import addinfourl

import requests
import urllib3
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict

SCHEMA_DIR = Path(__file__).parent / "data" / "schemas"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
CLOSED_LOOPBACK_PROXY = "http://127.0.0.1:9"  # discard port: nothing listens, connect fails


def mirrored_schema(url: str) -> Path | None:
    """The local copy of the schema published at `url`, if the mirror has one."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    path = (SCHEMA_DIR / parts.hostname / parts.path.lstrip("/")).resolve()
    if not path.is_relative_to(SCHEMA_DIR.resolve()) or not path.is_file():
        return None
    return path


def mirrored_urls() -> list[str]:
    """Every URL the mirror answers (https, as published)."""
    return sorted(
        "https://" + path.relative_to(SCHEMA_DIR).as_posix() for path in SCHEMA_DIR.rglob("*.json")
    )


@dataclass
class OfflineLog:
    """What was answered from the mirror and what was refused, in order, thread-safely."""

    served: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, bucket: list[str], url: str) -> None:
        with self._lock:
            bucket.append(url)


def _is_loopback(url: str) -> bool:
    return (urlsplit(url).hostname or "") in LOOPBACK_HOSTS


def _requests_response(request: requests.PreparedRequest, path: Path) -> requests.Response:
    response = requests.Response()
    response.status_code = 200
    response.reason = "OK"
    response._content = path.read_bytes()  # what requests itself fills in from the wire
    response.encoding = "utf-8"
    response.headers = CaseInsensitiveDict({"Content-Type": "application/json"})
    response.url = request.url or ""
    response.request = request
    return response


def _patched_send(log: OfflineLog, original: Any) -> Any:
    def send(self: HTTPAdapter, request: requests.PreparedRequest, *args: Any, **kwargs: Any):
        url = request.url or ""
        if _is_loopback(url):
            return original(self, request, *args, **kwargs)
        if (path := mirrored_schema(url)) is not None:
            log.record(log.served, url)
            return _requests_response(request, path)
        log.record(log.refused, url)
        raise requests.ConnectionError(f"offline test: refused to fetch {url}", request=request)

    return send


def _patched_pool_urlopen(log: OfflineLog, original: Any) -> Any:
    def urlopen(self: urllib3.PoolManager, method: str, url: str, *args: Any, **kwargs: Any):
        if _is_loopback(url):
            return original(self, method, url, *args, **kwargs)
        if (path := mirrored_schema(url)) is not None:
            log.record(log.served, url)
            return urllib3.HTTPResponse(
                body=io.BytesIO(path.read_bytes()),
                headers={"Content-Type": "application/json"},
                status=200,
                reason="OK",
                preload_content=kwargs.get("preload_content", True),
                request_url=url,
            )
        log.record(log.refused, url)
        raise urllib3.exceptions.ProtocolError(f"offline test: refused to fetch {url}")

    return urlopen


class _OfflineHandler(urllib.request.BaseHandler):
    """Runs before urllib's ProxyHandler (order 100): loopback falls through, schemas come
    from the mirror, everything else is refused."""

    handler_order = 50

    def __init__(self, log: OfflineLog) -> None:
        self.log = log

    def _open(self, request: urllib.request.Request) -> addinfourl | None:
        url = request.full_url
        if _is_loopback(url):
            return None
        if (path := mirrored_schema(url)) is not None:
            self.log.record(self.log.served, url)
            headers = email.message.Message()
            headers["Content-Type"] = "application/json"
            return addinfourl(io.BytesIO(path.read_bytes()), headers, url, 200)
        self.log.record(self.log.refused, url)
        raise URLError(f"offline test: refused to fetch {url}")

    http_open = _open
    https_open = _open


def _guarded_getaddrinfo(log: OfflineLog, allowed: frozenset[str], original: Any) -> Any:
    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if host is not None and name not in allowed:
            log.record(log.refused, f"dns:{name}")
            raise socket.gaierror(socket.EAI_NONAME, f"offline test: refused to resolve {name}")
        return original(host, *args, **kwargs)

    return getaddrinfo


@contextmanager
def offline_schemas(allowed_hosts: Iterable[str] = ()) -> Iterator[OfflineLog]:
    """Serve the mirrored schemas to requests and urllib; refuse every other off-loopback
    fetch. `allowed_hosts` may resolve too (e.g. the test database when it is not local)."""
    log = OfflineLog()
    allowed = LOOPBACK_HOSTS | frozenset(allowed_hosts)
    proxy_env = {
        "HTTP_PROXY": CLOSED_LOOPBACK_PROXY,
        "HTTPS_PROXY": CLOSED_LOOPBACK_PROXY,
        "http_proxy": CLOSED_LOOPBACK_PROXY,
        "https_proxy": CLOSED_LOOPBACK_PROXY,
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }
    previous_opener = getattr(urllib.request, "_opener", None)
    with ExitStack() as stack:
        stack.enter_context(mock.patch.dict("os.environ", proxy_env))
        stack.enter_context(
            mock.patch.object(HTTPAdapter, "send", _patched_send(log, HTTPAdapter.send))
        )
        stack.enter_context(
            mock.patch.object(
                urllib3.PoolManager,
                "urlopen",
                _patched_pool_urlopen(log, urllib3.PoolManager.urlopen),
            )
        )
        stack.enter_context(
            mock.patch.object(
                socket, "getaddrinfo", _guarded_getaddrinfo(log, allowed, socket.getaddrinfo)
            )
        )
        # built after the environment is patched, so its ProxyHandler sees the closed proxy
        urllib.request.install_opener(urllib.request.build_opener(_OfflineHandler(log)))
        stack.callback(urllib.request.install_opener, previous_opener)
        yield log


@contextmanager
def fresh_schema_caches() -> Iterator[None]:
    """Empty the validators' process-wide schema caches before and after, so that every run
    fetches (through `offline_schemas`) and validates the same way whatever ran before."""
    import pystac.validation
    from stac_validator.utilities import fetch_and_parse_schema

    fetch_and_parse_schema.cache_clear()  # type: ignore[attr-defined]
    with mock.patch.object(pystac.validation.RegisteredValidator, "_validator", None):
        try:
            yield
        finally:
            fetch_and_parse_schema.cache_clear()  # type: ignore[attr-defined]


# -- validation from the mirror alone ------------------------------------------------------
STAC_CORE_SCHEMAS = {
    "Feature": "item-spec/json-schema/item.json",
    "Collection": "collection-spec/json-schema/collection.json",
    "Catalog": "catalog-spec/json-schema/catalog.json",
}


def _mirrored_resource(url: str) -> Any:
    import json

    from referencing import Resource
    from referencing.exceptions import NoSuchResource

    path = mirrored_schema(url)
    if path is None:
        raise NoSuchResource(ref=url)
    return Resource.from_contents(json.loads(path.read_text()))


def schemas_of(document: dict[str, Any]) -> list[str]:
    """The schema URLs a STAC document declares: its core schema and its extensions."""
    kind = STAC_CORE_SCHEMAS[document["type"]]
    core = f"https://schemas.stacspec.org/v{document['stac_version']}/{kind}"
    return [core, *document.get("stac_extensions", [])]


def validate_offline(document: dict[str, Any]) -> list[str]:
    """Validate a STAC document against its core schema and every extension it declares,
    reading schemas (and every `$ref` they make) from the mirror only.

    This is the check that does not depend on which installed package happens to bundle
    which schema (pystac 1.16 split its schemas into `pystac-ext-*` packages, after which
    the validators stopped fetching some of them): a declared schema that is not mirrored
    raises `LookupError`, a document that breaks one raises `jsonschema.ValidationError`.
    Returns the schema URLs applied."""
    from jsonschema import Draft7Validator, validators
    from referencing import Registry
    from referencing.exceptions import NoSuchResource

    registry: Registry[Any] = Registry(retrieve=_mirrored_resource)
    applied = schemas_of(document)
    for url in applied:
        try:
            schema = registry.get_or_retrieve(url).value.contents
        except NoSuchResource as error:
            raise LookupError(f"schema not in tests/data/schemas: {url}") from error
        validator_class = validators.validator_for(schema, default=Draft7Validator)
        validator_class(schema, registry=registry).validate(document)
    return applied
