"""Cross-origin form posts (``broker.web.http.same_origin``): every state-changing POST must come from a page of
the broker's own origin, the origin of ``base_url``, by ``Origin`` or, without it, a same-origin
``Referer``; the CSRF token is checked as well. The attacks carry a valid CSRF token of the victim's session
(as if it had leaked), so only the origin check stands between them and the upstream; each test would pass
a forged request if the check were removed.

The broker is served over https with the test run's throw-away CA (``tests.flows.federation``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import lxml.html  # type: ignore[import-untyped]  # lxml ships no type information
import pytest
import requests
from sqlalchemy import select

from broker.app import close_app, create_app
from broker.config.settings import load_settings
from broker.storage import create_engine_for
from broker.storage.tables import AuditEventRow
from broker.web.http.same_origin import origin_of, problem
from tests.flows.federation import Federation, make_keys, running_federation
from tests.peers.browser import Browser
from tests.peers.servers import closed_port_url


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_keys(tmp_path_factory.mktemp("keys"))


@pytest.fixture
def federation(tmp_path: Path, keys: Path) -> Iterator[Federation]:
    """Two upstreams, so a login stops at the discovery page, whose choice is a CSRF-protected POST."""
    with running_federation(tmp_path / "instance", keys, f"sqlite:///{tmp_path / 'b.db'}") as running:
        (running.folder / "metadata" / "upstreams" / "city.json").write_text(json.dumps({
            "name": "city", "protocol": "oidc", "issuer": closed_port_url(), "client_id": "broker",
            "client_secret_file": "certs/op-client.secret"}))
        running.app.extensions["broker"].registry.reload()
        yield running


def _discovery(federation: Federation, browser: Browser) -> tuple[requests.Response, int, str, dict[str, str]]:
    """The discovery page, the index of the form choosing "op", its absolute action and its fields (with the
    session's CSRF token)."""
    _, page = federation.login(browser)
    assert page.url.startswith("https://") and page.headers["Referrer-Policy"] == "same-origin"
    forms = lxml.html.document_fromstring(page.text).forms
    index = next(i for i, f in enumerate(forms) if (f.action or "").endswith("/upstream/op"))
    fields = browser.form_fields(page, index)
    assert fields.get("csrf_token")
    return page, index, urljoin(page.url, forms[index].action), fields


def _refusals(federation: Federation) -> list[str]:
    engine = create_engine_for(federation.database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(select(AuditEventRow.reason).where(AuditEventRow.kind == "request-refused"))
            return [str(r) for r in rows.scalars()]
    finally:
        engine.dispose()


def _other_origin(url: str, **change: str) -> str:
    parts = urlsplit(url)
    return f"{change.get('scheme', parts.scheme)}://{change.get('netloc', parts.netloc)}"


#: the headers a request carries, made from a URL of the broker
Headers = Callable[[str], dict[str, str]]
ATTACKS = [
    pytest.param(lambda u: {"Origin": "https://attacker.example"}, "foreign-origin", id="foreign-origin"),
    pytest.param(lambda u: {"Origin": "null"}, "origin-null", id="origin-null"),
    pytest.param(lambda u: {}, "no-origin", id="neither-origin-nor-referer"),
    pytest.param(lambda u: {"Referer": "https://attacker.example/login/x"}, "foreign-referer",
                 id="referer-from-another-origin"),
    pytest.param(lambda u: {"Origin": _other_origin(u, scheme="http")}, "foreign-origin", id="same-host-over-http"),
    pytest.param(lambda u: {"Origin": _other_origin(u, netloc="127.0.0.1:1")}, "foreign-origin", id="another-port"),
    pytest.param(lambda u: {"Origin": _other_origin(u) + "/login"}, "foreign-origin", id="origin-with-a-path"),
    pytest.param(lambda u: {"Origin": "null", "Referer": u + "/"}, "origin-null", id="null-origin-own-referer"),
]


@pytest.mark.parametrize(("headers", "kind"), ATTACKS)
def test_a_cross_origin_post_is_refused_even_with_the_csrf_token(federation: Federation, headers: Headers,
                                                                kind: str) -> None:
    with Browser() as victim:
        page, index, action, fields = _discovery(federation, victim)
        sent = headers(federation.url)
        forged = victim.session.post(action, data=fields, headers=sent, allow_redirects=False, timeout=10)

        assert forged.status_code == 400 and 'class="reference"' in forged.text
        assert "not sent from a page of this service" in forged.text
        assert federation.provider.hits("authorize") == 0
        assert f"cross-origin ({kind}): login.go_upstream" in _refusals(federation)
        answer = victim.submit(page, form=index)  # the person's own click still works: nothing was used up
    assert victim.is_self_submitting(answer) and federation.accounts() == 1


def test_the_host_header_does_not_decide_the_origin(federation: Federation) -> None:
    """A client (or a proxy) may send any Host; the origin is the one of the configured ``base_url``."""
    with Browser() as victim:
        _, _, action, fields = _discovery(federation, victim)
        port = urlsplit(federation.url).port
        # the cookie by hand: the cookie jar would go by the Host header and send none
        cookies = "; ".join(f"{c.name}={c.value}" for c in victim.session.cookies)
        forged = victim.session.post(action, data=fields, allow_redirects=False, timeout=10, headers={
            "Host": f"localhost:{port}", "Origin": f"https://localhost:{port}", "Cookie": cookies})
        assert "csrf" not in forged.text.lower(), "the session and its token were sent"
    assert forged.status_code == 400 and federation.provider.hits("authorize") == 0


def test_the_token_is_still_required_from_the_brokers_own_origin(federation: Federation) -> None:
    with Browser() as victim:
        page, index, action, fields = _discovery(federation, victim)
        del fields["csrf_token"]
        refused = victim.post(action, fields, initiator=page.url, follow=False)

        assert refused.request.headers["Origin"] == _other_origin(federation.url)  # the origin check passed
        assert refused.status_code == 400 and federation.provider.hits("authorize") == 0
        assert "csrf: login.go_upstream" in _refusals(federation)
        assert victim.is_self_submitting(victim.submit(page, form=index))


@pytest.mark.parametrize("headers", [
    pytest.param(lambda page: {"Origin": _other_origin(page)}, id="origin"),
    pytest.param(lambda page: {"Referer": page}, id="same-origin-referer-without-origin"),
])
def test_a_post_from_the_brokers_own_page_is_accepted(federation: Federation, headers: Headers) -> None:
    with Browser() as person:
        page, _, action, fields = _discovery(federation, person)
        sent = headers(page.url)
        answer = person.session.post(action, data=fields, headers=sent, allow_redirects=False, timeout=10)
    assert answer.status_code in (302, 303) and not answer.headers["Location"].startswith(federation.url)


def test_protocol_endpoints_take_cross_origin_posts_by_design(federation: Federation) -> None:
    """The SAML POST binding comes from the app's page (``Origin: null`` under its policy, or the app's
    origin): neither the CSRF token nor the origin check applies; the request's signature does."""
    _, destination, fields = federation.sps["sp1"].post_request()
    with Browser() as person:
        for origin in ("null", "https://app.example"):
            page = person.session.post(destination, data=fields, headers={"Origin": origin}, timeout=10)
            assert page.status_code == 200 and "/login/" in page.url  # on to the discovery page
            assert "not sent from a page of this service" not in page.text
    assert not [r for r in _refusals(federation) if r.startswith("cross-origin")]


@pytest.mark.parametrize(("origin", "referer", "expected"), [
    ("https://broker.example", None, None),
    ("HTTPS://Broker.Example:443", None, None),  # RFC 6454 §4: scheme and host lower-cased, default port
    ("https://broker.example:8443", None, "foreign-origin"),
    ("http://broker.example", None, "foreign-origin"),
    ("https://broker.example.attacker.example", None, "foreign-origin"),
    ("https://user@broker.example", None, "foreign-origin"),
    ("https://broker.example https://attacker.example", None, "foreign-origin"),
    ("null", "https://broker.example/consent", "origin-null"),
    (None, "https://broker.example/login/abc?x=1", None),
    (None, "https://broker.example.attacker.example/", "foreign-referer"),
    (None, "/login/abc", "foreign-referer"),
    (None, None, "no-origin"),
    (None, " ", "no-origin"),
])
def test_the_origin_rule(origin: str | None, referer: str | None, expected: str | None) -> None:
    base = origin_of("https://broker.example/broker")
    assert base == ("https", "broker.example", 443)
    assert problem(origin, referer, base) == expected


def test_behind_a_tls_proxy_the_public_origin_counts_not_the_internal_host(federation: Federation) -> None:
    """A TLS-terminating proxy (``trusted_proxies = 1``) forwards plain http to an internal address; the browser
    sends the public origin, which is ``base_url``'s. The origin of the internal address is refused."""
    public = "https://broker.city.example"
    config = federation.folder / "broker-proxied.toml"
    text = (federation.folder / "broker.toml").read_text().replace(f'base_url = "{federation.url}"',
                                                                    f'base_url = "{public}"')
    config.write_text(text.replace("[broker]", "[broker]\ntrusted_proxies = 1", 1))
    app = create_app(load_settings(config, environ={}))
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "broker.city.example", "X-Forwarded-For": "1.2.3.4"}
    try:
        client = app.test_client()
        # the signed-out page's sign-in form carries no CSRF token (it would open a session for every visitor,
        # issue 15 point 3): the origin check alone decides
        page = client.get("/account/", base_url="http://10.0.0.5:8000", headers=forwarded)
        assert lxml.html.document_fromstring(page.get_data(as_text=True)).forms[0].action.endswith("/sign-in")
        internal = client.post("/account/sign-in", base_url="http://10.0.0.5:8000", data={},
                               headers={**forwarded, "Origin": "http://10.0.0.5:8000"})
        assert internal.status_code == 400
        accepted = client.post("/account/sign-in", base_url="http://10.0.0.5:8000", data={},
                               headers={**forwarded, "Origin": public, "Referer": public + "/account/"})
        assert accepted.status_code in (302, 303), accepted.get_data(as_text=True)[:300]
    finally:
        close_app(app)
