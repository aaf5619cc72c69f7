"""A small HTTP/1.1 server on 127.0.0.1 that keeps connections alive and counts them.

The test servers of ``tests.peers.servers`` (werkzeug's) answer ``Connection: close``, so a client's
connection reuse cannot be seen there; this one answers fixed bodies by path, keeps each connection open for
the next request, and counts connections (``connections``) and requests (``requests``). Used by
``test_http_pool`` and ``bench/http_client_bench.py``.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

from tests.peers.servers import LOOPBACK
from tests.peers.tls import ThrowawayCa


class KeepAliveServer:
    """Serves ``routes`` (path -> JSON body) over HTTP/1.1 on a daemon thread; with keep-alive unless
    ``keep_alive`` is False (then every answer says ``Connection: close``, as werkzeug's do)."""

    def __init__(self, routes: Mapping[str, bytes], tls: ThrowawayCa | None = None, *,
                 keep_alive: bool = True) -> None:
        self.routes = dict(routes)
        self.keep_alive = keep_alive
        self.connections = 0
        self.requests = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((LOOPBACK, 0), _handler_for(self))
        self._server.daemon_threads = True
        if tls is not None:
            self._server.socket = tls.server_context().wrap_socket(self._server.socket, server_side=True,
                                                                  do_handshake_on_connect=False)
        port = self._server.server_address[1]
        self.url = f"{'https' if tls else 'http'}://{LOOPBACK}:{port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"keepalive-{port}", daemon=True)
        self._thread.start()

    def counted(self, *, connection: bool) -> None:
        with self._lock:
            if connection:
                self.connections += 1
            else:
                self.requests += 1

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> KeepAliveServer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def _handler_for(owner: KeepAliveServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive unless the client asks to close
        disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms wait for a delayed ACK

        def setup(self) -> None:
            super().setup()
            owner.counted(connection=True)

        def do_GET(self) -> None:
            self._answer()

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self._answer()

        def _answer(self) -> None:
            owner.counted(connection=False)
            body = owner.routes.get(self.path.split("?")[0])
            status = 200 if body is not None else 404
            body = body if body is not None else b'{"error": "not_found"}'
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            if not owner.keep_alive:
                self.send_header("Connection", "close")  # http.server then closes after this answer
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler
