"""IdP metadata sources for the console's flow tests (issue 19): a federation feed served over HTTP on 127.0.0.1,
signed with the test federation's key (``tests.registry.aggregate``) and pinned in
``metadata/federations/<name>.toml``; an operator file in ``metadata/saml-idp``; and restarting the broker on the
same folder, as a rolling restart does after a key rotation step."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests
from flask import Flask

from broker.app import close_app, create_app
from broker.config.settings import load_settings
from tests.flows.federation import Federation
from tests.flows.portal_support import services
from tests.registry.aggregate import entity_id, make_aggregate, session_material

__all__ = ["Feed", "add_feed", "add_file_source", "entity_id", "federation_certificate", "restarts", "served_feed",
           "signed_aggregate", "signed_document"]


class Feed(ThreadingHTTPServer):
    """Serves ``document`` at /md.xml, or ``status`` when it is not 200."""

    document = b""
    status = 200

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/md.xml"


class _Handler(BaseHTTPRequestHandler):
    server: Feed

    def do_GET(self) -> None:
        body = self.server.document if self.server.status == 200 else b"broken"
        self.send_response(self.server.status)
        self.send_header("Content-Type", "application/samlmetadata+xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def served_feed() -> Iterator[Feed]:
    server = Feed(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def signed_aggregate(count: int, names: dict[int, tuple[str, str]] | None = None) -> bytes:
    """``count`` IdPs signed by the test federation, valid for two days from now."""
    material = session_material()
    return make_aggregate(count, material.federation, material.certs, names=names,
                          valid_until=datetime.now(UTC) + timedelta(days=2))


def signed_document(count: int, *, valid_for: timedelta = timedelta(days=2), tamper: bool = False) -> bytes:
    """``count`` IdPs signed by the test federation, valid for ``valid_for`` from now (negative: expired);
    ``tamper`` changes the first IdP's name after signing (the signature no longer holds)."""
    material = session_material()
    return make_aggregate(count, material.federation, material.certs, valid_until=datetime.now(UTC) + valid_for,
                          tamper=tamper)


def federation_certificate() -> bytes:
    """The test federation's signing certificate (PEM), the one its documents are signed with."""
    return session_material().federation.cert_pem


def add_feed(federation: Federation, feed: Feed, name: str = "city") -> str:
    """Pin the federation's certificate and configure the feed; the directory takes it up (as its background
    rescan does). The source's name."""
    certs = federation.folder / "certs" / "federations"
    certs.mkdir(parents=True, exist_ok=True)
    (certs / f"{name}.pem").write_bytes(session_material().federation.cert_pem)
    folder = federation.folder / "metadata" / "federations"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.toml").write_text(f'url = "{feed.url}"\nsigning_cert_file = "certs/federations/{name}.pem"\n')
    _rescan(federation)
    return f"federation/{name}"


def add_file_source(federation: Federation, name: str = "self") -> str:
    """The broker's own IdP metadata as an operator file (unsigned copy trusted by the operator); its name."""
    document = requests.get(federation.url + "/saml2/idp/metadata", timeout=10).text
    folder = federation.folder / "metadata" / "saml-idp"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.xml").write_text(document)
    _rescan(federation)
    return f"saml-idp/{name}"


def _rescan(federation: Federation) -> None:
    directory = services(federation).idp_directory
    assert directory is not None
    directory.rescan()


@contextmanager
def restarts(federation: Federation) -> Iterator[Callable[[], None]]:
    """``restart()``: a new instance on the same folder (what a rolling restart does) replaces the running one;
    the instances started here are closed at the end (the federation closes its first one itself)."""
    started: list[Flask] = []

    def restart() -> None:
        old = federation.app
        federation.app = create_app(load_settings(federation.folder / "broker.toml", environ={}))
        federation.broker_late.target = federation.app
        started.append(federation.app)
        if old in started:
            started.remove(old)
            close_app(old)

    try:
        yield restart
    finally:
        for app in started:
            close_app(app)
