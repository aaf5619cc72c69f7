"""A reverse proxy that sends each request to the next backend in turn: no sticky sessions.

Headers (cookies included) and bodies pass through unchanged both ways; redirects are not followed, so the
browser sees one origin and every hop of a login may land on another instance. ``log`` records which backend
served what.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import requests
from werkzeug.wrappers import Request

#: hop-by-hop headers (RFC 9110 §7.6.1) and the ones the proxy sets itself
_SKIP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
                   "transfer-encoding", "upgrade", "content-length"})


@dataclass(frozen=True)
class Hop:
    backend: int
    method: str
    path: str
    status: int
    location: str | None


class RoundRobin:
    def __init__(self, backends: list[str]) -> None:
        self.backends = backends
        self.log: list[Hop] = []
        #: optional: (request, the round-robin choice) -> the backend to use instead
        self.route: Callable[[Request, int], int] | None = None
        self._next = 0
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        with self._lock:
            choice = self._next % len(self.backends)
            self._next += 1
        if self.route is not None:
            choice = self.route(request, choice)
        target = self.backends[choice] + (environ.get("RAW_URI") or request.full_path)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _SKIP}
        upstream = requests.request(request.method, target, headers=headers, data=request.get_data(),
                                    allow_redirects=False, stream=True, timeout=30)
        body = upstream.raw.read(decode_content=False)
        out = [(k, v) for k, v in upstream.raw.headers.items() if k.lower() not in _SKIP]
        out.append(("Content-Length", str(len(body))))
        with self._lock:
            self.log.append(Hop(choice, request.method, request.path, upstream.status_code,
                                upstream.headers.get("Location")))
        start_response(f"{upstream.status_code} {upstream.reason}", out)
        return [body]
