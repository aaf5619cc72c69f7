"""Logs never contain tokens, assertions, codes, secrets or personal data (only the pseudonymous account id),
at any level, whatever library logs them: a whole login and the common attacks, captured at DEBUG."""

from __future__ import annotations

import base64
import io
import json
import logging
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from werkzeug.serving import make_server

from broker.demo.oidc_provider_config import Mischief
from tests.flows.federation import CITIZEN, Federation, make_keys, running_federation
from tests.peers.browser import Browser

JWT = re.compile(r"eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}")


@pytest.fixture
def federation(tmp_path: Path) -> Iterator[Federation]:
    with running_federation(tmp_path / "instance", make_keys(tmp_path / "keys"),
                            f"sqlite:///{tmp_path / 'b.db'}") as running:
        yield running


def test_no_secrets_tokens_or_personal_data_in_any_log(federation: Federation,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    secrets_on_disk = [(federation.folder / "certs" / n).read_text().strip()
                       for n in ("op-client.secret", "session.secret", "pairwise.secret")]
    with caplog.at_level(logging.DEBUG), Browser() as browser:
        _, page = federation.login(browser)
        saml_response = browser.form_fields(page)["SAMLResponse"]
        callback = next(u for u in browser.history if "/upstream/oidc/" in u)
        browser.get(callback)  # replayed callback: refused, logged
        federation.provider.mischief = Mischief(claim_overrides={"nonce": "x"})
        with Browser() as other:
            federation.login(other)  # refused ID token, logged
        _, destination, fields = federation.sps["sp1"].post_request()
        tampered = base64.b64encode(base64.b64decode(fields["SAMLRequest"]).replace(b"ID=", b"ID=x", 1))
        browser.post(destination, {**fields, "SAMLRequest": tampered.decode()})  # bad signature, logged
    # The test peers log in this process too: the demo provider's server (authlib), the test servers'
    # access log (werkzeug; the broker's own runs through access_log, tested below) and the test browser's
    # HTTP client (urllib3, which the broker also uses but only ever with secrets in headers and bodies).
    peers = ("authlib", "werkzeug", "urllib3")
    text = "\n".join(f"{r.name}: {r.getMessage()}" for r in caplog.records if not r.name.startswith(peers))
    assert "login ok account=" in text, "the test must see the broker's own log lines"

    code = callback.split("code=")[1].split("&")[0]
    forbidden = {
        "e-mail": str(CITIZEN.claims["email"]), "family name": str(CITIZEN.claims["family_name"]),
        "upstream subject": str(CITIZEN.claims["sub"]), "authorization code": code,
        "SAML Response": saml_response[:40], "SAML Assertion": "Assertion ID=",
        "PKCE verifier": "code_verifier", "SAML AuthnRequest": "AuthnRequest ",
        **{f"secret {i}": s for i, s in enumerate(secrets_on_disk)},
    }
    leaks = [name for name, value in forbidden.items() if value and value in text]
    assert leaks == [], f"the logs contain: {leaks}"
    assert not JWT.search(text), "a JWT (ID or access token) is in the logs"


def test_json_lines_carry_no_secrets_tokens_or_personal_data(tmp_path: Path) -> None:
    """The same with ``log_format = "json"``: the JSON lines (messages, extras, tracebacks) leak nothing either."""
    from broker.logging_setup import JsonFormatter

    root = logging.getLogger()
    level = root.level
    buffer = io.StringIO()
    try:
        with running_federation(tmp_path / "instance", make_keys(tmp_path / "keys"), f"sqlite:///{tmp_path / 'b.db'}",
                                extra_config='log_format = "json"\n') as federation, Browser() as browser:
            handler = next(h for h in root.handlers if isinstance(h.formatter, JsonFormatter))
            assert isinstance(handler, logging.StreamHandler)
            handler.setStream(buffer)
            root.setLevel(logging.DEBUG)
            _, page = federation.login(browser)
            saml_response = browser.form_fields(page)["SAMLResponse"]
            callback = next(u for u in browser.history if "/upstream/oidc/" in u)
            browser.get(callback)  # replayed callback: refused, logged
            federation.provider.mischief = Mischief(claim_overrides={"nonce": "x"})
            with Browser() as other:
                federation.login(other)  # refused ID token, logged
            secrets_on_disk = [(federation.folder / "certs" / n).read_text().strip()
                               for n in ("op-client.secret", "session.secret", "pairwise.secret")]
    finally:
        for handler in [h for h in root.handlers if isinstance(h.formatter, JsonFormatter)]:
            root.removeHandler(handler)
        root.setLevel(level)
    lines = [json.loads(line) for line in buffer.getvalue().splitlines()]
    peers = ("authlib", "werkzeug", "urllib3")
    text = "\n".join(json.dumps(line) for line in lines if not line["logger"].startswith(peers))
    assert "login ok account=" in text and '"request_id": "' in text and '"login_id": "' in text

    code = callback.split("code=")[1].split("&")[0]
    forbidden = {
        "e-mail": str(CITIZEN.claims["email"]), "family name": str(CITIZEN.claims["family_name"]),
        "upstream subject": str(CITIZEN.claims["sub"]), "authorization code": code,
        "SAML Response": saml_response[:40], "SAML Assertion": "Assertion ID=", "PKCE verifier": "code_verifier",
        **{f"secret {i}": s for i, s in enumerate(secrets_on_disk)},
    }
    leaks = [name for name, value in forbidden.items() if value and value in text]
    assert leaks == [], f"the JSON logs contain: {leaks}"
    assert not JWT.search(text), "a JWT (ID or access token) is in the JSON logs"


def test_development_server_logs_paths_without_query_strings(caplog: pytest.LogCaptureFixture) -> None:
    from flask import Flask

    from broker.web.ops.access_log import PathOnlyRequestHandler
    from tests.peers.servers import LOOPBACK

    app = Flask("quiet")
    app.get("/upstream/oidc/op/callback")(lambda: "ok")
    server = make_server(LOOPBACK, 0, app, threaded=True, request_handler=PathOnlyRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with caplog.at_level(logging.INFO, "werkzeug"):
            requests.get(f"http://{LOOPBACK}:{server.server_port}/upstream/oidc/op/callback?code=SECRETCODE&state=S",
                         timeout=5)
    finally:
        server.shutdown()
        server.server_close()
    lines = [r.getMessage() for r in caplog.records if r.name == "werkzeug"]
    assert any("/upstream/oidc/op/callback" in line for line in lines)
    assert not any("SECRETCODE" in line for line in lines)
