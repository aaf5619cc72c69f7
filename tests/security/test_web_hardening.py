"""Web hardening: every page the broker serves carries the security headers, every form that posts to the
broker carries a CSRF token (and no form that posts to another party leaks it), HSTS and Secure cookies on
an https deployment, proxies trusted only when configured."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import lxml.html  # type: ignore[import-untyped]
import pytest
import requests

from broker.app import close_app, create_app
from broker.config.settings import load_settings
from tests.flows.federation import Federation, make_keys, running_federation
from tests.peers.browser import Browser
from tests.peers.servers import closed_port_url

#: protocol endpoints that receive cross-site POSTs by design and authenticate them otherwise
PROTOCOL_ENDPOINTS = ("/saml2/idp/sso/post", "/upstream/oidc/")


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_keys(tmp_path_factory.mktemp("keys"))


@pytest.fixture
def federation(tmp_path: Path, keys: Path) -> Iterator[Federation]:
    with running_federation(tmp_path / "instance", keys, f"sqlite:///{tmp_path / 'b.db'}") as running:
        (running.folder / "metadata" / "upstreams" / "city.json").write_text(json.dumps({
            "name": "city", "protocol": "oidc", "issuer": closed_port_url(), "client_id": "broker",
            "client_secret_file": "certs/op-client.secret"}))
        running.app.extensions["broker"].registry.reload()
        yield running


def _op_form(discovery: requests.Response) -> int:
    forms = lxml.html.document_fromstring(discovery.text).forms
    return next(i for i, f in enumerate(forms) if (f.action or "").endswith("/upstream/op"))


def _pages(federation: Federation, browser: Browser) -> list[requests.Response]:
    """Every kind of HTML page a person can meet: home, discovery, SAML answer, error pages."""
    _, discovery = federation.login(browser)
    answer = browser.submit(discovery, form=_op_form(discovery))
    return [
        browser.get(federation.url + "/"),
        discovery,
        answer,  # the SAML HTTP-POST page to the app
        browser.get(federation.url + "/login/not-a-handle"),  # 400
        browser.get(federation.url + "/no/such/page"),  # 404
        browser.post(federation.url + "/", {}),  # 405
        browser.post(federation.url + "/saml2/idp/sso/post", {"SAMLRequest": "not saml"}),  # 400
    ]


def test_every_html_page_carries_the_security_headers(federation: Federation) -> None:
    with Browser() as browser:
        pages = _pages(federation, browser)
    assert {p.status_code for p in pages} == {200, 400, 404, 405}
    for page in pages:
        assert page.headers["Content-Type"].startswith("text/html"), page.url
        csp = page.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp
        assert page.headers["X-Frame-Options"] == "DENY"
        assert page.headers["X-Content-Type-Options"] == "nosniff"
        # the full Referer only to the broker itself, none to another origin (broker.web.http.same_origin)
        assert page.headers["Referrer-Policy"] == "same-origin"
        assert page.headers["Cache-Control"] == "no-store"
        assert page.headers["Strict-Transport-Security"].startswith("max-age=")  # the broker's URL is https
        assert "<script>" not in page.text, "inline script would need 'unsafe-inline'"


#: every template of the broker's pages
TEMPLATES = Path(__file__).resolve().parents[2] / "broker" / "web" / "templates"
_FORM = re.compile(r"<form\b([^>]*)>(.*?)</form>", re.IGNORECASE | re.DOTALL)
_TOKEN_FIELD = '<input type="hidden" name="csrf_token" value="{{ csrf_token() }}">'
#: the templates whose forms post to another party (a protocol answer to an app or a provider): never a token
TO_OTHER_PARTIES = {"post_form.html", "logout_frames.html"}  # a protocol message to an app


def _template_forms() -> Iterator[tuple[str, str, str]]:
    """(template, form's opening tag attributes, form body) of every ``<form method="post">`` in the templates."""
    for template in sorted(TEMPLATES.glob("*.html")):
        for m in _FORM.finditer(template.read_text(encoding="utf-8")):
            if re.search(r"""method\s*=\s*["']?post""", m.group(1), re.IGNORECASE):
                yield template.name, m.group(1), m.group(2)


def test_every_form_carries_a_csrf_token(federation: Federation) -> None:
    """Every POST form of every template carries the token, unless it posts to another party (then it must not:
    the token stays in the broker) or to a view the app checks for its origin only (no session, no token);
    and every form of the pages a person meets, as rendered, does the same."""
    csrf = federation.app.extensions["csrf"]
    origin_only: set[str] = getattr(csrf, "origin_only_views", set())
    checked = 0
    for template, attributes, body in _template_forms():
        if template in TO_OTHER_PARTIES:
            assert "csrf_token" not in body, f"{template}: the CSRF token must not leave the broker"
            continue
        endpoint = re.search(r"""url_for\(\s*['"]([\w.]+)['"]""", attributes)
        if endpoint is not None:
            view = federation.app.view_functions[endpoint.group(1)]
            if f"{view.__module__}.{view.__name__}" in origin_only:
                continue
        checked += 1
        assert _TOKEN_FIELD in body, f"{template}: the form <form{attributes}> has no CSRF token"
    assert checked >= 10, f"only {checked} forms found in {TEMPLATES}"

    with Browser() as browser:
        pages = _pages(federation, browser)
    own_forms = 0
    for page in pages:
        for form in lxml.html.document_fromstring(page.text or "<p/>").forms:
            target = urljoin(page.url, form.action or page.url)
            fields = dict(form.form_values())
            to_broker = urlsplit(target).netloc == urlsplit(federation.url).netloc
            if to_broker and not any(urlsplit(target).path.startswith(p) for p in PROTOCOL_ENDPOINTS):
                own_forms += 1
                assert fields.get("csrf_token"), f"form to {target} on {page.url} has no CSRF token"
            else:
                assert "csrf_token" not in fields, f"the CSRF token must not leave the broker ({target})"
    assert own_forms >= 2, "the discovery page's forms were not checked"


def test_post_without_csrf_token_is_refused_and_consumes_nothing(federation: Federation) -> None:
    with Browser() as browser:
        _, discovery = federation.login(browser)
        form = lxml.html.document_fromstring(discovery.text).forms[_op_form(discovery)]
        action = urljoin(discovery.url, form.action)

        # from the broker's own page (so the origin check passes), without the token
        forged = browser.post(action, {}, initiator=discovery.url)
        assert forged.request.headers["Origin"] == federation.url
        assert forged.status_code == 400 and 'class="reference"' in forged.text
        assert federation.provider.hits("authorize") == 0

        answer = browser.submit(discovery, form=_op_form(discovery))  # still works: the handle was not used up
    assert browser.is_self_submitting(answer) and federation.accounts() == 1


def _https_app(folder: Path, trusted_proxies: int = 0) -> Any:
    config = folder / "broker.toml"
    text = config.read_text().replace('base_url = "http://127.0.0.1', 'base_url = "https://127.0.0.1')
    config.write_text(text.replace("[broker]", f"[broker]\ntrusted_proxies = {trusted_proxies}", 1))
    return create_app(load_settings(config, environ={}))


def test_https_deployment_sends_hsts_and_secure_cross_site_cookies(federation: Federation) -> None:
    app: Any = _https_app(federation.folder)
    try:
        page = app.test_client().get("/", base_url="https://127.0.0.1")
        assert page.headers["Strict-Transport-Security"].startswith("max-age=")
        # what Flask puts on the session cookie: SameSite=None so the SAML POST binding (a cross-site POST)
        # carries it, and that only ever with Secure
        interface = app.session_interface
        assert interface.get_cookie_secure(app) and interface.get_cookie_httponly(app)
        assert interface.get_cookie_samesite(app) == "None"
    finally:
        close_app(app)
