"""An OpenID Connect app and a legacy SAML app share one citizen's single sign-on session.

The bridge this file is named for, OIDC client -> broker -> SAML identity provider, needs SAML upstreams
(their own issue); until then the OIDC client signs in through the OIDC upstream and the SAML app joins the
same session, in both orders. Real peers throughout: an authlib relying party validating ID tokens with the
broker's JWKS, a pysaml2 SP checking signed responses, the authlib demo provider upstream.
"""

from __future__ import annotations

from tests.flows.federation import Federation
from tests.flows.oidc_peers import relying_party
from tests.flows.test_oidc_to_oidc import sign_in
from tests.peers.browser import Browser


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
