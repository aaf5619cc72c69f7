"""Attacks on the broker as an OpenID Provider, front channel: the authorization request, consent, UserInfo
and RP-initiated logout, each against the running broker over HTTP (the token endpoint, client assertions and
introspection are in ``test_attack_oidc_tokens.py``, which shares the helpers below).

Each test breaks one rule and asserts the exact refusal, to the right party: a readable page while the
client's redirect URI is not known to be registered (no redirect anywhere, RFC 6749 §4.1.2.1, §10.15), an
error at the redirect URI with ``state`` and ``iss`` after that, JSON with ``WWW-Authenticate`` at the
back-channel endpoints; and that nothing was issued and no live session or token was lost.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

import lxml.html  # type: ignore[import-untyped]
import pytest
import requests
from joserfc import jwt
from joserfc.jwk import ECKey

from tests.flows.federation import Federation
from tests.peers.browser import Browser
from tests.peers.servers import closed_port_url
from tests.security.attack_support import assert_page, query_of
from tests.security.oidc_provider_support import (
    TIMEOUT,
    Client,
    Pkce,
    assert_clean,
    assert_oauth_error,
    authorize,
    authorize_url,
    b64,
    client,
    code_for,
    payload,
    redeem,
    redirect_fields,
    token_request,
    tokens,
    unsigned_jwt,
    userinfo,
)


def assert_error_page(answer: requests.Response, *never: str | None) -> None:
    """A page for the person (400): no redirect, no form to anywhere, a support reference."""
    assert "Location" not in answer.headers
    assert_page(answer, 400)
    assert_clean(answer, *never)


def assert_error_to_client(answer: requests.Response, c: Client, federation: Federation, error: str,
                           state: str = "st-1") -> None:
    """RFC 6749 §4.1.2.1 with RFC 9207 ``iss``: the error at the registered redirect URI, and no code."""
    fields = redirect_fields(answer, c)
    assert fields.get("error") == error, fields
    assert fields["state"] == state and fields["iss"] == federation.url
    assert "code" not in fields
    assert_clean(answer)


def session_alive(browser: Browser, federation: Federation, c: Client) -> bool:
    """A silent sign-in (prompt=none): a code while the SSO session lives, login_required after."""
    fields = redirect_fields(authorize(browser, federation, c, {"prompt": "none"}), c)
    assert fields.get("error") in (None, "login_required"), fields
    return "code" in fields


# -- the authorization request: before the redirect URI is trusted, a page ---------------------------------
def _variants(uri: str) -> list[str]:
    parts = urlsplit(uri)
    other_port = f"{parts.scheme}://{parts.hostname}:{(parts.port or 80) + 1}{parts.path}"
    return [
        uri + "/evil",  # suffix: a path the client does not control
        uri[:-1],  # prefix
        uri + "?next=http://127.0.0.1:9/steal",  # an added query
        uri + "#frag",
        other_port,
        uri.replace("http://", "https://", 1),
        uri.replace("127.0.0.1", "localhost", 1),
        uri.upper().replace("HTTP://", "http://"),
        "http://127.0.0.1:9/steal",
        "",
    ]


def test_unregistered_redirect_uri_is_a_page_never_a_redirect(federation: Federation, browser: Browser) -> None:
    c = client(federation)
    for uri in _variants(c.redirect_uri):
        answer = browser.get(authorize_url(federation, c, {"redirect_uri": uri or None}), follow=False)
        assert_error_page(answer)
        assert "st-1" not in answer.text
    # even with every other parameter also wrong, nothing goes to the attacker's URI
    answer = browser.get(authorize_url(federation, c, {"redirect_uri": "http://127.0.0.1:9/steal",
                                                       "response_type": "token", "scope": "email"}), follow=False)
    assert_error_page(answer)
    assert federation.provider.hits("authorize") == 0


def test_unknown_or_missing_client_id_is_a_page(federation: Federation, browser: Browser) -> None:
    c = client(federation)
    for client_id in ("not-registered", "city-app ", "CITY-APP", None):
        answer = browser.get(authorize_url(federation, c, {"client_id": client_id}), follow=False)
        assert_error_page(answer)
    assert federation.provider.hits("authorize") == 0


@pytest.mark.parametrize("repeated", ["client_id", "redirect_uri"])
def test_repeated_client_id_or_redirect_uri_is_a_page(federation: Federation, browser: Browser,
                                                      repeated: str) -> None:
    """RFC 6749 §3.1: parameters must not be repeated; which copy would be "the" value is the attack."""
    c = client(federation)
    other = client(federation, "other-app")
    url = authorize_url(federation, c) + "&" + urlencode({repeated: getattr(other, repeated)})
    answer = browser.get(url, follow=False)
    assert_error_page(answer)
    # the same copy twice is no better
    answer = browser.get(authorize_url(federation, c) + "&" + urlencode({repeated: getattr(c, repeated)}),
                         follow=False)
    assert_error_page(answer)


def test_post_authorization_request_is_checked_the_same(federation: Federation, browser: Browser) -> None:
    c = client(federation)
    form = {"response_type": "code", "client_id": c.client_id, "redirect_uri": "http://127.0.0.1:9/steal",
            "scope": "openid", "state": "st-1"}
    assert_error_page(browser.post(f"{federation.url}/oidc/authorize", form, follow=False))
    # the refusal was the redirect URI's (a cross-site POST is accepted by design, OIDC Core §3.1.2.1)
    answer = browser.post(f"{federation.url}/oidc/authorize", {**form, "redirect_uri": c.redirect_uri,
                                                                "response_type": "token"}, follow=False)
    assert_error_to_client(answer, c, federation, "unsupported_response_type")


# -- the authorization request: after it, errors go back to the client ------------------------------------
REFUSED_PARAMETERS: list[tuple[dict[str, str | None], str]] = [
    ({"response_type": "token"}, "unsupported_response_type"),
    ({"response_type": "id_token"}, "unsupported_response_type"),
    ({"response_type": "code id_token"}, "unsupported_response_type"),
    ({"response_type": "code token"}, "unsupported_response_type"),
    ({"response_type": None}, "unsupported_response_type"),
    ({"scope": "profile email"}, "invalid_scope"),
    ({"scope": None}, "invalid_scope"),
    ({"scope": "openidprofile"}, "invalid_scope"),
    ({"code_challenge": "x" * 43, "code_challenge_method": "plain"}, "invalid_request"),
    ({"code_challenge": "x" * 43, "code_challenge_method": None}, "invalid_request"),  # defaults to plain
    ({"code_challenge_method": "S256"}, "invalid_request"),  # a method without a challenge
    ({"code_challenge": "short", "code_challenge_method": "S256"}, "invalid_request"),
    ({"code_challenge": "x" * 129, "code_challenge_method": "S256"}, "invalid_request"),
    ({"code_challenge": "a+b/" * 11, "code_challenge_method": "S256"}, "invalid_request"),
    ({"prompt": "none login"}, "invalid_request"),
    ({"prompt": "none consent"}, "invalid_request"),
    ({"prompt": "everything"}, "invalid_request"),
    ({"max_age": "-1"}, "invalid_request"),
    ({"max_age": "ten"}, "invalid_request"),
    ({"max_age": "1e3"}, "invalid_request"),
    ({"max_age": "99999999999"}, "invalid_request"),
    ({"claims": "{not json"}, "invalid_request"),
    ({"claims": "[1, 2]"}, "invalid_request"),
    ({"claims": '{"userinfo": "email"}'}, "invalid_request"),
    ({"claims": '{"id_token": {"email": true}}'}, "invalid_request"),
    ({"claims": '{"id_token": {"acr": {"values": [1]}}}'}, "invalid_request"),
    ({"claims": "[" * 5000 + "]" * 5000}, "invalid_request"),
    ({"response_mode": "fragment"}, "invalid_request"),
    ({"response_mode": "web_message"}, "invalid_request"),
    ({"request": unsigned_jwt({"redirect_uri": "http://127.0.0.1:9/steal", "scope": "openid"})},
     "request_not_supported"),
    ({"request_uri": "http://127.0.0.1:9/request.jwt"}, "request_uri_not_supported"),
    ({"registration": '{"redirect_uris": ["http://127.0.0.1:9/x"]}'}, "registration_not_supported"),
    ({"nonce": "n" * 513}, "invalid_request"),
]


@pytest.mark.parametrize(("params", "error"), REFUSED_PARAMETERS, ids=[
    f"{'+'.join(p)}={str(next(iter(p.values())))[:20]}" for p, _ in REFUSED_PARAMETERS])
def test_refused_request_goes_back_to_the_client(federation: Federation, browser: Browser,
                                                 params: dict[str, str | None], error: str) -> None:
    c = client(federation)
    answer = browser.get(authorize_url(federation, c, params), follow=False)
    assert_error_to_client(answer, c, federation, error)
    assert federation.provider.hits("authorize") == 0  # refused before anyone was sent upstream
    assert federation.accounts() == 0


def test_repeated_other_parameter_goes_back_to_the_client(federation: Federation, browser: Browser) -> None:
    c = client(federation)
    answer = browser.get(authorize_url(federation, c) + "&scope=openid+phone", follow=False)
    assert_error_to_client(answer, c, federation, "invalid_request")


def test_public_client_must_use_pkce(federation: Federation, browser: Browser) -> None:
    c = client(federation, "spa", auth_method="none")
    answer = browser.get(authorize_url(federation, c), follow=False)
    assert_error_to_client(answer, c, federation, "invalid_request")
    assert federation.provider.hits("authorize") == 0
    # with S256 it signs in: the refusal was about PKCE, nothing else
    assert code_for(browser, federation, c, pkce=Pkce.new())


def test_error_reply_keeps_the_registered_query_and_form_post(federation: Federation, browser: Browser) -> None:
    """An error goes to the exact registered URI (its own query kept) and in the response mode asked for."""
    base = f"{closed_port_url()}/cb?tenant=7"
    c = client(federation, redirect_uri=base)
    answer = browser.get(authorize_url(federation, c, {"response_type": "token"}), follow=False)
    location = answer.headers["Location"]
    assert location.startswith(base + "&") and query_of(location)["error"] == "unsupported_response_type"

    answer = browser.get(authorize_url(federation, c, {"response_type": "token", "response_mode": "form_post"}),
                         follow=False)
    assert answer.status_code == 200 and "Location" not in answer.headers
    assert lxml.html.fromstring(answer.text).forms[0].action == base
    assert browser.form_fields(answer)["error"] == "unsupported_response_type"


def test_overlong_state_is_not_reflected(federation: Federation, browser: Browser) -> None:
    c = client(federation)
    answer = browser.get(authorize_url(federation, c, {"state": "s" * 3000}), follow=False)
    fields = redirect_fields(answer, c)
    assert fields["error"] == "invalid_request" and "state" not in fields


def test_scopes_the_client_is_not_registered_for_are_dropped(federation: Federation, browser: Browser) -> None:
    c = client(federation, scope="openid email")
    body = tokens(browser, federation, c, {"scope": "openid email phone address profile"})
    assert body["scope"] == "openid email"
    claims = userinfo(federation, body["access_token"]).json()
    assert set(claims) <= {"sub", "email", "email_verified"} and "email" in claims


# -- consent ------------------------------------------------------------------------------------------------
def _consent_page(browser: Browser, federation: Federation, c: Client) -> requests.Response:
    page = authorize(browser, federation, c, {"prompt": "consent"})
    assert page.status_code == 200 and "<form" in page.text, page.text[:500]
    return page


def _press(browser: Browser, page: requests.Response, decision: str) -> requests.Response:
    action = urljoin(page.url, lxml.html.fromstring(page.text).forms[0].action)
    return browser.post(action, {**browser.form_fields(page), "decision": decision}, initiator=page.url,
                        follow=False)


def test_consent_lists_the_claims_and_deny_is_access_denied(federation: Federation, browser: Browser) -> None:
    c = client(federation, client_name="Parking permits", scope="openid email")
    page = _consent_page(browser, federation, c)
    # optional claims are unticked checkboxes (GDPR: consent is opted into), required ones a list
    items = [label.text_content().strip() for label in lxml.html.fromstring(page.text).xpath("//main//label")]
    assert "e-mail address" in items, items
    assert "Parking permits" in page.text
    assert not any("name" in item for item in items), items  # only what the scope allows: no profile

    declined = _press(browser, page, "deny")  # the sentence first (issue 20), then "Return to the app"
    assert declined.status_code == 200 and "so you were not signed in to Parking permits" in declined.text
    returned = browser.post(urljoin(declined.url, lxml.html.fromstring(declined.text).forms[0].action),
                            browser.form_fields(declined), initiator=declined.url, follow=False)
    assert_error_to_client(returned, c, federation, "access_denied")
    # the handle is gone: pressing again does not turn the refusal into a code
    again = _press(browser, page, "allow")
    assert_error_page(again)


def test_consent_allow_completes(federation: Federation, browser: Browser) -> None:
    c = client(federation)
    page = _consent_page(browser, federation, c)
    fields = redirect_fields(_press(browser, page, "allow"), c)
    assert fields["state"] == "st-1" and fields["iss"] == federation.url
    answer = token_request(federation, c, {"grant_type": "authorization_code", "code": fields["code"],
                                           "redirect_uri": c.redirect_uri})
    assert answer.status_code == 200, answer.text


def test_consent_handle_from_another_browser_is_refused(federation: Federation, browser: Browser) -> None:
    """The attacker signs in too and so has its own session and a valid CSRF token: only the handle is the
    victim's. It is bound to the victim's browser."""
    c = client(federation)
    victim_page = _consent_page(browser, federation, c)
    victim_action = urljoin(victim_page.url, lxml.html.fromstring(victim_page.text).forms[0].action)
    with Browser() as attacker:
        own_page = _consent_page(attacker, federation, c)
        token = attacker.form_fields(own_page)["csrf_token"]
        stolen = attacker.post(victim_action, {"csrf_token": token, "decision": "allow"}, initiator=own_page.url,
                               follow=False)
        assert_error_page(stolen)
        # without its own token it is the CSRF check that refuses
        assert attacker.post(victim_action, {"decision": "allow"}, initiator=own_page.url,
                             follow=False).status_code == 400
    # the victim's consent was not consumed by the attempt
    fields = redirect_fields(_press(browser, victim_page, "allow"), c)
    assert "code" in fields


# -- UserInfo -------------------------------------------------------------------------------------------------
def test_userinfo_without_token_is_a_bearer_challenge(federation: Federation) -> None:
    for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": "Basic dXNlcjpwYXNz"}):
        answer = requests.get(f"{federation.url}/oidc/userinfo", headers=headers, timeout=TIMEOUT)
        assert answer.status_code == 401, answer.text
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
        assert_clean(answer)


def test_userinfo_refuses_every_token_but_an_access_token(federation: Federation, browser: Browser) -> None:
    c = client(federation, grant_types=["authorization_code", "refresh_token"])
    body = tokens(browser, federation, c)
    code = code_for(browser, federation, c)  # a live, unredeemed code
    access = body["access_token"]
    tampered = access[:-2] + ("AA" if not access.endswith("AA") else "BB")
    for wrong in (body["refresh_token"], body["id_token"], code, tampered, "x" * 600, access + " " + access):
        answer = userinfo(federation, wrong)
        assert answer.status_code == 401, (wrong[:20], answer.text)
        assert answer.json()["error"] == "invalid_token"
        assert 'error="invalid_token"' in answer.headers["WWW-Authenticate"]
        assert_clean(answer, access, body["refresh_token"])
    assert userinfo(federation, access).status_code == 200  # the real one works: the refusals were about tokens
    # the code the test used as a bearer is still a code
    assert redeem(federation, c, code).status_code == 200


def test_userinfo_token_in_the_query_is_not_accepted(federation: Federation, browser: Browser) -> None:
    """RFC 6750 §2.3 is refused: URLs end up in logs and Referer headers."""
    c = client(federation)
    access = tokens(browser, federation, c)["access_token"]
    for method in ("GET", "POST"):
        answer = requests.request(method, f"{federation.url}/oidc/userinfo", params={"access_token": access},
                                  timeout=TIMEOUT)
        assert answer.status_code == 401 and "sub" not in answer.json()
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    # in a form body (RFC 6750 §2.2) it is accepted, but not twice
    assert requests.post(f"{federation.url}/oidc/userinfo", data={"access_token": access},
                         timeout=TIMEOUT).status_code == 200
    twice = requests.post(f"{federation.url}/oidc/userinfo", data={"access_token": access},
                          headers={"Authorization": f"Bearer {access}"}, timeout=TIMEOUT)
    assert_oauth_error(twice, 400, "invalid_request", access)


def test_userinfo_gives_each_client_its_own_subject_and_scope(federation: Federation, browser: Browser) -> None:
    a = client(federation, "app-a", scope="openid email")
    b = client(federation, "app-b", scope="openid profile", sector_identifier_uri="https://other-sector.example")
    token_a, token_b = tokens(browser, federation, a), tokens(browser, federation, b)
    info_a, info_b = userinfo(federation, token_a["access_token"]).json(), userinfo(federation,
                                                                                     token_b["access_token"]).json()

    assert info_a["sub"] != info_b["sub"]
    assert info_a["sub"] == payload(token_a["id_token"])["sub"] and info_b["sub"] == payload(token_b["id_token"])["sub"]
    assert info_a["email"] == "anna@example.org" and "given_name" not in info_a and "name" not in info_a
    assert info_b["given_name"] == "Anna" and "email" not in info_b


def test_revoked_access_token_is_dead_but_only_its_own_client_may_revoke(federation: Federation,
                                                                          browser: Browser) -> None:
    owner, other = client(federation), client(federation, "other-app")
    access = tokens(browser, federation, owner)["access_token"]

    by_other = requests.post(f"{federation.url}/oidc/revoke", data={"token": access},
                             auth=(other.client_id, other.secret or ""), timeout=TIMEOUT)
    assert by_other.status_code == 200 and by_other.json() == {}  # RFC 7009 §2.2: nothing to probe
    assert userinfo(federation, access).status_code == 200

    wrong_secret = requests.post(f"{federation.url}/oidc/revoke", data={"token": access},
                                 auth=(owner.client_id, "not-the-secret"), timeout=TIMEOUT)
    assert_oauth_error(wrong_secret, 401, "invalid_client", access)
    assert userinfo(federation, access).status_code == 200

    by_owner = requests.post(f"{federation.url}/oidc/revoke", data={"token": access},
                             auth=(owner.client_id, owner.secret or ""), timeout=TIMEOUT)
    assert by_owner.status_code == 200
    answer = userinfo(federation, access)
    assert answer.status_code == 401 and answer.json()["error"] == "invalid_token"


# -- RP-initiated logout ------------------------------------------------------------------------------------
POST_LOGOUT = "http://127.0.0.1:9/signed-out"


def _signed_in(browser: Browser, federation: Federation) -> tuple[Client, dict[str, Any]]:
    c = client(federation, post_logout_redirect_uris=[POST_LOGOUT])
    return c, tokens(browser, federation, c)


def _logout(browser: Browser, federation: Federation, **params: str) -> requests.Response:
    return browser.get(f"{federation.url}/oidc/logout", params=params, follow=False)


def test_unregistered_post_logout_redirect_uri_is_a_page(federation: Federation, browser: Browser) -> None:
    c, body = _signed_in(browser, federation)
    for target in ("http://127.0.0.1:9/steal", POST_LOGOUT + "/x", POST_LOGOUT + "?a=1", c.redirect_uri):
        for params in ({"id_token_hint": body["id_token"]}, {"client_id": c.client_id}, {}):
            answer = _logout(browser, federation, post_logout_redirect_uri=target, **params)
            assert_error_page(answer)
    assert session_alive(browser, federation, c)


def _foreign_key_token(claims: Mapping[str, Any]) -> str:
    key = ECKey.generate_key("P-256")
    return jwt.encode({"alg": "ES256", "kid": "broker-key-1"}, dict(claims), key)


def test_forged_id_token_hint_is_a_page_and_the_session_lives(federation: Federation, browser: Browser) -> None:
    c, body = _signed_in(browser, federation)
    real = body["id_token"]
    claims = payload(real)
    header, _, signature = real.split(".")
    forgeries = {
        "alg none": unsigned_jwt(claims),
        "foreign key": _foreign_key_token(claims),
        "tampered payload": f"{header}.{b64(json.dumps({**claims, 'sid': 'other'}).encode())}.{signature}",
        "no signature": f"{header}.{real.split('.')[1]}.",
        "garbage": "a.b.c",
    }
    for name, hint in forgeries.items():
        answer = _logout(browser, federation, id_token_hint=hint, post_logout_redirect_uri=POST_LOGOUT)
        assert "Location" not in answer.headers, name
        assert_error_page(answer)
        assert session_alive(browser, federation, c), name


def test_hint_must_match_client_and_session(federation: Federation, browser: Browser) -> None:
    """A genuine ID token is no licence to sign someone else out, nor to borrow another client's addresses."""
    c, body = _signed_in(browser, federation)
    other = client(federation, "other-app", post_logout_redirect_uris=["http://127.0.0.1:9/other-out"])
    answer = _logout(browser, federation, id_token_hint=body["id_token"], client_id=other.client_id,
                     post_logout_redirect_uri="http://127.0.0.1:9/other-out")
    assert_error_page(answer)
    assert session_alive(browser, federation, c)

    with Browser() as attacker:  # signs in on its own and sends the victim its own ID token as the hint
        own = tokens(attacker, federation, c)["id_token"]
    answer = _logout(browser, federation, id_token_hint=own, post_logout_redirect_uri=POST_LOGOUT)
    assert answer.status_code == 200 and "Location" not in answer.headers and "Sign out?" in answer.text
    assert session_alive(browser, federation, c)


def test_logout_without_hint_never_ends_the_session_by_itself(federation: Federation, browser: Browser) -> None:
    c, _ = _signed_in(browser, federation)
    for answer in (_logout(browser, federation),
                   _logout(browser, federation, client_id=c.client_id, post_logout_redirect_uri=POST_LOGOUT)):
        assert answer.status_code == 200 and "Location" not in answer.headers
        assert "Sign out?" in answer.text
    assert session_alive(browser, federation, c)
    # A cross-site POST (RP-Initiated Logout §2: the OP accepts POST) is answered like the GET: the
    # confirmation page, neither a sign-out nor a redirect.
    answer = browser.post(f"{federation.url}/oidc/logout",
                          {"client_id": c.client_id, "post_logout_redirect_uri": POST_LOGOUT}, follow=False)
    assert answer.status_code == 200 and "Location" not in answer.headers and "Sign out?" in answer.text
    assert_clean(answer)
    assert session_alive(browser, federation, c)

    page = _logout(browser, federation)
    action = urljoin(page.url, lxml.html.fromstring(page.text).forms[0].action)
    forged = browser.post(action, {"decision": "logout"}, initiator=page.url, follow=False)  # no CSRF token
    assert forged.status_code == 400 and "Traceback" not in forged.text
    assert session_alive(browser, federation, c)
    with Browser() as attacker:  # the handle belongs to the victim's browser
        assert attacker.post(action, {"decision": "logout"}, initiator=page.url, follow=False).status_code == 400
    assert session_alive(browser, federation, c)
