"""``private_key_jwt`` client assertions (OpenID Connect Core 1.0 §9, RFC 7523 §3), with keys generated per test
by joserfc as a client would hold them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from broker.oidc.client_assertion import ClientAssertion, InvalidClientAssertion, verify_client_assertion

CLIENT = "city-app"
TOKEN_ENDPOINT = "https://broker.example.org/oidc/token"
ISSUER = "https://broker.example.org"
AUDIENCES = (TOKEN_ENDPOINT, ISSUER)
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Client:
    rsa: RSAKey
    ec: ECKey

    def jwks(self, *keys: RSAKey | ECKey) -> str:
        chosen = keys or (self.rsa, self.ec)
        return json.dumps({"keys": [{**k.as_dict(private=False), "kid": k.kid, "use": "sig"} for k in chosen]})


@pytest.fixture
def client() -> Client:
    rsa, ec = RSAKey.generate_key(2048), ECKey.generate_key("P-256")
    rsa.ensure_kid()
    ec.ensure_kid()
    return Client(rsa, ec)


def _claims(**changes: Any) -> dict[str, Any]:
    claims = {"iss": CLIENT, "sub": CLIENT, "aud": TOKEN_ENDPOINT, "jti": "j-1",
              "iat": int(NOW.timestamp()), "exp": int(NOW.timestamp()) + 120}
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _assertion(key: RSAKey | ECKey, alg: str, claims: dict[str, Any] | None = None, *, kid: str | None = "key") -> str:
    header: dict[str, Any] = {"alg": alg}
    if kid is not None:
        header["kid"] = key.kid if kid == "key" else kid
    return jwt.encode(header, claims or _claims(), key, algorithms=[alg])


def _verify(assertion: str, jwks: str, **options: Any) -> ClientAssertion:
    return verify_client_assertion(assertion, CLIENT, jwks, AUDIENCES, NOW, **options)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unsigned(header: dict[str, Any], claims: dict[str, Any], sign: Callable[[bytes], bytes]) -> str:
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    return f"{signing_input}.{_b64(sign(signing_input.encode()))}"


# -- accepted ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["RS256", "PS256", "ES256"])
def test_a_valid_assertion_is_accepted(client: Client, alg: str) -> None:
    key = client.ec if alg == "ES256" else client.rsa

    verified = _verify(_assertion(key, alg), client.jwks())

    assert verified == ClientAssertion(jti="j-1", expires_at=NOW + timedelta(seconds=120))


def test_aud_may_be_the_issuer_in_a_list(client: Client) -> None:
    assertion = _assertion(client.ec, "ES256", _claims(aud=["https://other.example.org", ISSUER]))
    assert _verify(assertion, client.jwks()).jti == "j-1"


def test_without_kid_the_only_key_of_the_type_is_used(client: Client) -> None:
    assert _verify(_assertion(client.rsa, "RS256", kid=None), client.jwks()).jti == "j-1"


def test_iat_is_optional_and_a_small_clock_skew_is_tolerated(client: Client) -> None:
    late = _claims(iat=None, exp=int(NOW.timestamp()) - 30)  # the client's clock is behind
    assert _verify(_assertion(client.ec, "ES256", late), client.jwks()).jti == "j-1"
    early = _claims(iat=int(NOW.timestamp()) + 30, exp=int(NOW.timestamp()) + 330)  # ahead
    assert _verify(_assertion(client.ec, "ES256", early), client.jwks()).jti == "j-1"


def test_max_lifetime_is_the_caller_s(client: Client) -> None:
    assertion = _assertion(client.ec, "ES256", _claims(exp=int(NOW.timestamp()) + 3600))
    assert _verify(assertion, client.jwks(), max_lifetime=timedelta(hours=1)).jti == "j-1"


def test_now_must_be_timezone_aware(client: Client) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        verify_client_assertion(_assertion(client.ec, "ES256"), CLIENT, client.jwks(), AUDIENCES,
                                NOW.replace(tzinfo=None))


# -- refused -------------------------------------------------------------------------------------------------


def _alg_none(client: Client) -> str:
    return _unsigned({"alg": "none", "kid": client.rsa.kid}, _claims(), lambda _: b"")


def _hs256_with_the_public_jwk_as_secret(client: Client) -> str:
    secret = json.dumps(client.rsa.as_dict(private=False)).encode()
    return _unsigned({"alg": "HS256", "kid": client.rsa.kid}, _claims(),
                     lambda data: hmac.new(secret, data, hashlib.sha256).digest())


def _tampered_signature(client: Client) -> str:
    head, payload, signature = _assertion(client.rsa, "RS256").split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=="))
    raw[10] ^= 1
    return f"{head}.{payload}.{_b64(bytes(raw))}"


def _tampered_payload(client: Client) -> str:
    head, _, signature = _assertion(client.ec, "ES256").split(".")
    return f"{head}.{_b64(json.dumps(_claims(jti='j-2')).encode())}.{signature}"


def _key_not_in_jwks(client: Client) -> str:
    stranger = ECKey.generate_key("P-256")
    stranger.ensure_kid()
    return _assertion(stranger, "ES256")


def _stranger_with_the_client_s_kid(client: Client) -> str:
    return _assertion(ECKey.generate_key("P-256"), "ES256", kid=client.ec.kid)


def _rs256_header_on_the_ec_kid(client: Client) -> str:
    return _assertion(client.rsa, "RS256", kid=client.ec.kid)


def _signed(**changes: Any) -> Callable[[Client], str]:
    return lambda client: _assertion(client.ec, "ES256", _claims(**changes))


T = int(NOW.timestamp())


@pytest.mark.parametrize(("make", "reason"), [
    (_alg_none, "alg 'none' is not allowed"),
    (_hs256_with_the_public_jwk_as_secret, "alg 'HS256' is not allowed"),
    (_tampered_signature, "signature not valid"),
    (_tampered_payload, "signature not valid"),
    (_key_not_in_jwks, "no single ES256 key with kid"),
    (_stranger_with_the_client_s_kid, "signature not valid"),
    (_rs256_header_on_the_ec_kid, "no single RS256 key with kid"),
    (_signed(iss="someone-else"), "iss 'someone-else' is not the client_id"),
    (_signed(sub="someone-else"), "sub 'someone-else' is not the client_id"),
    (_signed(iss=None), "iss None is not the client_id"),
    (_signed(aud="https://other.example.org/token"), "names neither the token endpoint nor the issuer"),
    (_signed(aud=None), "names neither"),
    (_signed(exp=T - 61), "expired at"),
    (_signed(exp=None), "exp is missing"),
    (_signed(exp="soon"), "exp is not a finite number"),
    (_signed(exp=T + 3600), "more than 0:05:00 after now"),
    (_signed(iat=T + 120), "iat .* is in the future"),
    (_signed(nbf=T + 120), "nbf .* is in the future"),
    (_signed(jti=None), "jti is missing"),
    (_signed(jti=""), "jti is missing"),
    (_signed(jti="x" * 257), "jti is missing or not a string of 1-256 characters"),
    (lambda client: "a.b", "not a signed JWT in compact form"),
    (lambda client: "!.b.c", "unreadable JOSE header"),
])
def test_refused(client: Client, make: Callable[[Client], str], reason: str) -> None:
    with pytest.raises(InvalidClientAssertion, match=reason) as caught:
        _verify(make(client), client.jwks())
    assert isinstance(caught.value, ValueError)


def test_without_kid_two_keys_of_the_type_are_ambiguous(client: Client) -> None:
    other = RSAKey.generate_key(2048)
    other.ensure_kid()
    with pytest.raises(InvalidClientAssertion, match="has no kid and the client's jwks has 2 RS256 keys"):
        _verify(_assertion(client.rsa, "RS256", kid=None), client.jwks(client.rsa, other))


def test_a_key_registered_for_another_alg_or_use_is_not_used(client: Client) -> None:
    entry = {**client.rsa.as_dict(private=False), "kid": client.rsa.kid}
    for restricted in ({**entry, "alg": "PS256"}, {**entry, "use": "enc"}):
        with pytest.raises(InvalidClientAssertion, match="no single RS256 key"):
            _verify(_assertion(client.rsa, "RS256"), json.dumps({"keys": [restricted]}))


def test_private_members_in_a_registered_jwks_are_ignored(client: Client) -> None:
    jwks = json.dumps({"keys": [{**client.ec.as_dict(private=True), "kid": client.ec.kid}]})
    assert _verify(_assertion(client.ec, "ES256"), jwks).jti == "j-1"


@pytest.mark.parametrize(("jwks", "reason"), [
    ("not json", "registered jwks is not JSON"),
    ('{"kty": "EC"}', "registered jwks is not a JWK Set"),
    ('{"keys": [{"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}]}', "key is not usable"),
])
def test_a_broken_registered_jwks_is_refused(client: Client, jwks: str, reason: str) -> None:
    with pytest.raises(InvalidClientAssertion, match=reason):
        _verify(_assertion(client.ec, "ES256", kid=None), jwks)
