"""An unauthenticated write is refused before its body is read: a client without the key
cannot make the API parse (up to 16 MiB of) JSON it will refuse anyway."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from sqlalchemy import URL

from api import create_app
from tests.conftest import SavepointDatabase
from tests.helpers import TEST_API_KEY, live_server, make_settings

WRITES = [
    ("POST", "/collections"),
    ("PUT", "/collections/c"),
    ("DELETE", "/collections/c"),
    ("POST", "/collections/c/items"),
    ("PATCH", "/collections/c/items/i"),
    ("POST", "/collections/c/bulk_items"),
]


async def call_without_reading_the_body(app: Any, method: str, path: str, auth: bytes | None):
    """Drive the ASGI app directly; fail if it asks for the request body."""
    headers = [(b"content-type", b"application/json"), (b"content-length", b"16000000")]
    if auth is not None:
        headers.append((b"authorization", auth))
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "headers": headers, "client": ("127.0.0.1", 1),
        "server": ("testserver", 80), "state": {},
    }  # fmt: skip
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        raise AssertionError("the body was read before the key was checked")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


@pytest.mark.parametrize(("method", "path"), WRITES)
@pytest.mark.parametrize("auth", [None, b"Bearer wrong", b"Basic dGVzdA=="])
async def test_a_write_without_the_key_is_refused_unread(
    session_db_url: URL, database: SavepointDatabase, method: str, path: str, auth: bytes | None
) -> None:
    app = create_app(make_settings(session_db_url), database=database)
    sent = await call_without_reading_the_body(app, method, path, auth)
    assert sent[0]["status"] == 401
    assert (b"www-authenticate", b"Bearer") in sent[0]["headers"]
    assert b"CUBESTAC_API_KEY" in sent[1]["body"]


@pytest.mark.slow
def test_a_live_server_answers_401_before_the_body_arrives(fresh_db_url: URL) -> None:
    """Over a real socket: headers announcing 16 MB, no body sent; the 401 comes at once."""
    with live_server(create_app(make_settings(fresh_db_url))) as base:
        host, port = base.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(
                b"POST /collections/c/bulk_items HTTP/1.1\r\nHost: x\r\n"
                b"Content-Type: application/json\r\nContent-Length: 16000000\r\n\r\n"
            )
            head = sock.recv(4096)
    assert head.startswith(b"HTTP/1.1 401"), head[:100]


async def test_the_key_still_lets_writes_through(
    session_db_url: URL, database: SavepointDatabase
) -> None:
    app = create_app(make_settings(session_db_url), database=database)
    auth = f"Bearer {TEST_API_KEY}".encode()
    with pytest.raises(AssertionError, match="body was read"):
        await call_without_reading_the_body(app, "POST", "/collections", auth)
