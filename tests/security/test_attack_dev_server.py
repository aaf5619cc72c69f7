"""The development server (``broker run``: werkzeug with ``broker.web.ops.access_log.PathOnlyRequestHandler``)
against a raw socket: an oversized request line gets a plain 414, and control characters in the request line
reach the access log escaped (issue 15, items 7 and 8)."""

from __future__ import annotations

import io
import logging
import socket
import threading
from collections.abc import Iterator

import pytest
from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

from broker.logging_setup import install
from broker.web.ops.access_log import PathOnlyRequestHandler
from tests.peers.servers import LOOPBACK

#: http.server reads at most 65,536 bytes of request line plus one (``handle_one_request``)
LINE_LIMIT = 65536


@pytest.fixture
def server() -> Iterator[BaseWSGIServer]:
    install("text")  # what ``broker run`` gets from create_app
    app = Flask("dev-server")
    app.get("/")(lambda: "ok")
    running = make_server(LOOPBACK, 0, app, threaded=True, request_handler=PathOnlyRequestHandler)
    thread = threading.Thread(target=running.serve_forever, daemon=True)
    thread.start()
    try:
        yield running
    finally:
        running.shutdown()
        running.server_close()


@pytest.fixture
def access_log() -> Iterator[io.StringIO]:
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    werkzeug = logging.getLogger("werkzeug")
    werkzeug.addHandler(handler)
    level = werkzeug.level
    werkzeug.setLevel(logging.INFO)
    try:
        yield buffer
    finally:
        werkzeug.removeHandler(handler)
        werkzeug.setLevel(level)


def _exchange(server: BaseWSGIServer, data: bytes) -> bytes:
    with socket.create_connection((LOOPBACK, server.server_port), timeout=10) as connection:
        connection.sendall(data)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    return answer


def test_a_request_line_over_64_kib_gets_a_plain_414(server: BaseWSGIServer, access_log: io.StringIO,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    # exactly what the server reads (limit + 1 bytes, no line end): nothing is left unread, so the server's
    # close is a clean FIN and the 414 cannot be lost to a connection reset
    answer = _exchange(server, (b"GET /" + b"a" * LINE_LIMIT)[:LINE_LIMIT + 1])
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 414 "), answer[:200]
    assert b"Content-Type: text/plain" in head and body == b"414 Request-URI Too Long\n"
    output = capsys.readouterr()
    assert "Traceback" not in output.err + output.out + access_log.getvalue()
    assert '"- - -" 414' in access_log.getvalue()
    assert _exchange(server, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").startswith(b"HTTP/1.1 200 ")  # still serving


def test_control_characters_in_the_request_line_reach_the_access_log_escaped(server: BaseWSGIServer,
                                                                             access_log: io.StringIO) -> None:
    answer = _exchange(server, b"GET\x1b[2J /a\x1b[31mb\x7f HTTP/1.1\r\nHost: x\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 404 ")
    text = access_log.getvalue()
    assert '"GET\\x1b[2J /a\\x1b[31mb\\x7f HTTP/1.1" 404' in text, text
    assert "\x1b" not in text and "\x7f" not in text
