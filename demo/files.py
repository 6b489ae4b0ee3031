"""The demo's upstream: its world served over HTTP on 127.0.0.1, as a data provider would.

Harvesting and cube building read inputs over HTTP exactly as they would from a remote
server: GDAL (`/vsicurl/`) and fsspec read byte ranges, and the `files` source globs an
HTML directory listing. Starlette's StaticFiles gives ranges, ETag/Last-Modified and path
confinement; directory listings are added here (Python's `http.server` lists folders but
answers no ranges, which GDAL needs), and CORS headers, so that STAC Browser can draw the COGs.

The server runs in a child process (`python -m demo.files FOLDER PORT`): GDAL holds
the GIL while it opens a file over HTTP, so a server thread inside the reading process could
never answer it.
"""

from __future__ import annotations

import html
import os
import socket
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import anyio
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

START_TIMEOUT_S = 30.0


class ListedFiles(StaticFiles):
    """StaticFiles that answers a folder with an HTML list of links (fsspec's HTTP glob
    reads those); links are absolute paths, so they resolve with or without a final `/`."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        if scope["method"] in ("GET", "HEAD"):
            try:
                full_path, found = await anyio.to_thread.run_sync(self.lookup_path, path)
            except (OSError, ValueError):
                found = None
            if found is not None and stat.S_ISDIR(found.st_mode):
                return HTMLResponse(_listing(full_path, scope["path"]))
        return await super().get_response(path, scope)


def _listing(folder: str, url_path: str) -> str:
    base = url_path.rstrip("/")
    links = []
    for name in sorted(os.listdir(folder)):
        slash = "/" if os.path.isdir(os.path.join(folder, name)) else ""
        href = f"{base}/{quote(name)}{slash}"
        links.append(f'<li><a href="{html.escape(href)}">{html.escape(name)}{slash}</a></li>')
    return f"<!doctype html><html><body><ul>{''.join(links)}</ul></body></html>"


def files_app(folder: Path) -> Starlette:
    """The world's files, read-only, CORS-open to any origin as the API is: STAC Browser
    (another origin) draws the COGs with range requests, so `Range` may be sent and
    `Content-Range`/`Accept-Ranges` read back."""
    return Starlette(
        routes=[Mount("/", ListedFiles(directory=folder), name="files")],
        middleware=[
            Middleware(
                CORSMiddleware,
                allow_origins=["*"],
                allow_methods=["GET", "HEAD", "OPTIONS"],
                allow_headers=["Range", "If-None-Match", "If-Modified-Since"],
                expose_headers=["Content-Range", "Content-Length", "Accept-Ranges", "ETag"],
                max_age=600,
            )
        ],
    )


@contextmanager
def serve_files(folder: Path, port: int, log: Path) -> Iterator[str]:
    """Serve `folder` on 127.0.0.1:`port` in a child process (its messages go to `log`);
    yields the base URL and stops the process on exit (also on Ctrl-C)."""
    check_free(port, "--files-port")  # else whoever holds the port would answer the wait
    command = [sys.executable, "-m", "demo.files", str(folder), str(port)]
    base = f"http://127.0.0.1:{port}"
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    try:
        _wait_until_up(process, base, log)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def check_free(port: int, option: str) -> None:
    """Fail early, naming the option to change, when `port` on 127.0.0.1 is taken."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as error:
            raise OSError(
                f"port {port} on 127.0.0.1 is in use ({error.strerror}; another demo?): "
                f"stop it or choose another with {option}"
            ) from error


def _wait_until_up(process: subprocess.Popen[bytes], base: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if process.poll() is not None:
            error = log.read_text(errors="replace").strip().splitlines()[-1:]
            raise OSError(f"the demo file server did not start on {base}: {' '.join(error)}")
        try:
            with urllib.request.urlopen(f"{base}/", timeout=1):
                return
        except (urllib.error.URLError, OSError):
            if time.monotonic() > deadline:
                raise OSError(f"the demo file server did not answer on {base}") from None
            time.sleep(0.1)


def main() -> None:
    import uvicorn

    folder, port = Path(sys.argv[1]), int(sys.argv[2])
    uvicorn.run(
        files_app(folder), host="127.0.0.1", port=port, log_level="warning", access_log=False
    )


if __name__ == "__main__":
    main()
