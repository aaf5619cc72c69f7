"""Release policy and consent end to end, for a SAML app and an OpenID Connect app (real peers).

Each app receives the intersection of what it asked for, what the operator's policy allows it and what the
citizen agreed to; a declined optional claim is absent; a withdrawn consent asks again and revokes the app's
refresh tokens.
"""

from __future__ import annotations

from typing import Any

import lxml.html  # type: ignore[import-untyped]
import requests

from tests.flows.consent_support import audit_kinds, policy
from tests.flows.federation import Federation, saml_status
from tests.flows.oidc_peers import RelyingParty, relying_party
from tests.flows.oidc_to_oidc_support import sign_in
from tests.peers.browser import Browser

REFRESHING: dict[str, Any] = {"grant_types": ["authorization_code", "refresh_token"]}  # relying_party's **metadata


def press(browser: Browser, page: requests.Response, decision: str, ticked: tuple[str, ...] = ()) -> requests.Response:
    form = lxml.html.fromstring(page.text).forms[0]
    action = requests.compat.urljoin(page.url, form.action)
    fields = [(k, v) for k, v in browser.form_fields(page).items() if k != "claim"]
    fields += [("decision", decision), *[("claim", c) for c in ticked]]
    answer = browser.post(action, fields, initiator=page.url, follow=False)
    while answer.status_code in (302, 303):
        answer = browser.get(answer.headers["Location"], follow=False)
    return answer


def test_a_saml_app_receives_only_what_policy_allows(federation: Federation, browser: Browser) -> None:
    sp = federation.sps["sp1"]
    policy(federation, f'version = "p1"\n[default]\nconsent_exempt = true\n[apps."{sp.entity_id}"]\n'
                       'allow = ["email", "email_verified"]\nconsent_exempt = true\n')
    request_id, page = federation.login(browser)
    response = sp.parse(browser.form_fields(page)["SAMLResponse"], request_id)

    assert response is not None
    assert response.get_identity() == {"mail": ["anna@example.org"]}


def test_an_oidc_app_receives_only_what_policy_allows(federation: Federation, browser: Browser) -> None:
    policy(federation, 'version = "p1"\n[default]\nconsent_exempt = true\n[apps.city-app]\n'
                       'allow = ["given_name"]\nconsent_exempt = true\n')
    with relying_party(federation, scope="openid profile email") as rp:
        sign_in(browser, rp)

        assert rp.last.userinfo is not None and set(rp.last.userinfo) == {"sub", "given_name"}
        assert rp.last.id_token_claims is not None and "email" not in rp.last.id_token_claims


def _consent_page(browser: Browser, rp: RelyingParty, **params: str) -> requests.Response:
    page = browser.get(f"{rp.url}/login", params=params or None)
    assert page.status_code == 200 and "Share your information with" in page.text, page.text[:300]
    return page


def test_first_login_asks_and_a_declined_optional_claim_is_absent(federation: Federation, browser: Browser) -> None:
    policy(federation, 'version = "p1"\n')
    with relying_party(federation, scope="openid profile email") as rp:
        page = _consent_page(browser, rp)
        assert "First name" in page.text or "first name" in page.text
        press(browser, page, "allow", ticked=("email", "given_name"))

        assert rp.last.userinfo is not None
        assert rp.last.userinfo["email"] == "anna@example.org" and rp.last.userinfo["given_name"] == "Anna"
        assert "family_name" not in rp.last.userinfo and "name" not in rp.last.userinfo  # declined
        sign_in(browser, rp)  # answered: not asked again
        assert rp.last.error is None and "family_name" not in (rp.last.userinfo or {})
        assert "consent-given" in audit_kinds(federation)


def test_declining_is_access_denied_for_oidc_and_request_denied_for_saml(federation: Federation,
                                                                         browser: Browser) -> None:
    policy(federation, 'version = "p1"\n')
    with relying_party(federation) as rp:
        declined = press(browser, _consent_page(browser, rp), "deny")
        assert "so you were not signed in to" in declined.text and not rp.outcomes  # the sentence first
        browser.submit(declined)  # "Return to the app"
        assert rp.last.error == "access_denied" and rp.last.token is None

    _, page = federation.login(browser)
    assert "Share your information with" in page.text
    answer = browser.submit(press(browser, page, "deny"))
    assert saml_status(browser.form_fields(answer)) == ("urn:oasis:names:tc:SAML:2.0:status:Responder",
                                                        "urn:oasis:names:tc:SAML:2.0:status:RequestDenied")
    assert "consent-declined" in audit_kinds(federation)


def test_a_new_policy_version_asks_again(federation: Federation, browser: Browser) -> None:
    policy(federation, 'version = "p1"\n')
    with relying_party(federation) as rp:
        press(browser, _consent_page(browser, rp), "allow", ticked=("email",))
        policy(federation, 'version = "p2"\n')
        _consent_page(browser, rp)


def test_withdrawal_asks_again_and_revokes_refresh_tokens(federation: Federation, browser: Browser) -> None:
    policy(federation, 'version = "p1"\n')
    with relying_party(federation, **REFRESHING) as rp:
        press(browser, _consent_page(browser, rp), "allow", ticked=("email",))
        assert rp.last.token is not None
        refresh_token = rp.last.token["refresh_token"]

        portal = browser.get(f"{federation.url}/account/consents")
        assert portal.status_code == 200 and "Withdraw consent" in portal.text
        assert browser.submit(portal).status_code == 200  # withdraw, back on the consents page

        refreshed = requests.post(f"{federation.url}/oidc/token", auth=(rp.client_id, rp.secret or ""),
                                  data={"grant_type": "refresh_token", "refresh_token": refresh_token}, timeout=10)
        assert refreshed.status_code == 400 and refreshed.json()["error"] == "invalid_grant"
        _consent_page(browser, rp)  # asked again at the next login
        assert "consent-withdrawn" in audit_kinds(federation)


def test_withdrawal_needs_the_pages_csrf_token(federation: Federation, browser: Browser) -> None:
    policy(federation, 'version = "p1"\n')
    with relying_party(federation) as rp:
        press(browser, _consent_page(browser, rp), "allow", ticked=("email",))
        forged = browser.post(f"{federation.url}/account/consents/withdraw", {"party_id": rp.client_id},
                              initiator=f"{federation.url}/account/consents")  # the broker's origin, no token
        assert forged.status_code == 400
        sign_in(browser, rp)
        assert rp.last.error is None  # still consented: not asked again
