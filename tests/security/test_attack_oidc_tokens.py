"""Attacks on the broker's OpenID Provider back channel: the token endpoint (codes, PKCE, client
authentication, refresh rotation), ``private_key_jwt`` client assertions and introspection.

Every code here comes from a real sign-in (browser -> broker -> demo OpenID provider -> broker) whose answer
goes to a redirect URI on a closed port: the test reads the code from the Location header, so only the test
ever redeems it. Each test asserts the exact refusal and that nothing was issued; where the rule says so, that
what was issued before is revoked (RFC 6749 §4.1.2, RFC 9700 §4.14.2), and otherwise that the legitimate
client lost nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey
from sqlalchemy import select

from broker.core.model import utcnow
from broker.storage import create_engine_for
from broker.storage.tables import AuditEventRow
from tests.flows.federation import Federation, FixedClock
from tests.peers.browser import Browser
from tests.security.oidc_provider_support import (
    TIMEOUT,
    Client,
    Pkce,
    assert_oauth_error,
    b64,
    client,
    code_for,
    payload,
    redeem,
    token_request,
    tokens,
    unsigned_jwt,
    userinfo,
)

REFRESHING: dict[str, Any] = {"grant_types": ["authorization_code", "refresh_token"]}
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def _refresh(federation: Federation, c: Client, refresh_token: str, **extra: str) -> requests.Response:
    return token_request(federation, c, {"grant_type": "refresh_token", "refresh_token": refresh_token, **extra})


def _assert_dead(federation: Federation, c: Client, body: Mapping[str, Any]) -> None:
    """Every token of a token response no longer works."""
    answer = userinfo(federation, body["access_token"])
    assert answer.status_code == 401 and answer.json()["error"] == "invalid_token"
    if "refresh_token" in body:
        assert_oauth_error(_refresh(federation, c, body["refresh_token"]), 400, "invalid_grant")


def _assert_alive(federation: Federation, body: Mapping[str, Any]) -> None:
    assert userinfo(federation, body["access_token"]).status_code == 200


def _audit_kinds(federation: Federation) -> list[tuple[str, str | None]]:
    engine = create_engine_for(federation.database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(select(AuditEventRow).order_by(AuditEventRow.id)).all()
    finally:
        engine.dispose()
    return [(row.kind, row.reason) for row in rows]


# -- codes --------------------------------------------------------------------------------------------------
def test_code_replay_revokes_what_the_first_use_issued(federation: Federation, browser: Browser) -> None:
    c = client(federation, **REFRESHING)
    pkce = Pkce.new()
    code = code_for(browser, federation, c, pkce=pkce)
    first = redeem(federation, c, code, pkce)
    assert first.status_code == 200, first.text
    body = first.json()
    _assert_alive(federation, body)

    replay = redeem(federation, c, code, pkce)
    assert_oauth_error(replay, 400, "invalid_grant", code, c.secret, body["access_token"])
    assert "access_token" not in replay.json()
    _assert_dead(federation, c, body)
    kinds = _audit_kinds(federation)
    assert [k for k, _ in kinds].count("grant-revoked") == 1, kinds
    assert code not in json.dumps(kinds)  # the log names the event, not the credential


def test_expired_code_is_invalid_grant(federation: Federation, browser: Browser) -> None:
    c = client(federation)
    late, in_time = code_for(browser, federation, c), code_for(browser, federation, c)
    issued = utcnow()
    federation.set_clock(FixedClock(issued + timedelta(seconds=50)))
    assert redeem(federation, c, in_time).status_code == 200  # the lifetime is 60 s: this one is in time
    federation.set_clock(FixedClock(issued + timedelta(seconds=61)))
    answer = redeem(federation, c, late)
    assert_oauth_error(answer, 400, "invalid_grant", late, c.secret)


@pytest.mark.parametrize("case", ["missing", "another", "one character off", "not ascii", "too short"])
def test_pkce_verifier_must_match(federation: Federation, browser: Browser, case: str) -> None:
    c = client(federation)
    pkce = Pkce.new()
    code = code_for(browser, federation, c, pkce=pkce)
    last = "B" if pkce.verifier.endswith("A") else "A"
    sent = {"missing": None, "another": Pkce.new().verifier, "one character off": pkce.verifier[:-1] + last,
            "not ascii": "é" * 50, "too short": pkce.verifier[:42]}[case]
    answer = redeem(federation, c, code) if sent is None else redeem(federation, c, code, code_verifier=sent)
    assert_oauth_error(answer, 400, "invalid_grant", code, pkce.verifier)
    # the code is spent: whoever tried cannot try again, not even with the right verifier
    assert_oauth_error(redeem(federation, c, code, pkce), 400, "invalid_grant")


def test_verifier_without_challenge_is_invalid_grant(federation: Federation, browser: Browser) -> None:
    """RFC 9700 §4.8.2: a verifier where no challenge was sent is a PKCE downgrade."""
    c = client(federation)
    code = code_for(browser, federation, c)  # a confidential client may leave PKCE out
    answer = redeem(federation, c, code, code_verifier=Pkce.new().verifier)
    assert_oauth_error(answer, 400, "invalid_grant", code)


@pytest.mark.parametrize("redirect_uri", [None, "other", "suffix"])
def test_redirect_uri_must_be_the_authorization_requests(federation: Federation, browser: Browser,
                                                         redirect_uri: str | None) -> None:
    c = client(federation)
    code = code_for(browser, federation, c)
    data = {"grant_type": "authorization_code", "code": code}
    if redirect_uri is not None:
        data["redirect_uri"] = {"other": "http://127.0.0.1:9/cb", "suffix": c.redirect_uri + "/"}[redirect_uri]
    answer = token_request(federation, c, data)
    assert_oauth_error(answer, 400, "invalid_grant", code)


def test_another_clients_code_is_refused_and_revokes_the_victims_grant(federation: Federation,
                                                                        browser: Browser) -> None:
    victim, thief = client(federation, "victim", **REFRESHING), client(federation, "thief")
    # an unredeemed code: the thief is refused and the victim cannot use it any more
    code = code_for(browser, federation, victim)
    answer = token_request(federation, thief, {"grant_type": "authorization_code", "code": code,
                                               "redirect_uri": victim.redirect_uri})
    assert_oauth_error(answer, 400, "invalid_grant", code, victim.secret, thief.secret)
    assert_oauth_error(redeem(federation, victim, code), 400, "invalid_grant")

    # a redeemed one: the tokens the victim got are revoked
    code = code_for(browser, federation, victim)
    issued = redeem(federation, victim, code).json()
    answer = token_request(federation, thief, {"grant_type": "authorization_code", "code": code,
                                               "redirect_uri": thief.redirect_uri})
    assert_oauth_error(answer, 400, "invalid_grant", code, issued["access_token"])
    _assert_dead(federation, victim, issued)


# -- client authentication ----------------------------------------------------------------------------------
def _assert_invalid_client(answer: requests.Response, *never: str | None) -> None:
    """RFC 6749 §5.2: 401 with a challenge, one description for every reason."""
    assert_oauth_error(answer, 401, "invalid_client", *never)
    assert answer.headers["WWW-Authenticate"].startswith("Basic")
    assert answer.json()["error_description"] == "client authentication failed"


def test_wrong_secret_is_invalid_client_and_the_code_survives(federation: Federation, browser: Browser) -> None:
    c = client(federation)
    code = code_for(browser, federation, c)
    for wrong in ("not-the-secret", "", (c.secret or "") + "x", (c.secret or "")[:-1]):
        _assert_invalid_client(token_request(federation, c, {"grant_type": "authorization_code", "code": code,
                                                             "redirect_uri": c.redirect_uri}, secret=wrong),
                               code, c.secret)
    no_auth = requests.post(f"{federation.url}/oidc/token", timeout=TIMEOUT, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": c.redirect_uri, "client_id": c.client_id})
    _assert_invalid_client(no_auth, code)
    unknown = requests.post(f"{federation.url}/oidc/token", auth=("no-such-app", c.secret or ""), timeout=TIMEOUT,
                            data={"grant_type": "authorization_code", "code": code, "redirect_uri": c.redirect_uri})
    _assert_invalid_client(unknown, code, c.secret)
    # the refusals spent nothing: the real client still gets its tokens
    assert redeem(federation, c, code).status_code == 200
    kinds = _audit_kinds(federation)
    # one record per window and client, however many failed (issue 15, point 4; broker.core.audit_throttle)
    assert [(k, r) for k, r in kinds if k == "client-auth-failed"] == [
        ("client-auth-failed", "oidc_api.token: client authentication failed"),
        ("client-auth-failed", "oidc_api.token: unknown client")], kinds
    assert (c.secret or "") not in json.dumps(kinds) and code not in json.dumps(kinds)


def test_client_must_use_its_registered_method(federation: Federation, browser: Browser) -> None:
    post = client(federation, "posting-app", auth_method="client_secret_post")
    basic = client(federation, "basic-app")
    public = client(federation, "spa", auth_method="none")
    post_code, basic_code = code_for(browser, federation, post), code_for(browser, federation, basic)
    pkce = Pkce.new()
    public_code = code_for(browser, federation, public, pkce=pkce)

    def data(c: Client, code: str) -> dict[str, str]:
        return {"grant_type": "authorization_code", "code": code, "redirect_uri": c.redirect_uri}

    _assert_invalid_client(token_request(federation, post, data(post, post_code), basic=True), post.secret)
    _assert_invalid_client(token_request(federation, basic, data(basic, basic_code), basic=False), basic.secret)
    # a public client that suddenly has a secret, or a confidential one that sends none
    _assert_invalid_client(requests.post(f"{federation.url}/oidc/token", auth=(public.client_id, "made-up"),
                                         data={**data(public, public_code), "code_verifier": pkce.verifier},
                                         timeout=TIMEOUT))
    _assert_invalid_client(requests.post(f"{federation.url}/oidc/token", timeout=TIMEOUT,
                                         data={**data(basic, basic_code), "client_id": basic.client_id}))
    for c, code, extra in ((post, post_code, {}), (basic, basic_code, {}),
                           (public, public_code, {"code_verifier": pkce.verifier})):
        assert token_request(federation, c, {**data(c, code), **extra}).status_code == 200


def test_two_authentication_methods_at_once_are_invalid_client(federation: Federation, browser: Browser) -> None:
    """RFC 6749 §2.3: a client must not use more than one method in a request."""
    c = client(federation)
    code = code_for(browser, federation, c)
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": c.redirect_uri}
    both = requests.post(f"{federation.url}/oidc/token", auth=(c.client_id, c.secret or ""), timeout=TIMEOUT,
                         data={**form, "client_id": c.client_id, "client_secret": c.secret})
    _assert_invalid_client(both, c.secret, code)
    with_assertion = requests.post(f"{federation.url}/oidc/token", auth=(c.client_id, c.secret or ""),
                                   timeout=TIMEOUT, data={**form, "client_assertion_type": JWT_BEARER,
                                                          "client_assertion": unsigned_jwt({"sub": c.client_id})})
    _assert_invalid_client(with_assertion, c.secret, code)
    other_id = requests.post(f"{federation.url}/oidc/token", auth=(c.client_id, c.secret or ""), timeout=TIMEOUT,
                             data={**form, "client_id": "someone-else"})
    _assert_invalid_client(other_id, c.secret, code)
    assert redeem(federation, c, code).status_code == 200


@pytest.mark.parametrize("grant_type", [
    "password", "implicit", "token", "", "urn:ietf:params:oauth:grant-type:jwt-bearer",
    "urn:ietf:params:oauth:grant-type:device_code", "urn:ietf:params:oauth:grant-type:token-exchange"])
def test_unsupported_grant_types(federation: Federation, grant_type: str) -> None:
    c = client(federation)
    answer = token_request(federation, c, {"grant_type": grant_type, "username": "anna",
                                           "password": "correct horse", "scope": "openid"})
    assert_oauth_error(answer, 400, "unsupported_grant_type", c.secret, "correct horse")


def test_an_app_gets_no_client_credentials_token(federation: Federation) -> None:
    """client_credentials is only for automation clients (issue 19, RFC 6749 §4.4): an app's secret opens no admin
    API, whatever scope it asks for (RFC 6749 §5.2 ``unauthorized_client``)."""
    c = client(federation)
    for scope in ({}, {"scope": "admin:view-audit"}, {"scope": "openid"}):
        answer = token_request(federation, c, {"grant_type": "client_credentials", **scope})
        assert_oauth_error(answer, 400, "unauthorized_client", c.secret)


def test_missing_grant_type_or_code(federation: Federation) -> None:
    c = client(federation)
    assert_oauth_error(token_request(federation, c, {"code": "x"}), 400, "unsupported_grant_type")
    assert_oauth_error(token_request(federation, c, {"grant_type": "authorization_code"}), 400, "invalid_request")
    assert_oauth_error(token_request(federation, c, {"grant_type": "authorization_code", "code": "x" * 600}), 400,
                       "invalid_request")
    assert_oauth_error(token_request(federation, c, {"grant_type": "authorization_code", "code": "made-up"}), 400,
                       "invalid_grant")


def test_non_form_body_is_invalid_request(federation: Federation, browser: Browser) -> None:
    """RFC 6749 §3.2: the token endpoint reads application/x-www-form-urlencoded only."""
    c = client(federation)
    code = code_for(browser, federation, c)
    fields = {"grant_type": "authorization_code", "code": code, "redirect_uri": c.redirect_uri}
    url, auth = f"{federation.url}/oidc/token", (c.client_id, c.secret or "")
    for answer in (requests.post(url, json=fields, auth=auth, timeout=TIMEOUT),
                   requests.post(url, files={k: (None, v) for k, v in fields.items()}, auth=auth, timeout=TIMEOUT),
                   requests.post(url, params=fields, auth=auth, timeout=TIMEOUT),
                   requests.post(url, data=b"\xff\xfe", auth=auth, timeout=TIMEOUT,
                                 headers={"Content-Type": "text/plain"})):
        assert_oauth_error(answer, 400, "invalid_request", code, c.secret)
    get = requests.get(url, params=fields, auth=auth, timeout=TIMEOUT)
    assert_oauth_error(get, 405, "invalid_request", code, c.secret)
    assert "POST" in get.headers["Allow"]
    assert redeem(federation, c, code).status_code == 200  # none of them spent the code


@pytest.mark.parametrize("path", ["/oidc/token", "/oidc/revoke", "/oidc/introspect"])
def test_wrong_method_at_a_back_channel_endpoint_is_json(federation: Federation, path: str) -> None:
    """The callers of these endpoints are programs: their errors follow RFC 6749 §5.2, never a page."""
    answer = requests.get(f"{federation.url}{path}", timeout=TIMEOUT)
    assert_oauth_error(answer, 405, "invalid_request")


def test_repeated_parameters_are_invalid_request(federation: Federation, browser: Browser) -> None:
    """RFC 6749 §3.2 and §5.2: a parameter sent twice is ``invalid_request``, not "the first one wins" (a
    proxy that reads the last one would see another request than the broker)."""
    c = client(federation, **REFRESHING)
    code = code_for(browser, federation, c)
    url, auth = f"{federation.url}/oidc/token", (c.client_id, c.secret or "")
    form = [("grant_type", "authorization_code"), ("code", code), ("redirect_uri", c.redirect_uri)]
    for extra in ([("code", "made-up")], [("redirect_uri", "http://127.0.0.1:9/cb")], [("grant_type", "password")],
                  [("code", code)], [("client_id", c.client_id)] * 2):
        answer = requests.post(url, data=[*form, *extra], auth=auth, timeout=TIMEOUT)
        assert_oauth_error(answer, 400, "invalid_request", code, c.secret)
    body = redeem(federation, c, code).json()  # the refusals spent nothing
    for endpoint in ("revoke", "introspect"):
        answer = requests.post(f"{federation.url}/oidc/{endpoint}", auth=auth, timeout=TIMEOUT,
                               data=[("token", "made-up"), ("token", body["refresh_token"])])
        assert_oauth_error(answer, 400, "invalid_request", body["refresh_token"])
    _assert_alive(federation, body)
    twice = requests.post(f"{federation.url}/oidc/userinfo", timeout=TIMEOUT,
                          data=[("access_token", body["access_token"]), ("access_token", "made-up")])
    assert_oauth_error(twice, 400, "invalid_request", body["access_token"])


# -- refresh tokens -------------------------------------------------------------------------------------------
def test_refresh_token_reuse_revokes_the_whole_grant(federation: Federation, browser: Browser) -> None:
    c = client(federation, **REFRESHING)
    first = tokens(browser, federation, c)
    rotated = _refresh(federation, c, first["refresh_token"])
    assert rotated.status_code == 200, rotated.text
    second = rotated.json()
    assert second["refresh_token"] != first["refresh_token"]
    _assert_alive(federation, second)

    reuse = _refresh(federation, c, first["refresh_token"])  # the old one, copied by a thief
    assert_oauth_error(reuse, 400, "invalid_grant", first["refresh_token"], second["refresh_token"])
    assert "access_token" not in reuse.json()
    _assert_dead(federation, c, second)  # the newer refresh token and its access token too
    _assert_dead(federation, c, first)
    assert "grant-revoked" in [k for k, _ in _audit_kinds(federation)]


def test_revoking_a_refresh_token_ends_its_grant(federation: Federation, browser: Browser) -> None:
    """RFC 7009 §2.1: revoking a refresh token SHOULD invalidate the access tokens of the same grant; another
    client's attempt changes nothing."""
    c, other = client(federation, **REFRESHING), client(federation, "other-app", **REFRESHING)
    body = tokens(browser, federation, c)
    by_other = requests.post(f"{federation.url}/oidc/revoke", auth=(other.client_id, other.secret or ""),
                             data={"token": body["refresh_token"], "token_type_hint": "refresh_token"},
                             timeout=TIMEOUT)
    assert by_other.status_code == 200 and by_other.json() == {}
    _assert_alive(federation, body)
    by_owner = requests.post(f"{federation.url}/oidc/revoke", auth=(c.client_id, c.secret or ""),
                             data={"token": body["refresh_token"]}, timeout=TIMEOUT)
    assert by_owner.status_code == 200
    _assert_dead(federation, c, body)


def test_refresh_by_another_client_is_refused_and_revokes_the_grant(federation: Federation, browser: Browser) -> None:
    owner, thief = client(federation, "owner", **REFRESHING), client(federation, "thief", **REFRESHING)
    body = tokens(browser, federation, owner)
    answer = _refresh(federation, thief, body["refresh_token"])
    assert_oauth_error(answer, 400, "invalid_grant", body["refresh_token"], owner.secret, thief.secret)
    assert "access_token" not in answer.json()
    # the same words as for a made-up token: nothing to probe
    made_up = _refresh(federation, thief, secrets.token_urlsafe(32))
    assert made_up.json() == answer.json()
    # the token leaked: the owner's grant is revoked, as for a code presented by another client
    assert _refresh(federation, owner, body["refresh_token"]).json()["error"] == "invalid_grant"


def test_refresh_cannot_widen_the_scope_or_outlive_its_lifetime(federation: Federation, browser: Browser) -> None:
    c = client(federation, scope="openid email profile phone", **REFRESHING)
    body = tokens(browser, federation, c, {"scope": "openid email"})
    wider = _refresh(federation, c, body["refresh_token"], scope="openid email phone")
    assert_oauth_error(wider, 400, "invalid_scope", body["refresh_token"])
    assert _refresh(federation, c, body["refresh_token"], scope="openid").status_code == 200  # narrower is fine

    body = tokens(browser, federation, c)
    federation.set_clock(FixedClock(utcnow() + timedelta(days=15)))  # the default lifetime is 14 days
    assert_oauth_error(_refresh(federation, c, body["refresh_token"]), 400, "invalid_grant")


def test_refresh_token_of_a_client_not_registered_for_it(federation: Federation, browser: Browser) -> None:
    c = client(federation)
    body = tokens(browser, federation, c)
    assert "refresh_token" not in body
    answer = _refresh(federation, c, body["access_token"])  # an access token is not a refresh token either
    assert_oauth_error(answer, 400, "unauthorized_client", body["access_token"])


# -- private_key_jwt ----------------------------------------------------------------------------------------
def _jwt_client(federation: Federation, key: RSAKey | ECKey, alg: str = "RS256") -> Client:
    public = {**key.as_dict(private=False), "kid": "k1", "use": "sig", "alg": alg}
    return client(federation, "keyed-app", auth_method="private_key_jwt", jwks={"keys": [public]})


def _assertion_claims(federation: Federation, c: Client, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {"iss": c.client_id, "sub": c.client_id, "aud": f"{federation.url}/oidc/token", "iat": now,
              "exp": now + 60, "jti": secrets.token_urlsafe(16), **changes}
    return {k: v for k, v in claims.items() if v is not None}


def _sign(key: RSAKey | ECKey, claims: Mapping[str, Any], alg: str = "RS256", kid: str = "k1") -> str:
    return jwt.encode({"alg": alg, "kid": kid}, dict(claims), key, algorithms=[alg])


def _hs256(secret: bytes, claims: Mapping[str, Any]) -> str:
    signing_input = f"{b64(json.dumps({'alg': 'HS256', 'kid': 'k1'}).encode())}." \
                    f"{b64(json.dumps(dict(claims)).encode())}"
    return f"{signing_input}.{b64(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())}"


def _tampered(signed: str) -> str:
    """The same signature over a payload with a fresh ``jti`` (what a replay would try)."""
    header, _, signature = signed.split(".")
    return f"{header}.{b64(json.dumps({**payload(signed), 'jti': secrets.token_urlsafe(16)}).encode())}.{signature}"


def _redeem_with(federation: Federation, c: Client, code: str, assertion: str) -> requests.Response:
    return requests.post(f"{federation.url}/oidc/token", timeout=TIMEOUT, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": c.redirect_uri,
        "client_assertion_type": JWT_BEARER, "client_assertion": assertion})


def test_private_key_jwt_valid_assertion_once(federation: Federation, browser: Browser) -> None:
    key = RSAKey.generate_key(2048)
    c = _jwt_client(federation, key)
    code, other_code = code_for(browser, federation, c), code_for(browser, federation, c)
    assertion = _sign(key, _assertion_claims(federation, c))
    answer = _redeem_with(federation, c, code, assertion)
    assert answer.status_code == 200, answer.text
    assert payload(answer.json()["id_token"])["aud"] == c.client_id

    replayed = _redeem_with(federation, c, other_code, assertion)  # RFC 7523 §3 item 7: one use per jti
    _assert_invalid_client(replayed, other_code)
    fresh = _redeem_with(federation, c, other_code, _sign(key, _assertion_claims(federation, c)))
    assert fresh.status_code == 200, fresh.text  # the replay spent nothing


def test_private_key_jwt_forgeries_are_invalid_client(federation: Federation, browser: Browser) -> None:
    key, stranger = ECKey.generate_key("P-256"), ECKey.generate_key("P-256")
    c = _jwt_client(federation, key, "ES256")
    code = code_for(browser, federation, c)
    now = int(time.time())
    public_pem = key.as_pem(private=False)
    forgeries = {
        "alg none": unsigned_jwt(_assertion_claims(federation, c)),
        "HS256 keyed with the public key (PEM)": _hs256(public_pem, _assertion_claims(federation, c)),
        "HS256 keyed with the public JWK": _hs256(json.dumps(key.as_dict(private=False)).encode(),
                                                  _assertion_claims(federation, c)),
        "wrong aud": _sign(key, _assertion_claims(federation, c, aud="https://other.example/token"), "ES256"),
        "no aud": _sign(key, _assertion_claims(federation, c, aud=None), "ES256"),
        "expired": _sign(key, _assertion_claims(federation, c, iat=now - 600, exp=now - 300), "ES256"),
        "no exp": _sign(key, _assertion_claims(federation, c, exp=None), "ES256"),
        "exp far ahead": _sign(key, _assertion_claims(federation, c, exp=now + 86400), "ES256"),
        "no jti": _sign(key, _assertion_claims(federation, c, jti=None), "ES256"),
        "signed by another key": _sign(stranger, _assertion_claims(federation, c), "ES256"),
        "another kid": _sign(stranger, _assertion_claims(federation, c), "ES256", kid="k2"),
        "iss not the client": _sign(key, _assertion_claims(federation, c, iss="someone-else"), "ES256"),
        "tampered": _tampered(_sign(key, _assertion_claims(federation, c), "ES256")),
    }
    for name, assertion in forgeries.items():
        answer = _redeem_with(federation, c, code, assertion)
        assert answer.status_code == 401, (name, answer.text)
        _assert_invalid_client(answer, code)
    # the type must be jwt-bearer; a secret is no fallback for a private_key_jwt client
    wrong_type = requests.post(f"{federation.url}/oidc/token", timeout=TIMEOUT, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": c.redirect_uri,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:saml2-bearer",
        "client_assertion": _sign(key, _assertion_claims(federation, c), "ES256")})
    _assert_invalid_client(wrong_type, code)
    _assert_invalid_client(requests.post(f"{federation.url}/oidc/token", auth=(c.client_id, "guess"),
                                         timeout=TIMEOUT, data={"grant_type": "authorization_code", "code": code,
                                                                "redirect_uri": c.redirect_uri}), code)
    # none of them spent the code
    valid = _redeem_with(federation, c, code, _sign(key, _assertion_claims(federation, c), "ES256"))
    assert valid.status_code == 200, valid.text


# -- introspection ------------------------------------------------------------------------------------------
def _introspect(federation: Federation, caller: Client, token: str, **extra: str) -> requests.Response:
    return requests.post(f"{federation.url}/oidc/introspect", data={"token": token, **extra},
                         auth=(caller.client_id, caller.secret or ""), timeout=TIMEOUT)


def test_introspection_is_for_resource_servers_only(federation: Federation, browser: Browser) -> None:
    c = client(federation)
    access = tokens(browser, federation, c)["access_token"]
    answer = _introspect(federation, c, access)
    assert_oauth_error(answer, 403, "unauthorized_client", access, c.secret)
    assert "active" not in answer.json() and "sub" not in answer.json()
    rs = client(federation, "resource-server", may_introspect=True)
    _assert_invalid_client(requests.post(f"{federation.url}/oidc/introspect", data={"token": access},
                                         auth=(rs.client_id, "wrong"), timeout=TIMEOUT), access)
    unauthenticated = requests.post(f"{federation.url}/oidc/introspect", data={"token": access}, timeout=TIMEOUT)
    _assert_invalid_client(unauthenticated, access)


def test_resource_server_sees_only_live_tokens(federation: Federation, browser: Browser) -> None:
    c = client(federation, **REFRESHING)
    rs = client(federation, "resource-server", may_introspect=True)
    body = tokens(browser, federation, c)
    live = _introspect(federation, rs, body["access_token"])
    assert live.status_code == 200 and live.headers["Cache-Control"] == "no-store"
    seen = live.json()
    assert seen["active"] is True and seen["client_id"] == c.client_id
    assert seen["sub"] == payload(body["id_token"])["sub"] and seen["scope"] == "openid profile email"
    assert seen["exp"] > time.time() and seen["iss"] == federation.url
    assert _introspect(federation, rs, body["refresh_token"], token_type_hint="refresh_token").json()["active"]

    for garbage in ("garbage", "x" * 600, body["id_token"], body["access_token"][:-1]):
        answer = _introspect(federation, rs, garbage)
        assert answer.status_code == 200 and answer.json() == {"active": False}, answer.text
    assert_oauth_error(_introspect(federation, rs, ""), 400, "invalid_request")

    revoked = requests.post(f"{federation.url}/oidc/revoke", data={"token": body["access_token"]},
                            auth=(c.client_id, c.secret or ""), timeout=TIMEOUT)
    assert revoked.status_code == 200
    assert _introspect(federation, rs, body["access_token"]).json() == {"active": False}
    assert _introspect(federation, rs, body["refresh_token"]).json()["active"] is True  # only that token

    other = tokens(browser, federation, c)
    federation.set_clock(FixedClock(utcnow() + timedelta(seconds=601)))  # access tokens live 600 s
    assert _introspect(federation, rs, other["access_token"]).json() == {"active": False}
    assert userinfo(federation, other["access_token"]).status_code == 401
