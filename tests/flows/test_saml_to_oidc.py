"""A legacy SAML app signs a citizen in through an OpenID Connect provider, end to end.

Real peers: a pysaml2 SP (checking signatures with the xmlsec1 program), the broker on its own HTTP
server, and an authlib OpenID provider; a scripted browser carries the citizen between them.
"""

from __future__ import annotations

from saml2.saml import NAMEID_FORMAT_PERSISTENT

from tests.flows.federation import Federation
from tests.peers.browser import Browser


def _signed_in(federation: Federation, browser: Browser, sp: str = "sp1") -> object:
    request_id, page = federation.login(browser, sp)
    assert page.status_code == 200, page.text
    fields = browser.form_fields(page)
    assert browser.is_self_submitting(page)
    response = federation.sps[sp].parse(fields["SAMLResponse"], request_id)
    assert response is not None
    return response


def test_first_login_releases_attributes_and_creates_one_account(federation: Federation, browser: Browser) -> None:
    response = _signed_in(federation, browser)

    identity = response.get_identity()  # type: ignore[attr-defined]
    assert identity["mail"] == ["anna@example.org"]
    assert identity["givenName"] == ["Anna"]
    assert identity["sn"] == ["Virtanen"]
    subject = response.get_subject()  # type: ignore[attr-defined]
    assert subject.format == NAMEID_FORMAT_PERSISTENT
    assert subject.sp_name_qualifier == federation.sps["sp1"].entity_id
    assert "anna" not in subject.text and "@" not in subject.text
    assert federation.accounts() == 1
    assert federation.provider.hits("authorize") == 1


def test_response_is_bound_to_the_sp(federation: Federation, browser: Browser) -> None:
    response = _signed_in(federation, browser)

    assertion = response.assertion  # type: ignore[attr-defined]
    sp = federation.sps["sp1"]
    assert [a.text for r in assertion.conditions.audience_restriction for a in r.audience] == [sp.entity_id]
    confirmation = assertion.subject.subject_confirmation[0].subject_confirmation_data
    assert confirmation.recipient == sp.acs_url
    assert confirmation.not_on_or_after
    assert response.response.destination == sp.acs_url  # type: ignore[attr-defined]
    assert response.response.signature is not None and assertion.signature is not None  # type: ignore[attr-defined]


def test_second_login_in_new_browser_finds_the_same_account(federation: Federation, browser: Browser) -> None:
    first = _signed_in(federation, browser).get_subject().text  # type: ignore[attr-defined]
    with Browser() as other:
        second = _signed_in(federation, other).get_subject().text  # type: ignore[attr-defined]

    assert second == first
    assert federation.accounts() == 1
    assert federation.provider.hits("authorize") == 2


def test_second_app_in_same_browser_uses_sso_and_gets_its_own_name_id(federation: Federation,
                                                                      browser: Browser) -> None:
    first = _signed_in(federation, browser, "sp1").get_subject().text  # type: ignore[attr-defined]
    second = _signed_in(federation, browser, "sp2")

    assert federation.provider.hits("authorize") == 1, "SSO must answer without going upstream again"
    assert second.get_subject().text != first  # type: ignore[attr-defined]
    assert second.get_identity()["mail"] == ["anna@example.org"]  # type: ignore[attr-defined]
    assert federation.accounts() == 1


def test_force_authn_goes_upstream_again(federation: Federation, browser: Browser) -> None:
    _signed_in(federation, browser)
    request_id, page = federation.login(browser, "sp1", force_authn="true")

    assert federation.provider.hits("authorize") == 2
    assert federation.sps["sp1"].parse(browser.form_fields(page)["SAMLResponse"], request_id) is not None


def test_post_binding_request_is_accepted(federation: Federation, browser: Browser) -> None:
    sp = federation.sps["sp1"]
    request_id, destination, fields = sp.post_request()
    page = browser.post(destination, fields)

    answer = browser.form_fields(page)
    assert answer["RelayState"] == "rs-post"
    assert sp.parse(answer["SAMLResponse"], request_id).get_identity()["mail"] == ["anna@example.org"]
