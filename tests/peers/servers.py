"""Run WSGI apps as real HTTP(S) servers on 127.0.0.1 for tests.

Each server listens on a port the OS chooses and serves from a daemon thread, so a test talks to it over a
real socket exactly as a browser or an HTTP client in production would; with ``tls`` it speaks https with
the test run's throw-away CA (``tests.peers.tls``).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server

from tests.peers.tls import ThrowawayCa

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

LOOPBACK = "127.0.0.1"


class LateApp:
    """A WSGI app whose target is set after its server is running.

    An OpenID provider must know its issuer URL (and so its port) when it is created; start the server on a
    ``LateApp``, build the app with ``server.url``, then set ``late.target = app``. Until then it answers 503.
    """

    def __init__(self) -> None:
        self.target: WsgiApp | None = None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if self.target is None:
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"app not attached yet"]
        return self.target(environ, start_response)


@dataclass
class RunningServer:
    """A server started by ``serve``; ``url`` has no trailing slash."""

    url: str
    port: int
    _server: BaseWSGIServer = field(repr=False)
    _thread: threading.Thread = field(repr=False)

    def stop(self) -> None:
        """Stop serving and close the listening socket; safe to call twice."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=10)
        self._server.server_close()

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def serve(app: WsgiApp, tls: ThrowawayCa | None = None) -> RunningServer:
    """Serve ``app`` on 127.0.0.1 with an OS-chosen port in a daemon thread (threaded: one thread per request);
    over https with ``tls``'s server certificate when given."""
    server = make_server(LOOPBACK, 0, app, threaded=True)
    if tls is not None:
        # werkzeug's own ssl_context would do the TLS handshake in the accepting thread, where one client that
        # connects and stays silent (a browser's preconnect) stops the server; here each request's thread does it
        context = tls.server_context()
        server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
        server.ssl_context = context  # werkzeug reads it for wsgi.url_scheme
    port = server.server_port
    # a short poll interval makes stop() quick: shutdown waits for the serving loop's next poll
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=f"wsgi-{port}",
                              daemon=True)
    thread.start()
    scheme = "http" if tls is None else "https"
    return RunningServer(url=f"{scheme}://{LOOPBACK}:{port}", port=port, _server=server, _thread=thread)


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (a port the OS just handed out and then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        port = probe.getsockname()[1]
    return f"http://{LOOPBACK}:{port}"
