"""`cubestac serve` under the stall attacks of issue 14, for real: a `cubestac serve`
process on 127.0.0.1, raw sockets that send half a request and wait, bodies that never end,
a 13 MB `intersects`. Each time an ordinary request is answered while the attack runs,
and the attacking connections are closed by the server.
"""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import orjson
import pytest
from sqlalchemy import URL

from tests.helpers import free_port

pytestmark = pytest.mark.slow

HEADER_TIMEOUT_S = 2
BODY_TIMEOUT_S = 2
MAX_CONNECTIONS = 200
ATTACKERS = 300  # more than the cap: the old `limit_concurrency` answered 503 to everyone
PARTIAL_HEAD = b"GET /search HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "


@contextmanager
def cubestac_serve(db_url: URL, tmp_path: Path, **env: str) -> Iterator[str]:
    """`cubestac serve` in its own process; yields its base URL."""
    port = free_port()
    environment = {
        **os.environ,
        "DATABASE_URL": db_url.render_as_string(hide_password=False),
        "CUBESTAC_SERVER__HEADER_TIMEOUT_S": str(HEADER_TIMEOUT_S),
        "CUBESTAC_SERVER__BODY_TIMEOUT_S": str(BODY_TIMEOUT_S),
        "CUBESTAC_SERVER__MAX_CONNECTIONS": str(MAX_CONNECTIONS),
        **env,
    }
    environment.pop("CUBESTAC_API_KEY", None)
    log = (tmp_path / "serve.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-c", "from cubestac.cli import main; main()", "serve"]
        + ["--port", str(port)],
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                if httpx.get(f"{base}/_mgmt/ping", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "cubestac serve did not start"
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    return sock


def _read_until_closed(sock: socket.socket, seconds: float) -> bytes | None:
    """What the server sent before closing, or None if it had not closed after `seconds`."""
    sock.settimeout(seconds)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except TimeoutError:
        return None
    except ConnectionResetError:
        pass
    return received


def _read_response(sock: socket.socket) -> tuple[bytes, bytes]:
    """One response with a Content-Length: its head and its body."""
    sock.settimeout(30)
    received = b""
    while b"\r\n\r\n" not in received:
        received += sock.recv(65536)
    head, _, body = received.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ", 1)[1].split(b"\r\n", 1)[0])
    while len(body) < length:
        body += sock.recv(65536)
    return head, body


def _port(base: str) -> int:
    return int(base.rsplit(":", 1)[1])


def _open_partial_heads(port: int, count: int) -> list[socket.socket]:
    sockets = []
    for _ in range(count):
        sock = _connect(port)
        try:
            sock.sendall(PARTIAL_HEAD)
        except OSError:  # already dropped at the cap: that is the server's right
            pass
        sockets.append(sock)
    return sockets


def test_partial_headers_on_more_connections_than_the_cap_do_not_stall_others(
    fresh_db_url: URL, tmp_path: Path
) -> None:
    with cubestac_serve(fresh_db_url, tmp_path) as base, ExitStack() as stack:
        attackers = _open_partial_heads(_port(base), ATTACKERS)
        for sock in attackers:
            stack.callback(sock.close)
        # the attack is in place: everyone else is still served, promptly
        with httpx.Client(base_url=base, timeout=30) as http:
            assert http.get("/_mgmt/ping").status_code == 200
            assert http.get("/search", params={"limit": 1}).status_code == 200
        # and the server closes every attacking connection once its head deadline passes
        answers = [_read_until_closed(sock, HEADER_TIMEOUT_S + 30) for sock in attackers]
        assert all(answer is not None for answer in answers), "a partial head stayed open"
        timed_out = [answer for answer in answers if answer]
        assert timed_out, "no connection got its 408"
        for answer in timed_out:
            assert answer.startswith(b"HTTP/1.1 408 "), answer
            assert b"CUBESTAC_SERVER__HEADER_TIMEOUT_S" in answer


def test_a_head_sent_a_byte_at_a_time_is_cut_off_at_the_deadline(
    fresh_db_url: URL, tmp_path: Path
) -> None:
    """Slowloris proper: bytes keep coming, but the head never completes."""
    with cubestac_serve(fresh_db_url, tmp_path) as base:
        sock = _connect(_port(base))
        sock.sendall(b"GET /search HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        closed = False
        for _ in range(200):  # far longer than the deadline
            try:
                sock.sendall(b"X")
            except OSError:
                closed = True
                break
            sock.settimeout(0.2)
            try:
                sock.recv(65536, socket.MSG_PEEK)  # a 408, or the end of the stream
            except TimeoutError:
                continue
            closed = True
            break
        assert closed, "the server kept reading a head that never ended"
        answer = _read_until_closed(sock, 10)
        assert answer is not None and (answer == b"" or answer.startswith(b"HTTP/1.1 408 "))
        sock.close()


def test_a_body_that_never_ends_gets_408_and_others_are_served(
    fresh_db_url: URL, tmp_path: Path
) -> None:
    with cubestac_serve(fresh_db_url, tmp_path) as base:
        sock = _connect(_port(base))
        sock.sendall(
            b"POST /search HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b'Content-Length: 1000\r\n\r\n{"limit": '
        )
        assert httpx.get(f"{base}/search?limit=1", timeout=30).status_code == 200
        answer = _read_until_closed(sock, BODY_TIMEOUT_S + 30)
        sock.close()
        assert answer is not None, "the server waited for the body for ever"
        assert answer.startswith(b"HTTP/1.1 408 "), answer
        assert b"CUBESTAC_SERVER__BODY_TIMEOUT_S" in answer


def test_a_connection_that_sends_nothing_is_closed(fresh_db_url: URL, tmp_path: Path) -> None:
    with cubestac_serve(fresh_db_url, tmp_path) as base:
        sock = _connect(_port(base))
        answer = _read_until_closed(sock, HEADER_TIMEOUT_S + 30)
        sock.close()
        assert answer is not None and answer.startswith(b"HTTP/1.1 408 "), answer


def test_a_head_over_the_size_limit_is_431(fresh_db_url: URL, tmp_path: Path) -> None:
    with cubestac_serve(
        fresh_db_url, tmp_path, CUBESTAC_SERVER__MAX_HEAD_BYTES=str(16 * 1024)
    ) as base:
        sock = _connect(_port(base))
        try:
            sock.sendall(b"GET /search HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 65536)
        except OSError:
            pass
        answer = _read_until_closed(sock, 30)
        sock.close()
        assert answer is not None and answer.startswith(b"HTTP/1.1 431 "), answer
        assert b"CUBESTAC_SERVER__MAX_HEAD_BYTES" in answer
        assert httpx.get(f"{base}/_mgmt/ping", timeout=30).status_code == 200


def test_an_oversized_chunked_body_is_413(fresh_db_url: URL, tmp_path: Path) -> None:
    """As for a declared Content-Length, not a 400 after the whole body was read."""
    limit = 64 * 1024
    with cubestac_serve(
        fresh_db_url,
        tmp_path,
        CUBESTAC_API__MAX_BODY_BYTES=str(limit),
        CUBESTAC_SERVER__KEEP_ALIVE_S="1",
    ) as base:
        sock = _connect(_port(base))
        sock.sendall(
            b"POST /search HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b" " * 16 * 1024
        for _ in range(12):  # 192 KiB, three times the limit
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        sock.sendall(b"0\r\n\r\n")
        head, body = _read_response(sock)
        assert head.startswith(b"HTTP/1.1 413 "), head
        assert orjson.loads(body)["code"] == "RequestBodyTooLarge"
        # the rest of the body was read and dropped; then the connection idles out
        assert _read_until_closed(sock, 30) == b""
        sock.close()


def _ring(vertices: int) -> list[list[float]]:
    points = [
        [
            round(10 + math.cos(2 * math.pi * i / vertices), 6),
            round(50 + math.sin(2 * math.pi * i / vertices), 6),
        ]
        for i in range(vertices)
    ]
    return [*points, points[0]]


def _pings_while(base: str, running: threading.Event) -> list[int]:
    statuses = []
    with httpx.Client(base_url=base, timeout=30) as http:
        while running.is_set():
            statuses.append(http.get("/search", params={"limit": 1}).status_code)
            statuses.append(http.get("/_mgmt/ping").status_code)
    return statuses


def big_intersects() -> bytes:
    """The issue's case: 600k vertices, 13 MB."""
    return orjson.dumps({"intersects": {"type": "Polygon", "coordinates": [_ring(600_000)]}})


def many_arrays() -> bytes:
    """4M empty arrays in a member nobody reads: 12 MB that cost seconds to parse."""
    return b'{"junk":[' + b",".join([b"[]"] * 4_000_000) + b"]}"


@pytest.mark.parametrize(
    ("make_payload", "setting"),
    [
        (big_intersects, "CUBESTAC_API__MAX_GEOMETRY_VERTICES"),
        (many_arrays, "CUBESTAC_API__MAX_SEARCH_BODY_VALUES"),
    ],
)
def test_a_huge_search_body_is_refused_while_others_are_served(
    fresh_db_url: URL, tmp_path: Path, make_payload: Callable[[], bytes], setting: str
) -> None:
    payload = make_payload()
    assert 10 * 1024 * 1024 < len(payload) < 16 * 1024 * 1024  # under the body limit
    with cubestac_serve(fresh_db_url, tmp_path) as base:
        running = threading.Event()
        running.set()
        statuses: list[int] = []
        pinger = threading.Thread(target=lambda: statuses.extend(_pings_while(base, running)))
        pinger.start()
        try:
            response = httpx.post(
                f"{base}/search",
                content=payload,
                headers={"Content-Type": "application/json"},
                timeout=120,
            )
        finally:
            running.clear()
            pinger.join()
        assert response.status_code == 400, response.text
        assert setting in response.json()["description"]
        assert statuses and set(statuses) == {200}
