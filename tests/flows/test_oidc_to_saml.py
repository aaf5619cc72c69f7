"""The bridge OIDC client -> broker -> SAML identity provider, and an OpenID Connect app and a legacy SAML app
sharing one citizen's single sign-on session.

Real peers throughout: an authlib relying party validating ID tokens with the broker's JWKS, a pysaml2 IdP
upstream (``tests.flows.saml_upstream``) answering signed AuthnRequests, a pysaml2 SP checking signed
responses, and the authlib demo provider upstream for the shared-session tests.
"""

from __future__ import annotations

import json
from pathlib import Path

import lxml.html  # type: ignore[import-untyped]
import requests

from broker.core.assurance import EIDAS_HIGH, EIDAS_LOW, EIDAS_SUBSTANTIAL
from tests.flows.federation import Federation
from tests.flows.oidc_peers import relying_party
from tests.flows.oidc_to_oidc_support import sign_in
from tests.flows.saml_upstream import CITIZEN, saml_federation
from tests.peers.browser import Browser
from tests.peers.saml_idp import IdpUser


def _saml_login(federation: Federation, browser: Browser) -> object:
    request_id, page = federation.login(browser, "sp1")
    assert page.status_code == 200, page.text
    response = federation.sps["sp1"].parse(browser.form_fields(page)["SAMLResponse"], request_id)
    assert response is not None
    return response


def test_oidc_first_then_saml_app_without_signing_in_again(federation: Federation, browser: Browser) -> None:
    with relying_party(federation) as rp:
        sign_in(browser, rp)
        assert rp.last.userinfo is not None and rp.last.userinfo["email"] == "anna@example.org"

        response = _saml_login(federation, browser)

        assert federation.provider.hits("authorize") == 1
        assert response.get_identity()["mail"] == ["anna@example.org"]  # type: ignore[attr-defined]
        assert federation.accounts() == 1


def test_saml_first_then_oidc_app_without_signing_in_again(federation: Federation, browser: Browser) -> None:
    _saml_login(federation, browser)
    with relying_party(federation) as rp:
        sign_in(browser, rp, prompt="none")

        assert rp.last.error is None
        assert rp.last.id_token_claims is not None and rp.last.userinfo is not None
        assert rp.last.userinfo["given_name"] == "Anna"
        assert federation.provider.hits("authorize") == 1


def test_subjects_differ_between_the_saml_and_the_oidc_app(federation: Federation, browser: Browser) -> None:
    saml_subject = _saml_login(federation, browser).get_subject().text  # type: ignore[attr-defined]
    with relying_party(federation) as rp:
        sign_in(browser, rp)

        assert rp.last.id_token_claims is not None
        assert rp.last.id_token_claims["sub"] != saml_subject  # pairwise: the two apps cannot correlate


def test_logout_at_the_oidc_app_ends_the_saml_apps_session_too(federation: Federation, browser: Browser) -> None:
    post_logout = "http://127.0.0.1:9/bye"
    with relying_party(federation, post_logout_redirect_uris=[post_logout]) as rp:
        sign_in(browser, rp)
        _saml_login(federation, browser)
        assert rp.last.token is not None
        browser.get(f"{federation.url}/oidc/logout", params={
            "id_token_hint": rp.last.token["id_token"], "post_logout_redirect_uri": post_logout}, follow=False)

        _saml_login(federation, browser)
        assert federation.provider.hits("authorize") == 2


def _via_city(browser: Browser, page: requests.Response) -> requests.Response:
    """From the discovery page: pick the city IdP, then follow the IdP's POST and the broker's repost."""
    forms = lxml.html.fromstring(page.text).forms
    page = browser.submit(page, form=next(i for i, f in enumerate(forms) if "/upstream/city" in (f.action or "")))
    while browser.is_self_submitting(page):
        page = browser.auto_submit(page)
    return page


def test_an_oidc_app_signs_in_through_the_city_saml_idp(tmp_path: Path, key_folder: Path, browser: Browser) -> None:
    with saml_federation(tmp_path, key_folder) as (fed, city), relying_party(fed) as rp:
        page = _via_city(browser, browser.get(f"{rp.url}/login"))

        assert page.status_code == 200, page.text
        outcome = rp.last
        assert outcome.error is None and outcome.userinfo is not None and outcome.id_token_claims is not None
        assert outcome.userinfo["email"] == "aino@city.example" and outcome.userinfo["email_verified"] is True
        assert outcome.userinfo["given_name"] == "Aino" and outcome.userinfo["family_name"] == "Kallio"
        assert CITIZEN.name_id not in outcome.id_token_claims["sub"]
        assert city.seen[0].issuer == fed.url + "/saml2/sp/metadata"
        assert fed.accounts() == 1


def test_an_essential_acr_is_asked_upstream_and_answered_with_a_requested_value(
        tmp_path: Path, key_folder: Path, browser: Browser) -> None:
    strong = IdpUser(CITIZEN.name_id, CITIZEN.attributes, authn_contexts=(EIDAS_HIGH, EIDAS_SUBSTANTIAL))
    claims = json.dumps({"id_token": {"acr": {"essential": True, "values": [EIDAS_SUBSTANTIAL]}}})
    with saml_federation(tmp_path, key_folder, user=strong) as (fed, city), relying_party(fed) as rp:
        _via_city(browser, browser.get(f"{rp.url}/login", params={"claims": claims}))

        assert city.seen[0].requested_contexts == (EIDAS_SUBSTANTIAL,)
        assert rp.last.id_token_claims is not None and rp.last.id_token_claims["acr"] == EIDAS_SUBSTANTIAL


def test_an_upstream_below_the_required_acr_is_an_oidc_error(tmp_path: Path, key_folder: Path,
                                                             browser: Browser) -> None:
    weak = IdpUser(CITIZEN.name_id, CITIZEN.attributes, authn_contexts=(EIDAS_LOW,))
    claims = json.dumps({"id_token": {"acr": {"essential": True, "values": [EIDAS_HIGH]}}})
    with saml_federation(tmp_path, key_folder, user=weak) as (fed, _), relying_party(fed) as rp:
        _via_city(browser, browser.get(f"{rp.url}/login", params={"claims": claims}))

        assert rp.last.callback_args.get("error") == "unmet_authentication_requirements"
        assert fed.accounts() == 0
