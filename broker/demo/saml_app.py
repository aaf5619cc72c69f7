"""DEMO SAML application: a real pysaml2 service provider that signs citizens in through the broker.

It exists so a newcomer can click through a whole login on localhost; it is clearly marked as a demo
and is never started unless ``[demo] enabled = true``. It signs its AuthnRequests and checks the
broker's signed Response like any city app would.
"""

from __future__ import annotations

import html
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from flask import Flask, Response, redirect, request, session
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.client import Saml2Client
from saml2.config import SPConfig
from saml2.metadata import create_metadata_string
from saml2.saml import NAMEID_FORMAT_PERSISTENT
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

from broker.saml.attributes import converters
from broker.saml.xmlsec_backend import install_in_process_backend


@dataclass(frozen=True)
class DemoAppSettings:
    base_url: str  # e.g. http://127.0.0.1:5002
    key_file: Path
    cert_file: Path
    broker_metadata_url: str

    @property
    def entity_id(self) -> str:
        return self.base_url + "/metadata"

    @property
    def acs_url(self) -> str:
        return self.base_url + "/acs"


def sp_config(settings: DemoAppSettings, idp_metadata_xml: str | None) -> Any:
    conf = SPConfig()
    conf.load({
        "entityid": settings.entity_id,
        "key_file": str(settings.key_file),
        "cert_file": str(settings.cert_file),
        "xmlsec_binary": shutil.which("xmlsec1") or "xmlsec1",
        "metadata": {"inline": [idp_metadata_xml]} if idp_metadata_xml else {},
        "service": {"sp": {
            # pysaml2 reads these only inside the role section; at the top level they are ignored
            "signing_algorithm": SIG_RSA_SHA256,
            "digest_algorithm": DIGEST_SHA256,
            "name": "DEMO city app",
            # what citizens see on the broker's pages (SAML Metadata UI §2.1.1), never the entity id
            "ui_info": {"display_name": [{"text": "DEMO city app", "lang": "en"}]},
            "endpoints": {"assertion_consumer_service": [(settings.acs_url, BINDING_HTTP_POST)]},
            "authn_requests_signed": True,
            "want_response_signed": True,
            "want_assertions_signed": True,
            "allow_unsolicited": False,
            "name_id_format": [NAMEID_FORMAT_PERSISTENT],
            "required_attributes": ["mail", "givenName", "sn"],
            "optional_attributes": ["displayName"],
        }},
    })
    conf.attribute_converters = converters()
    return conf


def metadata_xml(settings: DemoAppSettings) -> str:
    """The demo app's SP metadata, for ``metadata/saml-sp/`` (written by ``broker init --demo``)."""
    return bytes(create_metadata_string(None, config=sp_config(settings, None), valid=24 * 365)).decode()


def create_demo_app(settings: DemoAppSettings) -> Flask:
    app = Flask("broker_demo_app")
    app.secret_key = secrets.token_bytes(32)
    app.config.update(SESSION_COOKIE_NAME="demo_app_session", SESSION_COOKIE_SAMESITE="Lax")
    clients: list[Any] = []

    def client() -> Any:
        if not clients:
            idp_xml = requests.get(settings.broker_metadata_url, timeout=10).text
            sp = Saml2Client(config=sp_config(settings, idp_xml))
            install_in_process_backend(sp, allow_sha1=False)
            clients.append(sp)
        return clients[0]

    def page(title: str, body: str) -> Response:
        return Response(
            "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>" + html.escape(title)
            + " (DEMO)</title></head><body><p><strong>DEMO application: for trying the broker only."
            "</strong></p><main><h1>" + html.escape(title) + "</h1>" + body + "</main></body></html>",
            mimetype="text/html")

    @app.get("/")
    def home() -> Response:
        return page("DEMO city app", "<form method='get' action='/login'><button type='submit'>"
                    "Sign in</button></form>")

    @app.get("/login")
    def login() -> Any:
        request_id, info = client().prepare_for_authenticate(binding=BINDING_HTTP_REDIRECT, sigalg=SIG_RSA_SHA256)
        session["outstanding"] = {request_id: "/"}
        location = dict(info["headers"])["Location"]
        return redirect(location)

    @app.post("/acs")
    def acs() -> Response:
        outstanding = session.pop("outstanding", {})
        try:
            response = client().parse_authn_request_response(request.form["SAMLResponse"], BINDING_HTTP_POST,
                                                             outstanding=outstanding)
        except Exception as exc:
            return page("Sign-in failed", "<p>" + html.escape(type(exc).__name__) + "</p>")
        if response is None:
            return page("Sign-in failed", "<p>No valid response.</p>")
        rows = "".join(f"<tr><th scope='row'>{html.escape(k)}</th><td>{html.escape(', '.join(v))}</td></tr>"
                       for k, v in sorted(response.get_identity().items()))
        subject = html.escape(response.get_subject().text)
        return page("Signed in", f"<p>Your identifier at this app: <code>{subject}</code></p>"
                    f"<table><caption>Attributes the broker released</caption>{rows}</table>"
                    "<p><a href='/'>Back</a></p>")

    @app.get("/metadata")
    def metadata() -> Response:
        return Response(metadata_xml(settings), mimetype="application/samlmetadata+xml")

    return app
