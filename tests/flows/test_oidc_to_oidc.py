"""A modern city app (OpenID Connect client) signs a citizen in through an upstream OpenID provider.

Real peers: an authlib Flask relying party that discovers the broker, uses PKCE and a nonce and validates the
ID token against the broker's JWKS; the broker on its own HTTP server; the authlib demo provider upstream.
"""

from __future__ import annotations

import dataclasses
from urllib.parse import parse_qs, urljoin, urlsplit

import lxml.html  # type: ignore[import-untyped]
import requests
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import select

from broker.core.model import utcnow
from broker.storage import create_engine_for
from broker.storage.tables import AccountRow
from tests.flows.federation import CITIZEN, Federation
from tests.flows.oidc_peers import relying_party
from tests.flows.oidc_to_oidc_support import sign_in
from tests.peers.browser import Browser


def test_sign_in_gives_a_verified_id_token_and_userinfo(federation: Federation, browser: Browser) -> None:
    with relying_party(federation) as rp:
        page = sign_in(browser, rp)

        assert page.status_code == 200, page.text
        outcome = rp.last
        assert outcome.error is None
        claims = outcome.id_token_claims
        assert claims is not None and outcome.userinfo is not None and outcome.token is not None
        assert claims["iss"] == federation.url and claims["aud"] == "city-app"
        assert claims["sub"] == outcome.userinfo["sub"]
        assert CITIZEN.claims["sub"] not in claims["sub"] and "@" not in claims["sub"]
        assert {"auth_time", "sid", "nonce", "at_hash", "iat", "exp"} <= claims.keys()
        assert outcome.userinfo["email"] == "anna@example.org"
        assert outcome.userinfo["given_name"] == "Anna" and outcome.userinfo["family_name"] == "Virtanen"
        assert outcome.token["token_type"] == "Bearer" and "refresh_token" not in outcome.token
        assert outcome.callback_args["iss"] == federation.url  # RFC 9207
        assert federation.accounts() == 1


def test_form_post_response_mode(federation: Federation, browser: Browser) -> None:
    with relying_party(federation) as rp:
        page = browser.get(f"{rp.url}/login", params={"response_mode": "form_post"})
        assert browser.is_self_submitting(page)
        assert "code" in browser.form_fields(page)
        page = browser.auto_submit(page)
        assert not [url for url in browser.history if url.startswith(rp.url) and "code=" in url]

        assert page.status_code == 200, page.text
        assert rp.last.userinfo is not None and rp.last.userinfo["email"] == "anna@example.org"


def test_scope_limits_the_claims_released(federation: Federation, browser: Browser) -> None:
    with relying_party(federation, scope="openid") as rp:
        sign_in(browser, rp)

        assert rp.last.userinfo is not None
        assert set(rp.last.userinfo) == {"sub"}
        assert rp.last.id_token_claims is not None and "email" not in rp.last.id_token_claims


def test_second_app_uses_the_sso_session(federation: Federation, browser: Browser) -> None:
    sector = {"sector_identifier_uri": "https://apps.city.example.org/sector.json"}
    with relying_party(federation, "app-one", **sector) as one, relying_party(federation, "app-two", **sector) as two:
        sign_in(browser, one)
        sign_in(browser, two)

        assert federation.provider.hits("authorize") == 1
        assert one.last.id_token_claims is not None and two.last.id_token_claims is not None
        assert one.last.id_token_claims["sid"] == two.last.id_token_claims["sid"]
        # Same sector (OIDC Core §8.1): one pairwise subject for both. (Their redirect URIs are on 127.0.0.1,
        # which is no sector: without the sector_identifier_uri each would be its own.)
        assert one.last.id_token_claims["sub"] == two.last.id_token_claims["sub"]


def test_subjects_differ_between_sectors_and_public_clients(federation: Federation, browser: Browser) -> None:
    with relying_party(federation, "pairwise-a") as a, \
            relying_party(federation, "pairwise-b", sector_identifier_uri="https://other-sector.example") as b, \
            relying_party(federation, "public-c", subject_type="public") as c:
        subjects = []
        for rp in (a, b, c):
            sign_in(browser, rp)
            assert rp.last.id_token_claims is not None
            subjects.append(rp.last.id_token_claims["sub"])

        assert len(set(subjects)) == 3


def test_prompt_login_and_max_age_zero_go_upstream_again(federation: Federation, browser: Browser) -> None:
    with relying_party(federation) as rp:
        sign_in(browser, rp)
        sign_in(browser, rp, prompt="login")
        assert federation.provider.last_authorization.get("prompt") == "login"
        sign_in(browser, rp, max_age="0")

        assert federation.provider.hits("authorize") == 3
        assert all(o.error is None for o in rp.outcomes)


def test_wishes_travel_upstream_and_acr_is_reported_truthfully(federation: Federation, browser: Browser) -> None:
    federation.provider.settings = dataclasses.replace(federation.provider.settings, acr="urn:city:loa:low")
    with relying_party(federation) as rp:
        sign_in(browser, rp, acr_values="urn:city:loa:high", login_hint="anna@example.org")

        asked = federation.provider.last_authorization
        assert asked["acr_values"] == "urn:city:loa:high" and asked["login_hint"] == "anna@example.org"
        assert rp.last.id_token_claims is not None
        assert rp.last.id_token_claims["acr"] == "urn:city:loa:low"  # what happened, not what was asked


def test_essential_acr_not_met_is_an_error_to_the_app(federation: Federation, browser: Browser) -> None:
    federation.provider.settings = dataclasses.replace(federation.provider.settings, acr="urn:city:loa:low")
    claims = '{"id_token": {"acr": {"essential": true, "values": ["urn:city:loa:high"]}}}'
    with relying_party(federation) as rp:
        sign_in(browser, rp, claims=claims)

        assert rp.last.error == "unmet_authentication_requirements"
        assert rp.last.token is None


def test_prompt_none_without_session_is_login_required(federation: Federation, browser: Browser) -> None:
    with relying_party(federation) as rp:
        sign_in(browser, rp, prompt="none")

        assert rp.last.error == "login_required"
        assert federation.provider.hits("authorize") == 0
        sign_in(browser, rp)
        sign_in(browser, rp, prompt="none")  # with a session: a silent sign-in
        assert rp.last.error is None and federation.provider.hits("authorize") == 1


def test_refresh_tokens_rotate(federation: Federation, browser: Browser) -> None:
    with relying_party(federation, grant_types=["authorization_code", "refresh_token"]) as rp:
        sign_in(browser, rp)
        assert rp.last.token is not None
        first = rp.last.token["refresh_token"]
        token_url = f"{federation.url}/oidc/token"
        auth = (rp.client_id, rp.secret or "")

        renewed = requests.post(token_url, data={"grant_type": "refresh_token", "refresh_token": first},
                                auth=auth, timeout=10)
        assert renewed.status_code == 200, renewed.text
        body = renewed.json()
        assert body["refresh_token"] != first and body["access_token"]
        claims = _verified(federation, body["id_token"])
        assert claims["sub"] == rp.last.id_token_claims["sub"]  # type: ignore[index]
        assert "nonce" not in claims  # OIDC Core §12.2
        userinfo = requests.get(f"{federation.url}/oidc/userinfo",
                                headers={"Authorization": f"Bearer {body['access_token']}"}, timeout=10)
        assert userinfo.status_code == 200 and userinfo.json()["email"] == "anna@example.org"


def test_rp_initiated_logout_ends_the_session(federation: Federation, browser: Browser) -> None:
    post_logout = "http://127.0.0.1:9/signed-out"
    with relying_party(federation, post_logout_redirect_uris=[post_logout]) as rp:
        sign_in(browser, rp)
        assert rp.last.token is not None
        page = browser.get(f"{federation.url}/oidc/logout", params={
            "id_token_hint": rp.last.token["id_token"], "post_logout_redirect_uri": post_logout, "state": "s-1",
        }, follow=False)

        assert page.status_code == 303
        assert page.headers["Location"] == f"{post_logout}?state=s-1"
        engine = create_engine_for(federation.database_url)
        try:
            with engine.connect() as connection:
                account_id = connection.execute(select(AccountRow.account_id)).scalar_one()
        finally:
            engine.dispose()
        registry = federation.app.extensions["broker"].sso_sessions
        assert registry.active(account_id, utcnow()) == []  # no longer listed as active in the portal
        sign_in(browser, rp)
        assert federation.provider.hits("authorize") == 2  # the SSO session was gone


def press(browser: Browser, page: requests.Response, decision: str) -> requests.Response:
    """Press the form's ``decision`` button (the page has two buttons of that name)."""
    action = urljoin(page.url, lxml.html.fromstring(page.text).forms[0].action)
    return browser.post(action, {**browser.form_fields(page), "decision": decision}, initiator=page.url)


def test_logout_without_hint_asks_the_person(federation: Federation, browser: Browser) -> None:
    with relying_party(federation) as rp:
        sign_in(browser, rp)
        page = browser.get(f"{federation.url}/oidc/logout")
        assert page.status_code == 200 and "Sign out?" in page.text
        assert "still signed in" in press(browser, page, "stay").text
        sign_in(browser, rp, prompt="none")
        assert rp.last.error is None  # still signed in

        page = browser.get(f"{federation.url}/oidc/logout")
        forged = browser.post(urljoin(page.url, lxml.html.fromstring(page.text).forms[0].action),
                              {"decision": "logout"}, initiator=page.url)  # without the page's CSRF token
        assert forged.status_code == 400
        assert "signed out" in press(browser, page, "logout").text
        sign_in(browser, rp, prompt="none")
        assert rp.last.error == "login_required"


def _verified(federation: Federation, id_token: str) -> dict[str, object]:
    keys = KeySet.import_key_set(requests.get(f"{federation.url}/oidc/jwks", timeout=10).json())
    token = jwt.decode(id_token, keys, algorithms=["RS256", "ES256"])
    assert token.claims["iss"] == federation.url
    assert token.claims["exp"] > utcnow().timestamp()
    return dict(token.claims)


def test_query_of_the_redirect_uri_is_kept(federation: Federation, browser: Browser) -> None:
    with relying_party(federation) as rp:
        page = browser.get(f"{rp.url}/login", follow=False)
        location = page.headers["Location"]
        query = parse_qs(urlsplit(location).query)
        assert query["code_challenge_method"] == ["S256"] and query["response_type"] == ["code"]


def test_back_channel_errors_are_json_even_before_routing(federation: Federation) -> None:
    """A program reading the token endpoint must never get an HTML page, not even for a wrong method."""
    for method, path in (("GET", "/oidc/token"), ("PUT", "/oidc/userinfo"), ("GET", "/oidc/revoke")):
        response = requests.request(method, f"{federation.url}{path}", timeout=10)
        assert response.status_code == 405
        assert response.headers["Content-Type"].startswith("application/json")
        assert response.json()["error"] == "invalid_request"
