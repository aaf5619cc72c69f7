"""Attacks on SAML Single Logout at the broker's IdP (issue 4; ``broker.web.saml_logout``).

Each forged, unsigned, replayed or misdirected message ends nothing: the SSO session still answers a new login
without going upstream, the other participant is not told anything, and the sender gets the right signed
LogoutResponse at its metadata endpoint (a registered SP) or a readable page (anyone else), never a stack trace.
"""

from __future__ import annotations

import base64
import zlib
from datetime import timedelta
from urllib.parse import urlencode

from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.saml import NAMEID_FORMAT_PERSISTENT, NameID
from saml2.xmldsig import SIG_RSA_SHA1

from broker.core.model import utcnow
from tests.flows.federation import Federation, FixedClock
from tests.flows.saml_logout_support import (
    DENIED,
    REQUESTER,
    SUCCESS,
    UNKNOWN_PRINCIPAL,
    Delivered,
    delivered,
    enable_slo,
    idp_of,
    logout_request,
    send,
    sign_in,
    sp_answers,
    sp_receives_request,
    sp_receives_response,
    still_signed_in,
)
from tests.flows.saml_peers import TestSp
from tests.peers.browser import Browser
from tests.security.attack_support import assert_page, with_param


def _signed_in_at_both(federation: Federation, browser: Browser) -> object:
    enable_slo(federation, "sp1", "sp2")
    at1 = sign_in(federation, browser, "sp1")
    sign_in(federation, browser, "sp2")
    return at1


def _refused_to_sp1(federation: Federation, browser: Browser, page: object, request_id: str,
                    expected: tuple[str, str | None]) -> None:
    """The refusal went to sp1's own metadata endpoint (not to sp2, not anywhere else), signed, with ``expected``."""
    message: Delivered = delivered(browser, page)  # type: ignore[arg-type]
    sp1 = federation.sps["sp1"]
    assert message.url in (sp1.entity_id + "/slo/redirect", sp1.entity_id + "/slo/post")
    assert sp_receives_response(sp1, message, request_id) == expected


def test_unsigned_logout_request_ends_nothing(federation: Federation, browser: Browser) -> None:
    at1 = _signed_in_at_both(federation, browser)
    for binding in (BINDING_HTTP_REDIRECT, BINDING_HTTP_POST):
        request_id, url, fields = logout_request(federation.sps["sp1"], at1.name_id, at1.session_index,  # type: ignore[attr-defined]
                                                 binding, sign=False)
        _refused_to_sp1(federation, browser, send(browser, url, fields), request_id, (REQUESTER, DENIED))
    assert still_signed_in(federation, browser, hits=1)


def test_tampered_redirect_signature_ends_nothing(federation: Federation, browser: Browser) -> None:
    at1 = _signed_in_at_both(federation, browser)
    sp1 = federation.sps["sp1"]
    request_id, url, _ = logout_request(sp1, at1.name_id, at1.session_index)  # type: ignore[attr-defined]
    for forged in (with_param(url, "RelayState", "changed-after-signing"),
                   with_param(url, "SigAlg", "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512")):
        _refused_to_sp1(federation, browser, browser.get(forged, follow=False), request_id, (REQUESTER, DENIED))
    assert still_signed_in(federation, browser, hits=1)


def test_sha1_redirect_signature_is_refused(federation: Federation, browser: Browser) -> None:
    at1 = _signed_in_at_both(federation, browser)
    sp1 = federation.sps["sp1"]
    request_id, message = sp1.client.create_logout_request(
        sp1.entity_id and federation.url + "/saml2/idp/slo/redirect", idp_of(sp1), name_id=at1.name_id,  # type: ignore[attr-defined]
        session_indexes=[at1.session_index])  # type: ignore[attr-defined]
    info = sp1.client.apply_binding(BINDING_HTTP_REDIRECT, str(message), federation.url + "/saml2/idp/slo/redirect",
                                    "rs", sign=True, sigalg=SIG_RSA_SHA1)
    page = browser.get(dict(info["headers"])["Location"], follow=False)
    _refused_to_sp1(federation, browser, page, request_id, (REQUESTER, DENIED))
    assert still_signed_in(federation, browser, hits=1)


def test_signature_by_another_sps_key_ends_nothing(federation: Federation, browser: Browser) -> None:
    at1 = _signed_in_at_both(federation, browser)
    impostor = TestSp(federation.sps["sp1"].entity_id, federation.sps["sp2"].keys, slo=True)  # sp1's name, sp2's key
    impostor.connect(browser.get(federation.url + "/saml2/idp/metadata").text)

    request_id, url, _ = logout_request(impostor, at1.name_id, at1.session_index)  # type: ignore[attr-defined]
    _refused_to_sp1(federation, browser, browser.get(url, follow=False), request_id, (REQUESTER, DENIED))

    _, url, fields = logout_request(impostor, at1.name_id, at1.session_index, BINDING_HTTP_POST)  # type: ignore[attr-defined]
    assert_page(browser.post(url, fields, follow=False), 400)  # the XML signature fails before the issuer counts
    assert still_signed_in(federation, browser, hits=1)


def test_name_id_of_another_user_ends_nothing(federation: Federation, browser: Browser) -> None:
    at1 = _signed_in_at_both(federation, browser)
    sp1 = federation.sps["sp1"]
    someone_else = NameID(format=NAMEID_FORMAT_PERSISTENT, name_qualifier=idp_of(sp1),
                          sp_name_qualifier=sp1.entity_id, text="someone-else")
    request_id, url, _ = logout_request(sp1, someone_else, at1.session_index)  # type: ignore[attr-defined]
    _refused_to_sp1(federation, browser, browser.get(url, follow=False), request_id, (REQUESTER, UNKNOWN_PRINCIPAL))

    # sp2's NameID is not sp1's to use either
    at2_name = NameID(format=NAMEID_FORMAT_PERSISTENT, text=sign_in(federation, browser, "sp2").name_id.text)
    request_id, url, _ = logout_request(sp1, at2_name, at1.session_index)  # type: ignore[attr-defined]
    _refused_to_sp1(federation, browser, browser.get(url, follow=False), request_id, (REQUESTER, UNKNOWN_PRINCIPAL))
    assert still_signed_in(federation, browser, hits=1)


def test_replayed_logout_request_ends_nothing(federation: Federation, browser: Browser) -> None:
    enable_slo(federation, "sp1")
    at1 = sign_in(federation, browser, "sp1")
    request_id, url, _ = logout_request(federation.sps["sp1"], at1.name_id, None)
    _refused_to_sp1(federation, browser, browser.get(url, follow=False), request_id, (SUCCESS, None))
    sign_in(federation, browser, "sp1")
    assert federation.provider.hits("authorize") == 2  # signed out, then in again

    _refused_to_sp1(federation, browser, browser.get(url, follow=False), request_id, (REQUESTER, DENIED))
    assert still_signed_in(federation, browser, hits=2)


def test_logout_request_from_another_browser_ends_nothing(federation: Federation, browser: Browser) -> None:
    enable_slo(federation, "sp1")
    at_a = sign_in(federation, browser, "sp1")
    with Browser() as other:
        at_b = sign_in(federation, other, "sp1")
        assert at_a.name_id.text == at_b.name_id.text and at_a.session_index != at_b.session_index
        request_id, url, _ = logout_request(federation.sps["sp1"], at_a.name_id, at_a.session_index)

        _refused_to_sp1(federation, other, other.get(url, follow=False), request_id, (REQUESTER, UNKNOWN_PRINCIPAL))
        assert still_signed_in(federation, other, hits=2)
    assert still_signed_in(federation, browser, hits=2)


def test_forged_or_stolen_logout_response_does_not_advance_the_chain(federation: Federation, browser: Browser) -> None:
    at1 = _signed_in_at_both(federation, browser)
    sp1, sp2 = federation.sps["sp1"], federation.sps["sp2"]
    request_id, url, _ = logout_request(sp1, at1.name_id, at1.session_index)  # type: ignore[attr-defined]
    to_sp2 = delivered(browser, browser.get(url, follow=False))
    request = sp_receives_request(sp2, to_sp2)
    relay_state = to_sp2.params.get("RelayState")
    genuine_url, _ = sp_answers(sp2, request, relay_state)

    with Browser() as other:  # the genuine answer, carried by another browser
        assert_page(other.get(genuine_url, follow=False), 400)
    wrong = sp_receives_request(sp2, to_sp2)
    wrong.id = "_not-the-request-the-broker-sent"
    wrong_url, _ = sp_answers(sp2, wrong, relay_state)
    assert_page(browser.get(wrong_url, follow=False), 400)
    impostor = TestSp(sp2.entity_id, sp1.keys, slo=True)
    impostor.connect(browser.get(federation.url + "/saml2/idp/metadata").text)
    forged_url, _ = sp_answers(impostor, request, relay_state)
    assert_page(browser.get(forged_url, follow=False), 400)

    # the real answer still completes the chain: the forgeries did not use up its step
    assert sp_receives_response(sp1, delivered(browser, browser.get(genuine_url, follow=False)), request_id) \
        == (SUCCESS, None)
    assert_page(browser.get(genuine_url, follow=False), 400)  # and it is single use


def test_destination_not_ours_is_refused_and_answered_only_at_metadata(federation: Federation,
                                                                       browser: Browser) -> None:
    at1 = _signed_in_at_both(federation, browser)
    _, url, _ = logout_request(federation.sps["sp1"], at1.name_id, at1.session_index,  # type: ignore[attr-defined]
                               destination="http://127.0.0.1:9/evil")
    page = browser.get(url, follow=False)
    assert_page(page, 400)  # a message for another endpoint is nobody's to answer here: no redirect at all
    assert "Location" not in page.headers and "127.0.0.1:9/evil" not in page.text
    assert still_signed_in(federation, browser, hits=1)


def test_expired_logout_request_ends_nothing(federation: Federation, browser: Browser) -> None:
    at1 = _signed_in_at_both(federation, browser)
    request_id, url, _ = logout_request(federation.sps["sp1"], at1.name_id, at1.session_index)  # type: ignore[attr-defined]
    federation.set_clock(FixedClock(utcnow() + timedelta(hours=1)))
    _refused_to_sp1(federation, browser, browser.get(url, follow=False), request_id, (REQUESTER, DENIED))


def _unsigned_redirect(federation: Federation, xml: bytes, param: str = "SAMLRequest") -> str:
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    encoded = base64.b64encode(deflate.compress(xml) + deflate.flush()).decode()
    return f"{federation.url}/saml2/idp/slo/redirect?{urlencode({param: encoded})}"


def test_malformed_messages_get_a_page(federation: Federation, browser: Browser) -> None:
    enable_slo(federation, "sp1")
    doctype = (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "e">]><samlp:LogoutRequest '
               b'xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_1" Version="2.0" '
               b'IssueInstant="2026-01-01T00:00:00Z">&e;</samlp:LogoutRequest>')
    unknown = (b'<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
               b'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_2" Version="2.0" '
               b'IssueInstant="2026-01-01T00:00:00Z"><saml:Issuer>https://unknown.example</saml:Issuer>'
               b'<saml:NameID>x</saml:NameID></samlp:LogoutRequest>')
    for url in (_unsigned_redirect(federation, doctype), _unsigned_redirect(federation, unknown),
                _unsigned_redirect(federation, b"not xml"), _unsigned_redirect(federation, unknown, "SAMLResponse"),
                f"{federation.url}/saml2/idp/slo/redirect?SAMLRequest=%%%",
                f"{federation.url}/saml2/idp/slo/redirect?SAMLRequest=a&SAMLResponse=b",
                f"{federation.url}/saml2/idp/slo/redirect"):
        assert_page(browser.get(url, follow=False), 400)
    assert_page(browser.post(f"{federation.url}/saml2/idp/slo/post", {"SAMLRequest": "A" * 70_000}, follow=False),
                400)
    assert_page(browser.get(f"{federation.url}/saml2/idp/slo/resume/forged-handle", follow=False), 400)
    assert_page(browser.post(f"{federation.url}/saml2/idp/slo/continue", {}, follow=False), 400)
