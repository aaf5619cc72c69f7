"""A receiver of back-channel logouts and events for the delivery tests: a real HTTP server on 127.0.0.1 that
counts what it receives, answers ``status`` (200 unless told otherwise), and can be stopped and started again on
the same port (a receiver that is down, then back)."""

from __future__ import annotations

import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

import requests

from broker.core.outbox import OutgoingMessage
from broker.delivery.http import HttpPost, requests_post

LOOPBACK = "127.0.0.1"
FORM = "application/x-www-form-urlencoded"


class Receiver:
    """``received``: every body posted, in order; ``accepted``: how often each body was answered 2xx."""

    def __init__(self) -> None:
        self.status = 200
        self.received: list[str] = []
        self.accepted: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/backchannel-logout"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
                with receiver._lock:
                    receiver.received.append(body)
                    status = receiver.status
                    if 200 <= status < 300:
                        receiver.accepted[body] += 1
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        server = ThreadingHTTPServer((LOOPBACK, self.port), Handler)
        server.daemon_threads = True
        self.port = server.server_port
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Down: connections to the port are refused until ``start`` again."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            if self._thread is not None:
                self._thread.join(timeout=10)
            self._server = self._thread = None

    def __enter__(self) -> Receiver:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def message(receiver: Receiver, jti: str, client: str = "permits") -> OutgoingMessage:
    """A back-channel logout message whose body names its ``jti`` (what the receiver counts)."""
    return OutgoingMessage(receiver=client, jti=jti, kind="backchannel-logout", url=receiver.url,
                           body=f"logout_token=token-{client}-{jti}", content_type=FORM)


def loopback_post() -> HttpPost:
    """The real HTTP POST, ignoring the environment's proxy settings (the receiver is on 127.0.0.1)."""
    session = requests.Session()
    session.trust_env = False
    return requests_post(session, timeout=(2.0, 5.0))
