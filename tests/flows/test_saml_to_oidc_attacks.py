"""Every check of the SAML-to-OIDC bridge, attacked through the real peers.

Each attempt must end with the right error at the right party (a SAML error Response to a registered
ACS, or a readable page with a support reference when the party cannot be trusted), and must store
nothing: no account, no linked identity.
"""

from __future__ import annotations

import base64
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import pytest

from broker.core.model import utcnow
from broker.demo.oidc_provider_config import Mischief
from tests.flows.federation import Federation, FixedClock, saml_status
from tests.flows.saml_peers import SpKeys, TestSp
from tests.peers.browser import Browser

REQUESTER = "urn:oasis:names:tc:SAML:2.0:status:Requester"
RESPONDER = "urn:oasis:names:tc:SAML:2.0:status:Responder"
DENIED = "urn:oasis:names:tc:SAML:2.0:status:RequestDenied"
AUTHN_FAILED = "urn:oasis:names:tc:SAML:2.0:status:AuthnFailed"


def _with_param(url: str, name: str, value: str) -> str:
    parts = urlsplit(url)
    query = [(k, value if k == name else v) for k, v in parse_qsl(parts.query)]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _assert_page(page: object, status: int) -> None:
    assert page.status_code == status  # type: ignore[attr-defined]
    text = page.text  # type: ignore[attr-defined]
    assert 'class="reference"' in text and "Traceback" not in text
    assert "<form" not in text, "an untrusted request must not be answered with a form to anywhere"


def _assert_nothing_stored(federation: Federation) -> None:
    assert federation.accounts() == 0


# -- the AuthnRequest --------------------------------------------------------------------------------------


def test_tampered_redirect_signature_is_refused(federation: Federation, browser: Browser) -> None:
    _, location = federation.sps["sp1"].redirect_request(relay_state="original")
    page = browser.get(_with_param(location, "RelayState", "tampered"))

    assert saml_status(browser.form_fields(page)) == (REQUESTER, DENIED)
    assert federation.provider.hits("authorize") == 0
    _assert_nothing_stored(federation)


def test_sha1_redirect_signature_is_refused_by_default(federation: Federation, browser: Browser) -> None:
    _, location = federation.sps["sp1"].redirect_request(sigalg="http://www.w3.org/2000/09/xmldsig#rsa-sha1")
    page = browser.get(location)

    assert saml_status(browser.form_fields(page)) == (REQUESTER, DENIED)
    _assert_nothing_stored(federation)


def test_unsigned_request_from_sp_that_must_sign_is_refused(federation: Federation, browser: Browser) -> None:
    _, location = federation.sps["sp1"].redirect_request()
    unsigned = urlunsplit(urlsplit(location)._replace(query=urlencode(
        [(k, v) for k, v in parse_qsl(urlsplit(location).query) if k not in ("Signature", "SigAlg")])))
    page = browser.get(unsigned)

    assert saml_status(browser.form_fields(page)) == (REQUESTER, DENIED)
    _assert_nothing_stored(federation)


def test_tampered_post_signature_is_refused(federation: Federation, browser: Browser) -> None:
    sp = federation.sps["sp1"]
    _, destination, fields = sp.post_request()
    xml = base64.b64decode(fields["SAMLRequest"]).decode()
    evil = xml.replace(sp.acs_url, sp.acs_url + "?evil=1")  # a signed field changed after signing
    assert evil != xml
    page = browser.post(destination, {**fields, "SAMLRequest": base64.b64encode(evil.encode()).decode()})

    _assert_page(page, 400)
    _assert_nothing_stored(federation)


def test_unknown_sp_gets_a_page_not_a_response(federation: Federation, browser: Browser, key_folder: Path) -> None:
    folder = key_folder
    stranger = TestSp("http://127.0.0.1:9/stranger", SpKeys(folder / "sp3" / "signing.key",
                                                            folder / "sp3" / "signing.crt"))
    stranger.connect(browser.get(federation.url + "/saml2/idp/metadata").text)
    _, location = stranger.redirect_request()
    page = browser.get(location)

    _assert_page(page, 400)
    assert "not registered" in page.text
    _assert_nothing_stored(federation)


def test_acs_url_not_in_metadata_is_never_used(federation: Federation, browser: Browser) -> None:
    _, location = federation.sps["sp1"].redirect_request(
        assertion_consumer_service_url="http://127.0.0.1:9/attacker/acs")
    page = browser.get(location)

    _assert_page(page, 400)
    assert "attacker" not in page.text
    _assert_nothing_stored(federation)


@pytest.mark.parametrize("shift", [timedelta(minutes=10), timedelta(minutes=-10)])
def test_request_outside_its_lifetime_is_refused(federation: Federation, browser: Browser,
                                                 shift: timedelta) -> None:
    _, location = federation.sps["sp1"].redirect_request()
    federation.set_clock(FixedClock(utcnow() + shift))
    page = browser.get(location)

    assert saml_status(browser.form_fields(page)) == (REQUESTER, DENIED)
    _assert_nothing_stored(federation)


def test_doctype_in_request_is_refused(federation: Federation, browser: Browser) -> None:
    sp = federation.sps["sp1"]
    _, destination, fields = sp.post_request()
    xml = base64.b64decode(fields["SAMLRequest"]).decode()
    bomb = '<!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>' + xml
    page = browser.post(destination, {**fields, "SAMLRequest": base64.b64encode(bomb.encode()).decode()})

    _assert_page(page, 400)
    _assert_nothing_stored(federation)


def test_oversized_request_is_refused_before_parsing(federation: Federation, browser: Browser) -> None:
    page = browser.post(federation.url + "/saml2/idp/sso/post", {"SAMLRequest": "A" * 200_000})

    _assert_page(page, 400)


def test_passive_request_without_session_gets_no_passive(federation: Federation, browser: Browser) -> None:
    _, page = federation.login(browser, is_passive="true")

    assert saml_status(browser.form_fields(page)) == (RESPONDER, "urn:oasis:names:tc:SAML:2.0:status:NoPassive")
    assert federation.provider.hits("authorize") == 0


# -- the upstream's answer ------------------------------------------------------------------------------------


@pytest.mark.parametrize("mischief", [
    pytest.param(Mischief(claim_overrides={"nonce": "another-nonce"}), id="nonce-mismatch"),
    pytest.param(Mischief(foreign_key=True), id="id-token-signed-by-another-key"),
    pytest.param(Mischief(alg_none=True), id="alg-none"),
    pytest.param(Mischief(hs256_with_public_key=True), id="hs256-with-public-key"),
    pytest.param(Mischief(claim_overrides={"exp": int(time.time()) - 600, "iat": int(time.time()) - 1200}),
                 id="expired-id-token"),
    pytest.param(Mischief(claim_overrides={"aud": "some-other-client"}), id="wrong-audience"),
    pytest.param(Mischief(claim_overrides={"iss": "http://127.0.0.1:9/evil"}), id="wrong-issuer"),
    pytest.param(Mischief(iss_param="http://127.0.0.1:9/evil"), id="wrong-iss-parameter"),
    pytest.param(Mischief(userinfo_sub="someone-else"), id="userinfo-for-another-subject"),
])
def test_unverifiable_upstream_answer_fails_the_login(federation: Federation, browser: Browser,
                                                      mischief: Mischief) -> None:
    federation.provider.mischief = mischief
    _, page = federation.login(browser)

    assert saml_status(browser.form_fields(page)) == (RESPONDER, AUTHN_FAILED)
    assert "anna" not in page.text.lower()
    _assert_nothing_stored(federation)


def test_replayed_callback_is_refused(federation: Federation, browser: Browser) -> None:
    federation.login(browser)
    callback = next(u for u in browser.history if "/upstream/oidc/" in u)
    assert federation.accounts() == 1

    _assert_page(browser.get(callback), 400)
    with Browser() as other:
        _assert_page(other.get(callback), 400)
    assert federation.accounts() == 1


def test_callback_state_from_another_browser_is_refused(federation: Federation, browser: Browser) -> None:
    _, url = federation.sps["sp1"].redirect_request()
    while "/upstream/oidc/" not in url:  # the attacker walks their own login up to the callback
        url = urljoin(url, browser.get(url, follow=False).headers["Location"])
    callback = url
    with Browser() as victim:  # login CSRF: the victim's browser gets the attacker's authorization response
        _assert_page(victim.get(callback), 400)
    _assert_nothing_stored(federation)


def test_unknown_upstream_in_idp_list_gets_no_available_idp(federation: Federation, browser: Browser) -> None:
    _, location = federation.sps["sp1"].redirect_request()
    page = browser.get(location + "&idp_hint=nobody")

    assert saml_status(browser.form_fields(page)) == (RESPONDER, "urn:oasis:names:tc:SAML:2.0:status:NoAvailableIDP")


def test_session_identifier_is_replaced_at_sign_in(federation: Federation, browser: Browser) -> None:
    """Session fixation: a session id planted before sign-in must not be the signed-in session."""
    _, location = federation.sps["sp1"].redirect_request()
    url = location
    while "/upstream/oidc/" not in url:
        url = urljoin(url, browser.get(url, follow=False).headers["Location"])
    planted = browser.session.cookies.get("broker_session")
    assert planted

    browser.get(url)
    signed_in = browser.session.cookies.get("broker_session")
    assert signed_in and signed_in != planted
    with Browser() as attacker:  # the attacker kept the planted id: it carries no SSO session
        attacker.session.cookies.set("broker_session", planted, domain="127.0.0.1", path="/")
        _, page = federation.login(attacker, "sp2")
        assert "SAMLResponse" in attacker.form_fields(page)
    assert federation.provider.hits("authorize") == 2, "the planted id must not carry the victim's SSO session"
