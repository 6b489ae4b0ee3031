"""A static file server on 127.0.0.1 that lists folders (for `files` globs) and answers
byte ranges (for chunk reads, as nginx or S3 do; the standard library's handler ignores
`Range`), and logs the paths it served."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


class RangeHandler(SimpleHTTPRequestHandler):
    """The standard library's handler, plus `Range: bytes=a-b` / `bytes=-n` on files."""

    served: list[str]

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        return None

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self.served.append(self.path)
        path = Path(self.translate_path(self.path))
        wanted = self.headers.get("Range", "")
        if not wanted.startswith("bytes=") or not path.is_file():
            super().do_GET()
            return
        body = path.read_bytes()
        first, _, last = wanted.removeprefix("bytes=").partition("-")
        start = int(first) if first else len(body) - int(last)
        end = min(int(last), len(body) - 1) if first and last else len(body) - 1
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {start}-{end}/{len(body)}")
        self.send_header("Content-Length", str(end - start + 1))
        self.end_headers()
        self.wfile.write(body[start : end + 1])


@contextmanager
def range_server(directory: Path, served: list[str] | None = None) -> Iterator[str]:
    """Serve `directory`; yields the base URL. GET paths are appended to `served`."""
    handler = type("Handler", (RangeHandler,), {"served": served if served is not None else []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(directory)))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
