"""Attacks on the broker as an OpenID Connect / OAuth 2.0 client of its upstreams: IdP mix-up, authorization
code injection and replay, PKCE downgrade, token substitution between clients, JWT algorithm confusion and
key confusion, forged upstream answers (docs/security.md, the rows of the same names).

Two levels: the upstream adapter (``broker.upstream.oidc``) against a real authlib OpenID provider told to
misbehave (``Mischief``), where each refusal must name the check that fired, so a test cannot pass because
another check happened to fail first; and the whole broker between a pysaml2 SP and that provider, where the
app must get a SAML error and nothing may be stored.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from broker.core import errors
from broker.demo.oidc_provider import Mischief
from broker.upstream.github import GitHubSettings, GitHubUpstream
from broker.upstream.http_pool import UpstreamHttp
from tests.flows.federation import Federation, saml_status
from tests.peers.browser import Browser
from tests.security.attack_support import (
    AUTHN_FAILED,
    RESPONDER,
    assert_nothing_stored,
    query_of,
    register_upstream,
    start_login,
    with_param,
)
from tests.upstream.conftest import CLIENT_ID, OidcWorld, utcnow


def refused(world: OidcWorld, mischief: Mischief, expected: type[errors.UpstreamError], words: str) -> None:
    world.provider.mischief = mischief
    upstream = world.upstream()
    with pytest.raises(expected) as failure:
        world.login(upstream)
    assert words in (failure.value.detail or ""), failure.value.detail


def _assert_authn_failed(federation: Federation, browser: Browser, page: requests.Response) -> None:
    assert saml_status(browser.form_fields(page)) == (RESPONDER, AUTHN_FAILED)
    assert "anna" not in page.text.lower()
    assert_nothing_stored(federation)


# -- login CSRF at the adapter (the browser binding: test_attack_browser.py) -------------------------------
# (moved here from tests/upstream/test_oidc_negative.py)


def test_login_csrf_state_mismatch_at_the_adapter(world: OidcWorld) -> None:
    upstream = world.upstream()
    pending, params = world.authorize(upstream)
    for forged in ({**params, "state": "forged"}, {k: v for k, v in params.items() if k != "state"}):
        with pytest.raises(errors.UpstreamVerificationFailed) as failure:
            upstream.finish(pending, forged, utcnow())
        assert "state does not match" in (failure.value.detail or "")
    assert world.provider.hits("token") == 0  # refused before the code is spent



# -- IdP mix-up ---------------------------------------------------------------------------------------------------
# (the adapter tests moved here from tests/upstream/test_oidc_negative.py)


def test_idp_mix_up_callback_at_other_upstream(federation: Federation, browser: Browser) -> None:
    """The provider's answer (code, state, iss) is delivered at another upstream's redirect URI, as a mix-up
    attacker does to make the broker redeem an honest code at the attacker's token endpoint."""
    register_upstream(federation, "city", "https://idp.city.example")
    callback = start_login(federation, browser, hint="op")
    parts = urlsplit(callback)
    assert parts.path.endswith("/upstream/oidc/op/callback")
    mixed_up = urlunsplit(parts._replace(path=parts.path.replace("/oidc/op/", "/oidc/city/")))
    page = browser.get(mixed_up)

    _assert_authn_failed(federation, browser, page)
    assert federation.provider.hits("token") == 0, "the code must not be redeemed anywhere"


def test_idp_mix_up_pending_state_of_another_upstream(world: OidcWorld) -> None:
    pending, params = world.authorize(world.upstream())
    with pytest.raises(errors.UpstreamVerificationFailed):
        world.upstream(name="other").finish(pending, params, utcnow())


def test_idp_mix_up_wrong_iss_parameter(world: OidcWorld) -> None:
    refused(world, Mischief(iss_param="http://127.0.0.1:1/evil"), errors.UpstreamVerificationFailed, "mix-up")


def test_idp_mix_up_iss_parameter_stripped(world: OidcWorld) -> None:
    refused(world, Mischief(omit_iss_param=True), errors.UpstreamVerificationFailed, "lacks the iss parameter")


# -- authorization code injection and replay ----------------------------------------------------------------------


def test_authorization_code_injection_into_the_victims_callback(federation: Federation, browser: Browser,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    """The attacker signs in at the provider, keeps the code instead of delivering it, and injects it into the
    victim's own callback (with the victim's valid state). The code was issued for the attacker's PKCE challenge,
    so the broker's redemption with the victim's verifier is refused at the token endpoint."""
    with Browser() as attacker:
        attackers_code = query_of(start_login(federation, attacker))["code"]
    victims_callback = start_login(federation, browser)
    page = browser.get(with_param(victims_callback, "code", attackers_code))

    _assert_authn_failed(federation, browser, page)
    assert federation.provider.hits("token") == 1
    assert "invalid_grant" in caplog.text  # refused by PKCE at the token endpoint, not by a later check


def test_authorization_code_replay_at_the_upstream(world: OidcWorld) -> None:
    upstream = world.upstream()
    now = utcnow()
    pending, params = world.authorize(upstream, now)
    assert upstream.finish(pending, params, now).subject == "alice-0001"
    with pytest.raises(errors.UpstreamError) as failure:
        upstream.finish(pending, params, now)
    assert "invalid_grant" in (failure.value.detail or "")


# -- PKCE downgrade -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("advertised", [None, [], ["plain"]], ids=["omitted", "empty", "plain-only"])
def test_pkce_downgrade_discovery_without_s256_still_gets_s256(world: OidcWorld, monkeypatch: pytest.MonkeyPatch,
                                                              advertised: list[str] | None) -> None:
    """A discovery document that omits ``code_challenge_methods_supported`` (or offers only ``plain``) must not
    talk the broker out of PKCE: every authorization request carries an S256 challenge of its verifier."""
    genuine = world.provider.discovery

    def downgraded() -> dict[str, Any]:
        document = genuine()
        document.pop("code_challenge_methods_supported", None)
        if advertised is not None:
            document["code_challenge_methods_supported"] = advertised
        return document

    monkeypatch.setattr(world.provider, "discovery", downgraded)
    upstream = world.upstream()
    url, pending = upstream.start(utcnow())
    query = query_of(url)

    assert query["code_challenge_method"] == "S256"
    assert query["code_challenge"] == create_s256_code_challenge(pending.code_verifier)
    assert pending.code_verifier not in url
    assert world.provider.hits("discovery") == 1  # the downgraded document was read
    answer = world.browser.get(url)  # and the provider (which demands S256) accepts the request
    identity = upstream.finish(pending, query_of(answer.url), utcnow())
    assert identity.subject == "alice-0001"


def test_pkce_downgrade_github_always_gets_s256() -> None:
    """GitHub has no discovery document to be downgraded by; its adapter sends S256 all the same."""
    settings = GitHubSettings(name="github", display_name="GitHub", client_id="gh", client_secret="s",
                              redirect_uri="http://127.0.0.1:9/upstream/oidc/github/callback")
    with UpstreamHttp() as http:
        url, pending = GitHubUpstream(settings, http).start(utcnow())
    query = query_of(url)
    assert query["code_challenge_method"] == "S256"
    assert query["code_challenge"] == create_s256_code_challenge(pending.code_verifier)
    assert pending.code_verifier not in url


# -- token substitution between clients ---------------------------------------------------------------------------
# (moved here from tests/upstream/test_oidc_negative.py)


def test_token_substitution_id_token_for_another_client(world: OidcWorld) -> None:
    refused(world, Mischief(claim_overrides={"aud": "someone-else"}), errors.UpstreamVerificationFailed,
            "does not include this client")


def test_token_substitution_shared_audience_without_azp(world: OidcWorld) -> None:
    refused(world, Mischief(claim_overrides={"aud": [CLIENT_ID, "other"]}), errors.UpstreamVerificationFailed,
            "azp")
    world.provider.mischief = Mischief(claim_overrides={"aud": [CLIENT_ID, "other"], "azp": CLIENT_ID})
    assert world.login(world.upstream()).subject == "alice-0001"


def test_token_substitution_authorized_party_is_another_client(world: OidcWorld) -> None:
    refused(world, Mischief(claim_overrides={"azp": "other"}), errors.UpstreamVerificationFailed, "azp")


# -- JWT algorithm and key confusion ------------------------------------------------------------------------------
# (the first four moved here from tests/upstream/test_oidc_negative.py)


def test_jwt_alg_none(world: OidcWorld) -> None:
    refused(world, Mischief(alg_none=True), errors.UpstreamVerificationFailed, "alg 'none' is not allowed")


def test_jwt_hs256_signed_with_the_public_key(world: OidcWorld) -> None:
    refused(world, Mischief(hs256_with_public_key=True), errors.UpstreamVerificationFailed,
            "alg 'HS256' is not allowed")


def test_jwt_signed_by_a_key_outside_the_jwks(world: OidcWorld) -> None:
    refused(world, Mischief(foreign_key=True), errors.UpstreamVerificationFailed, "signature not valid")
    assert world.provider.hits("jwks") == 1  # a known kid never triggers a refetch


def test_jwt_none_and_hmac_cannot_be_configured() -> None:
    from broker.upstream.oidc_settings import OidcUpstreamSettings

    for algs in (("none",), ("HS256",), ("RS256", "HS512"), ()):
        with pytest.raises(ValueError, match="allowed_algs"):
            OidcUpstreamSettings("x", "X", "https://idp.example", "c", "s", "https://b.example/cb", allowed_algs=algs)


@pytest.fixture(scope="module")
def attacker_key() -> rsa.RSAPrivateKey:
    # 1024 bits keeps an embedded jwk under joserfc's 512-byte header limit, so the broker reads the header and
    # the test reaches the choice of key (a 2048-bit jwk header is refused earlier, as oversized)
    return rsa.generate_private_key(public_exponent=65537, key_size=1024)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _public_jwk(key: rsa.RSAPrivateKey) -> dict[str, str]:
    numbers = key.public_key().public_numbers()
    return {"kty": "RSA", "n": _b64url(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")),
            "e": _b64url(numbers.e.to_bytes(3, "big"))}


def _attacker_token(header: dict[str, Any], claims: dict[str, Any], key: rsa.RSAPrivateKey) -> str:
    """An RS256 JWS made with the attacker's own tooling (no library between the attacker and the bytes)."""
    signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
    signature = key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64url(signature)}"


HeaderFor = Callable[[rsa.RSAPrivateKey, str], dict[str, Any]]


@pytest.mark.parametrize("header_for, words", [
    pytest.param(lambda key, real_kid: {"kid": "kid-the-provider-never-published"}, "no RS256 key with kid",
                 id="unknown-kid"),
    pytest.param(lambda key, real_kid: {"kid": "attacker", "jwk": _public_jwk(key)}, "no RS256 key with kid",
                 id="embedded-jwk-header"),
    pytest.param(lambda key, real_kid: {"kid": "attacker", "jku": "http://127.0.0.1:9/attacker/jwks"},
                 "no RS256 key with kid", id="jku-header"),
    pytest.param(lambda key, real_kid: {"kid": real_kid, "jwk": _public_jwk(key)}, "signature not valid",
                 id="real-kid-with-embedded-jwk"),
])
def test_jwt_key_confusion_attacker_key_named_in_the_header(world: OidcWorld, monkeypatch: pytest.MonkeyPatch,
                                                            attacker_key: rsa.RSAPrivateKey, header_for: HeaderFor,
                                                            words: str) -> None:
    """The ID token is signed with the attacker's key and its header points at that key (an unknown ``kid``, an
    embedded ``jwk``, a ``jku`` URL): the broker takes keys from the provider's JWKS only, and an unknown kid
    makes it fetch that JWKS again at most once."""
    real_kid = world.provider.current_kid

    def resign(id_token: str, mischief: Mischief) -> str:
        claims = json.loads(base64.urlsafe_b64decode(id_token.split(".")[1] + "=="))
        header = {"alg": "RS256", "typ": "JWT", **header_for(attacker_key, real_kid)}
        return _attacker_token(header, claims, attacker_key)

    monkeypatch.setattr(world.provider.keys, "tamper", resign)
    upstream = world.upstream()
    for _ in range(3):
        with pytest.raises(errors.UpstreamVerificationFailed) as failure:
            world.login(upstream)
        assert words in (failure.value.detail or ""), failure.value.detail
    assert world.provider.hits("jwks") <= 2, "forged kids must not make the broker hammer the provider"


# -- ID token replay ----------------------------------------------------------------------------------------------


def test_id_token_replay_nonce_of_another_request(world: OidcWorld) -> None:
    # (moved here from tests/upstream/test_oidc_negative.py)
    refused(world, Mischief(claim_overrides={"nonce": "another"}), errors.UpstreamVerificationFailed, "nonce")


# -- every forged answer, end to end --------------------------------------------------------------------------------
# (moved here from tests/flows/test_saml_to_oidc_attacks.py)


@pytest.mark.parametrize("mischief", [
    pytest.param(Mischief(claim_overrides={"nonce": "another-nonce"}), id="nonce-mismatch"),
    pytest.param(Mischief(foreign_key=True), id="id-token-signed-by-another-key"),
    pytest.param(Mischief(alg_none=True), id="alg-none"),
    pytest.param(Mischief(hs256_with_public_key=True), id="hs256-with-public-key"),
    pytest.param(Mischief(claim_overrides={"exp": int(time.time()) - 600, "iat": int(time.time()) - 1200}),
                 id="expired-id-token"),
    pytest.param(Mischief(claim_overrides={"aud": "some-other-client"}), id="wrong-audience"),
    pytest.param(Mischief(claim_overrides={"iss": "http://127.0.0.1:9/evil"}), id="wrong-issuer"),
    pytest.param(Mischief(iss_param="http://127.0.0.1:9/evil"), id="wrong-iss-parameter"),
    pytest.param(Mischief(userinfo_sub="someone-else"), id="userinfo-for-another-subject"),
])
def test_forged_upstream_answer_fails_the_login_end_to_end(federation: Federation, browser: Browser,
                                                           mischief: Mischief) -> None:
    federation.provider.mischief = mischief
    _, page = federation.login(browser)

    assert saml_status(browser.form_fields(page)) == (RESPONDER, AUTHN_FAILED)
    assert "anna" not in page.text.lower()
    assert_nothing_stored(federation)
