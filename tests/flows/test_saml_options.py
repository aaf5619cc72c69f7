"""What a SAML app can ask for: upstream choice (discovery page, idp_hint, IDPList), NameID formats,
and the pages' security headers."""

from __future__ import annotations

import json
from pathlib import Path

import lxml.html  # type: ignore[import-untyped]
from saml2.saml import NAMEID_FORMAT_EMAILADDRESS, NAMEID_FORMAT_TRANSIENT
from saml2.samlp import IDPEntry, IDPList, Scoping

from broker.app import SESSION_COOKIE_HTTPS, close_app, create_app
from broker.config.settings import load_settings
from tests.flows.federation import Federation, running_federation, saml_status
from tests.peers.browser import Browser
from tests.peers.servers import closed_port_url


def _second_upstream(federation: Federation) -> None:
    (federation.folder / "metadata" / "upstreams" / "city.json").write_text(json.dumps({
        "name": "city", "protocol": "oidc", "issuer": closed_port_url(), "client_id": "broker",
        "display_name": "City ID", "client_secret_file": "certs/op-client.secret",
    }))
    federation.app.extensions["broker"].registry.reload()


def test_discovery_page_lists_upstreams_and_the_choice_signs_in(federation: Federation, browser: Browser) -> None:
    _second_upstream(federation)
    request_id, page = federation.login(browser)

    assert page.status_code == 200 and "/login/" in page.url
    document = lxml.html.fromstring(page.text)
    assert document.findtext(".//h1") == "Choose how to sign in"
    buttons = [b.text_content().strip() for b in document.iter("button")]
    assert sorted(buttons) == ["Sign in with City ID", "Sign in with Test OpenID provider"]
    assert federation.provider.hits("authorize") == 0

    op_form = next(i for i, b in enumerate(buttons) if "Test OpenID" in b)
    answer = browser.submit(page, form=op_form)
    response = federation.sps["sp1"].parse(browser.form_fields(answer)["SAMLResponse"], request_id)
    assert response.get_identity()["mail"] == ["anna@example.org"]


def test_idp_hint_skips_discovery(federation: Federation, browser: Browser) -> None:
    _second_upstream(federation)
    _, location = federation.sps["sp1"].redirect_request()
    page = browser.get(location + "&idp_hint=op")

    assert "SAMLResponse" in browser.form_fields(page)
    assert not any("/login/" in u and "/upstream/" not in u for u in browser.history)


def test_idp_list_scoping_by_issuer_picks_the_upstream(federation: Federation, browser: Browser) -> None:
    _second_upstream(federation)
    scoping = Scoping(idp_list=IDPList(idp_entry=[IDPEntry(provider_id=federation.op.url)]))
    request_id, page = federation.login(browser, scoping=scoping)

    assert federation.sps["sp1"].parse(browser.form_fields(page)["SAMLResponse"], request_id) is not None
    assert federation.provider.hits("authorize") == 1


def test_transient_name_id_changes_every_login(federation: Federation, browser: Browser) -> None:
    sp = federation.sps["sp1"]
    first_id, page = federation.login(browser, nameid_format=NAMEID_FORMAT_TRANSIENT)
    first = sp.parse(browser.form_fields(page)["SAMLResponse"], first_id).get_subject()
    second_id, page = federation.login(browser, nameid_format=NAMEID_FORMAT_TRANSIENT)
    second = sp.parse(browser.form_fields(page)["SAMLResponse"], second_id).get_subject()

    assert first.format == second.format == NAMEID_FORMAT_TRANSIENT
    assert first.text != second.text


def test_unsupported_name_id_format_is_refused(federation: Federation, browser: Browser) -> None:
    _, page = federation.login(browser, nameid_format=NAMEID_FORMAT_EMAILADDRESS)

    assert saml_status(browser.form_fields(page)) == (
        "urn:oasis:names:tc:SAML:2.0:status:Requester", "urn:oasis:names:tc:SAML:2.0:status:InvalidNameIDPolicy")
    assert federation.accounts() == 0


def test_pages_carry_security_headers(federation: Federation, browser: Browser) -> None:
    _second_upstream(federation)
    _, discovery = federation.login(browser)
    for page in (discovery, browser.get(federation.url + "/"), browser.get(federation.url + "/login/nope")):
        headers = page.headers
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        assert "script-src 'self'" in headers["Content-Security-Policy"]
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Referrer-Policy"] == "same-origin"
        assert headers["Cache-Control"] == "no-store"
    cookie = next(c for c in browser.session.cookies if c.name == SESSION_COOKIE_HTTPS)
    assert cookie.has_nonstandard_attr("HttpOnly")


def test_city_theme_replaces_templates_and_brand(tmp_path: Path, key_folder: Path) -> None:
    folder = tmp_path
    theme = folder / "theme" / "templates"
    theme.mkdir(parents=True)
    (theme / "error.html").write_text('{% extends "base.html" %}{% block main %}<h1>Helsinki help desk</h1>'
                                      "<p>{{ reference }}</p>{% endblock %}")
    with running_federation(folder / "instance", key_folder, f"sqlite:///{folder / 'b.db'}") as fed:
        config = fed.folder / "broker.toml"
        config.write_text(config.read_text().replace(
            "[broker]", f'[broker]\nbrand_name = "Helsinki sign-in"\ntheme_dir = "{folder / "theme"}"'))
        app = create_app(load_settings(config, environ={}))
        try:
            page = app.test_client().get("/login/unknown")
        finally:
            close_app(app)
    text = page.get_data(as_text=True)
    assert page.status_code == 400
    assert "Helsinki help desk" in text and "Helsinki sign-in" in text
