"""A small threaded HTTP file server on 127.0.0.1 for tests that read files over the network.

It serves the files of one folder with ``Range`` support (206, ``Content-Range``, 416), and has what the
tests of remote reading need to provoke: switches that make it ignore ``Range`` and send whole files (and
leave out their size), a
Hub-like redirect (``/OWNER/NAME/resolve/REV/FILE`` and ``/resolve/FILE`` answer 302 to ``/cdn/FILE``,
optionally on another server, that is another origin), a route that needs a token, routes that answer a
chosen status, a 404 for anything else, and a count of the body bytes it sent, so a test can prove that
only a header was fetched. Every request is recorded.

Use it as a context manager: ``with serve_folder(path) as server: fetch(server.url("model.gguf"))``.
The standard library's server is enough here and, unlike a mock transport, it exercises real sockets,
redirects and connections closed halfway through a body.
"""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

__all__ = ["RangeServer", "Request", "serve_folder"]

_CHUNK = 1 << 16
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_RESOLVE = re.compile(r"^/(?:[^/]+/[^/]+/resolve/[^/]+|resolve)/(?P<file>.+)$")
_PRIVATE = re.compile(r"^/private/(?P<file>.+)$")
_STATUS = re.compile(r"^/status/(?P<status>\d{3})(?:/(?P<code>[A-Za-z]+))?/.*$")
_FILE = re.compile(r"^/(?:cdn/)?(?P<file>.+)$")


@dataclass(frozen=True)
class Request:
    """One request as the server saw it."""

    method: str
    path: str
    range: str | None
    authorization: str | None
    status: int


class RangeServer:
    """The running server: its address, switches and what it has seen (safe to read from tests)."""

    def __init__(self, root: Path, *, ignore_range: bool = False, hide_size: bool = False, token: str = "let-me-in",
                 redirect_base: str | None = None) -> None:
        self.root = Path(root)
        self.ignore_range = ignore_range
        self.hide_size = hide_size  # whole files without Content-Length (the body ends when the connection does)
        self.token = token
        self.redirect_base = redirect_base  # where /resolve/ redirects to; this server when None
        self.requests: list[Request] = []
        self._bytes_sent = 0
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._busy = 0
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), name="range-server",
                                        daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def url(self, path: str) -> str:
        """The URL of ``path`` (a file name under the folder, or a route such as ``private/x.gguf``)."""
        return f"{self.base_url}/{quote(path.lstrip('/'))}"

    @property
    def bytes_sent(self) -> int:
        """Body bytes handed to the network so far (headers not counted)."""
        with self._lock:
            return self._bytes_sent

    def gets(self) -> list[Request]:
        with self._lock:
            return [request for request in self.requests if request.method == "GET"]

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Wait until no answer is being sent, so ``bytes_sent`` is final (a client that stops reading
        leaves the server writing until it notices the closed connection)."""
        with self._idle:
            if not self._idle.wait_for(lambda: self._busy == 0, timeout):
                raise TimeoutError("the server is still sending")

    def reset(self) -> None:
        with self._lock:
            self._bytes_sent = 0
            self.requests.clear()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def _enter(self) -> None:
        with self._lock:
            self._busy += 1

    def _leave(self) -> None:
        with self._idle:
            self._busy -= 1
            self._idle.notify_all()

    def _record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)

    def _count(self, n_bytes: int) -> None:
        with self._lock:
            self._bytes_sent += n_bytes


@contextmanager
def serve_folder(root: Path, *, ignore_range: bool = False, hide_size: bool = False, token: str = "let-me-in",
                 redirect_base: str | None = None) -> Iterator[RangeServer]:
    """Serve ``root`` until the block ends (the switches can also be flipped on the server meanwhile)."""
    server = RangeServer(root, ignore_range=ignore_range, hide_size=hide_size, token=token,
                         redirect_base=redirect_base)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _handler_for(server: RangeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            # A small send buffer, so a client that stops reading stops the count close to where it stopped.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _CHUNK)

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_HEAD(self) -> None:
            self._serve(body=False)

        def do_GET(self) -> None:
            self._serve(body=True)

        def _serve(self, *, body: bool) -> None:
            server._enter()
            try:
                self._route(body)
            finally:
                server._leave()

        def _route(self, body: bool) -> None:
            path = unquote(urlsplit(self.path).path)
            if match := _RESOLVE.match(path):
                location = f"{server.redirect_base or ''}/cdn/{quote(match['file'])}"
                self._answer(302, {"Location": location}, b"Found", body)
            elif match := _STATUS.match(path):
                headers = {"X-Error-Code": match["code"]} if match["code"] else {}
                self._answer(int(match["status"]), headers, b"no", body)
            elif match := _PRIVATE.match(path):
                if self.headers.get("Authorization") != f"Bearer {server.token}":
                    self._answer(401, {}, b"Unauthorized", body)
                else:
                    self._send_file(match["file"], body)
            elif (match := _FILE.match(path)) is not None:
                self._send_file(match["file"], body)
            else:
                self._answer(404, {}, b"Not found", body)

        def _send_file(self, name: str, body: bool) -> None:
            target = (server.root / name).resolve()
            if server.root.resolve() not in target.parents or not target.is_file():
                self._answer(404, {}, b"Not found", body)
                return
            size = target.stat().st_size
            first, last = 0, size - 1
            status = 200
            asked = self.headers.get("Range")
            if asked and not server.ignore_range:
                match = _RANGE.match(asked.strip())
                if match is None or not (match[1] or match[2]):
                    self._answer(416, {"Content-Range": f"bytes */{size}"}, b"", body)
                    return
                if match[1]:
                    first = int(match[1])
                    last = min(int(match[2]), size - 1) if match[2] else size - 1
                else:  # the last N bytes
                    first = max(size - int(match[2]), 0)
                if first >= size or first > last:
                    self._answer(416, {"Content-Range": f"bytes */{size}"}, b"", body)
                    return
                status = 206
            headers = {"Content-Length": str(last - first + 1), "Accept-Ranges": "bytes",
                       "Content-Type": "application/octet-stream"}
            if status == 206:
                headers["Content-Range"] = f"bytes {first}-{last}/{size}"
            elif server.hide_size:
                headers = {"Content-Type": "application/octet-stream", "Connection": "close"}
                self.close_connection = True
            self._head(status, headers)
            if not body:
                return
            try:
                with target.open("rb") as handle:
                    handle.seek(first)
                    left = last - first + 1
                    while left > 0:
                        chunk = handle.read(min(_CHUNK, left))
                        if not chunk:
                            break
                        self.wfile.write(chunk)
                        server._count(len(chunk))
                        left -= len(chunk)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client had enough, as a header reader should

        def _answer(self, status: int, headers: dict[str, str], content: bytes, body: bool) -> None:
            self._head(status, {**headers, "Content-Length": str(len(content))})
            if body:  # never a body on HEAD: it would corrupt the next answer on this connection
                try:
                    self.wfile.write(content)
                    server._count(len(content))
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

        def _head(self, status: int, headers: dict[str, str]) -> None:
            server._record(Request(self.command, self.path, self.headers.get("Range"),
                                   self.headers.get("Authorization"), status))
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()

    return Handler
