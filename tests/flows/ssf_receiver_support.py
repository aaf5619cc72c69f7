"""An SSF receiver for the flow tests: a real HTTP server on 127.0.0.1 taking pushed SETs (RFC 8935 §2: 202
Accepted), and the receiver's check of a SET (RFC 8417, SSF 1.0 §4), written from the specifications with joserfc,
independently of the broker's code."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from joserfc import jwt
from joserfc.jwk import KeySet
from joserfc.jws import extract_compact

from tests.delivery.receiver_support import loopback_post as loopback_post  # the worker's POST, no proxy

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class Pushed:
    content_type: str
    authorization: str | None
    body: str


class SsfReceiver:
    """``pushed``: every request received, in order; each is answered 202 (RFC 8935 §2.2)."""

    def __init__(self) -> None:
        self.pushed: list[Pushed] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/ssf/events"

    def start(self) -> SsfReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
                with receiver._lock:
                    receiver.pushed.append(Pushed(self.headers.get("Content-Type", ""),
                                                  self.headers.get("Authorization"), body))
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        server.daemon_threads = True
        self.port = server.server_port
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def __enter__(self) -> SsfReceiver:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)




def validate_set(token: str, jwks: dict[str, Any], issuer: str, audience: str,
                 algorithm: str = "RS256") -> dict[str, Any]:
    """The claims of ``token`` once it passes as an SSF receiver checks a SET; ``AssertionError`` or a joserfc error
    otherwise. ``jwks`` is the transmitter's published JWK Set (its ``jwks_uri``)."""
    header = extract_compact(token.encode("ascii")).headers()
    assert header["typ"] == "secevent+jwt"  # RFC 8417 §2.3, SSF 1.0 §4.1.1
    assert header["alg"] == algorithm
    assert header["kid"] in {key["kid"] for key in jwks["keys"]}
    claims: dict[str, Any] = dict(jwt.decode(token, KeySet.import_key_set({"keys": jwks["keys"]}),
                                             algorithms=[algorithm]).claims)
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": issuer}, aud={"essential": True, "value": audience},
        iat={"essential": True}, jti={"essential": True},
    ).validate(claims)
    assert isinstance(claims["jti"], str) and len(claims["jti"]) >= 16
    assert "sub" not in claims and "exp" not in claims  # SSF 1.0 §4.1.2, §4.1.7
    events = claims.get("events")
    assert isinstance(events, dict) and len(events) == 1  # SSF 1.0 §4.1.8: exactly one event
    assert all(isinstance(payload, dict) for payload in events.values())
    sub_id = claims.get("sub_id")  # SSF 1.0 §3, RFC 9493
    assert isinstance(sub_id, dict) and sub_id.get("format") in ("iss_sub", "opaque")
    if sub_id["format"] == "iss_sub":
        assert sub_id["iss"] == issuer and isinstance(sub_id["sub"], str) and sub_id["sub"]
    else:
        assert isinstance(sub_id["id"], str) and sub_id["id"]
    return claims
