"""The demo provider is a standard OpenID provider: authlib's own client and JOSE code accept it."""

from __future__ import annotations

import warnings
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from authlib.common.security import generate_token
from authlib.deprecate import AuthlibDeprecationWarning
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.core.util import create_half_hash

from broker.demo.oidc_provider import Mischief
from tests.peers.browser import Browser
from tests.peers.conftest import BOB, CLIENT_ID, CLIENT_SECRET, Peer


def authlib_jose_decode(id_token: str, jwks: dict[str, Any], issuer: str, nonce: str) -> dict[str, Any]:
    """Verify with ``authlib.jose`` (independent of the joserfc code the provider signs with).

    authlib 1.9 deprecates ``authlib.jose`` in favour of joserfc and warns on import and use; the warning is
    silenced here only, since the point is to check against that implementation.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AuthlibDeprecationWarning)
        from authlib.jose import JsonWebKey, jwt

        claims = jwt.decode(
            id_token,
            JsonWebKey.import_key_set(jwks),
            claims_options={
                "iss": {"essential": True, "value": issuer},
                "aud": {"essential": True, "value": CLIENT_ID},
                "sub": {"essential": True},
                "nonce": {"essential": True, "value": nonce},
                "exp": {"essential": True},
                "iat": {"essential": True},
            },
        )
        claims.validate(leeway=5)
        return dict(claims)


@pytest.mark.parametrize("auth_method", ["client_secret_basic", "client_secret_post"])
def test_code_flow_with_authlibs_client(peer: Peer, browser: Browser, auth_method: str) -> None:
    provider = peer.provider
    discovery = requests.get(provider.url("discovery"), timeout=10).json()
    with OAuth2Session(
        CLIENT_ID, CLIENT_SECRET, scope="openid email profile", redirect_uri=peer.redirect_uri,
        code_challenge_method="S256", token_endpoint_auth_method=auth_method,
    ) as client:
        verifier, nonce = generate_token(48), generate_token(24)
        url, state = client.create_authorization_url(discovery["authorization_endpoint"], code_verifier=verifier,
                                                     nonce=nonce)
        callback = browser.get(url)
        params = callback.json()
        assert params["state"] == state
        assert params["iss"] == provider.issuer  # RFC 9207
        token = client.fetch_token(discovery["token_endpoint"], authorization_response=callback.url,
                                   code_verifier=verifier, timeout=10)
        userinfo = client.get(discovery["userinfo_endpoint"], timeout=10).json()

    jwks = requests.get(discovery["jwks_uri"], timeout=10).json()
    claims = authlib_jose_decode(token["id_token"], jwks, provider.issuer, nonce)
    assert claims["sub"] == "bob-42"
    assert claims["email"] == "bob@example.org"
    assert claims["acr"] == "urn:example:demo"
    assert isinstance(claims["auth_time"], int)
    assert claims["at_hash"] == create_half_hash(token["access_token"], "RS256").decode()
    assert userinfo == {k: v for k, v in BOB.claims.items()}


def test_discovery_document(peer: Peer) -> None:
    document = requests.get(peer.provider.url("discovery"), timeout=10).json()
    assert document["issuer"] == peer.provider.issuer
    assert document["authorization_response_iss_parameter_supported"] is True
    assert document["id_token_signing_alg_values_supported"] == ["RS256"]
    assert document["code_challenge_methods_supported"] == ["S256"]
    assert set(document["token_endpoint_auth_methods_supported"]) == {"client_secret_basic", "client_secret_post"}
    for endpoint in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri"):
        assert document[endpoint].startswith(peer.provider.issuer + "/")


def test_issuer_with_a_path_prefixes_every_endpoint(interactive_peer: Peer) -> None:
    issuer = interactive_peer.provider.issuer
    assert issuer.endswith("/op")
    document = requests.get(issuer + "/.well-known/openid-configuration", timeout=10).json()
    assert document["issuer"] == issuer
    assert requests.get(document["jwks_uri"], timeout=10).json()["keys"]


def test_key_rotation_keeps_old_keys_until_dropped(peer: Peer) -> None:
    provider = peer.provider
    first = provider.current_kid
    second = provider.rotate_key()
    kids = [k["kid"] for k in requests.get(provider.url("jwks"), timeout=10).json()["keys"]]
    assert kids == [second, first]
    provider.drop_old_keys()
    keys = requests.get(provider.url("jwks"), timeout=10).json()["keys"]
    assert [k["kid"] for k in keys] == [second]
    assert all("d" not in k and k["kty"] == "RSA" for k in keys)


def test_pkce_s256_is_required(peer: Peer, browser: Browser) -> None:
    base = {"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": peer.redirect_uri,
            "scope": "openid", "state": "st"}
    verifier = generate_token(48)
    for extra in ({}, {"code_challenge": verifier, "code_challenge_method": "plain"}):
        params = browser.get(peer.provider.url("authorize"), {**base, **extra}).json()
        assert params["error"] == "invalid_request"
        assert params["state"] == "st"
        assert params["iss"] == peer.provider.issuer


def test_wrong_code_verifier_is_refused(peer: Peer, browser: Browser) -> None:
    verifier = generate_token(48)
    params = browser.get(peer.provider.url("authorize"), {
        "response_type": "code", "client_id": CLIENT_ID, "redirect_uri": peer.redirect_uri, "scope": "openid",
        "state": "st", "code_challenge": create_s256_code_challenge(verifier), "code_challenge_method": "S256",
    }).json()
    answer = requests.post(peer.provider.url("token"), auth=(CLIENT_ID, CLIENT_SECRET), timeout=10, data={
        "grant_type": "authorization_code", "code": params["code"], "redirect_uri": peer.redirect_uri,
        "code_verifier": generate_token(48),
    })
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_grant"


def test_unregistered_redirect_uri_is_not_redirected_to(peer: Peer, browser: Browser) -> None:
    answer = browser.get(peer.provider.url("authorize"), {
        "response_type": "code", "client_id": CLIENT_ID, "redirect_uri": "http://127.0.0.1:1/evil",
        "scope": "openid", "code_challenge": "x" * 43, "code_challenge_method": "S256",
    })
    assert answer.status_code == 400
    assert browser.history[-1].startswith(peer.provider.url("authorize"))


def test_userinfo_needs_a_bearer_token(peer: Peer) -> None:
    answer = requests.get(peer.provider.url("userinfo"), headers={"Authorization": "Bearer nope"}, timeout=10)
    assert answer.status_code == 401


def test_iss_parameter_mischief(peer: Peer, browser: Browser) -> None:
    def callback_params() -> dict[str, list[str]]:
        verifier = generate_token(48)
        answer = browser.get(peer.provider.url("authorize"), {
            "response_type": "code", "client_id": CLIENT_ID, "redirect_uri": peer.redirect_uri, "scope": "openid",
            "code_challenge": create_s256_code_challenge(verifier), "code_challenge_method": "S256",
        })
        return parse_qs(urlsplit(answer.url).query)

    peer.provider.mischief = Mischief(iss_param="https://evil.example")
    assert callback_params()["iss"] == ["https://evil.example"]
    peer.provider.mischief = Mischief(omit_iss_param=True)
    assert "iss" not in callback_params()


def test_login_page_is_labelled_demo_and_accessible(interactive_peer: Peer, browser: Browser) -> None:
    import lxml.html  # type: ignore[import-untyped]

    page = browser.get(interactive_peer.provider.url("authorize"), {
        "response_type": "code", "client_id": CLIENT_ID, "redirect_uri": interactive_peer.redirect_uri,
        "scope": "openid", "code_challenge": "x" * 43, "code_challenge_method": "S256",
    })
    assert page.status_code == 200
    document = lxml.html.document_fromstring(page.text)
    assert "DEMO" in document.findtext(".//title")
    assert "DEMO" in document.findtext(".//h1")
    assert "not a real identity provider" in page.text
    assert not document.xpath("//script") and "javascript:" not in page.text.lower()
    for control in document.xpath("//input"):
        assert document.xpath(f"//label[@for='{control.get('id')}']"), control.get("name")
    assert set(browser.form_fields(page)) == {"username", "password"}
