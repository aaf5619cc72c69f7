"""Refusals of the SAML-to-OIDC bridge that are not attacks, through the real peers.

The attacks (forged, replayed, wrapped or oversized messages, login CSRF, session fixation, forged upstream
answers) moved to ``tests/security/test_attack_*.py``, one row of docs/security.md each. What stays: the
SHA-1 default, IsPassive without a session and an unknown upstream.
Each must end with the right error at the right party and store nothing.
"""

from __future__ import annotations

from tests.flows.federation import Federation, saml_status
from tests.peers.browser import Browser

REQUESTER = "urn:oasis:names:tc:SAML:2.0:status:Requester"
RESPONDER = "urn:oasis:names:tc:SAML:2.0:status:Responder"
DENIED = "urn:oasis:names:tc:SAML:2.0:status:RequestDenied"


def _assert_nothing_stored(federation: Federation) -> None:
    assert federation.accounts() == 0


# -- the AuthnRequest --------------------------------------------------------------------------------------


def test_sha1_redirect_signature_is_refused_by_default(federation: Federation, browser: Browser) -> None:
    _, location = federation.sps["sp1"].redirect_request(sigalg="http://www.w3.org/2000/09/xmldsig#rsa-sha1")
    page = browser.get(location)

    assert saml_status(browser.form_fields(page)) == (REQUESTER, DENIED)
    _assert_nothing_stored(federation)


def test_passive_request_without_session_gets_no_passive(federation: Federation, browser: Browser) -> None:
    _, page = federation.login(browser, is_passive="true")

    assert saml_status(browser.form_fields(page)) == (RESPONDER, "urn:oasis:names:tc:SAML:2.0:status:NoPassive")
    assert federation.provider.hits("authorize") == 0


# -- the upstream's answer ------------------------------------------------------------------------------------


def test_unknown_upstream_in_idp_list_gets_no_available_idp(federation: Federation, browser: Browser) -> None:
    _, location = federation.sps["sp1"].redirect_request()
    page = browser.get(location + "&idp_hint=nobody")

    assert saml_status(browser.form_fields(page)) == (RESPONDER, "urn:oasis:names:tc:SAML:2.0:status:NoAvailableIDP")

