"""The logout endpoints of test apps, as a real HTTP server on 127.0.0.1 (issue 18): ``POST /back/<client>`` takes
a back-channel logout (OpenID Connect Back-Channel Logout 1.0 §2.5: a form with ``logout_token``) and
``GET /front/<client>`` a front-channel logout (Front-Channel Logout 1.0 §3: the frame's URL, ``iss`` and
``sid``). Each call is recorded per client, in order."""

from __future__ import annotations

import threading
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import parse_qs, urlsplit

LOOPBACK = "127.0.0.1"


class LogoutEndpoints:
    """``back[client]``: the logout tokens posted; ``front[client]``: the query of each frame loaded."""

    def __init__(self) -> None:
        self.back: defaultdict[str, list[str]] = defaultdict(list)
        self.front: defaultdict[str, list[dict[str, list[str]]]] = defaultdict(list)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    def back_uri(self, client: str) -> str:
        return f"{self.url}/back/{client}"

    def front_uri(self, client: str) -> str:
        return f"{self.url}/front/{client}"

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://{LOOPBACK}:{self._server.server_port}"

    def __enter__(self) -> LogoutEndpoints:
        endpoints = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
                form = parse_qs(body)
                parts = self.path.split("/")
                if len(parts) != 3 or parts[1] != "back" or list(form) != ["logout_token"]:
                    self._answer(400)
                    return
                with endpoints._lock:
                    endpoints.back[parts[2]].append(form["logout_token"][0])
                self._answer(200)

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                parts = url.path.split("/")
                if len(parts) != 3 or parts[1] != "front":
                    self._answer(404)
                    return
                with endpoints._lock:
                    endpoints.front[parts[2]].append(parse_qs(url.query))
                self._answer(200)

            def _answer(self, status: int) -> None:
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.send_header("Cache-Control", "no-store")  # Front-Channel Logout 1.0 §3
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        server.daemon_threads = True
        self._server = server
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
