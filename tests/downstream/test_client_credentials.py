"""The client credentials grant (RFC 6749 §4.4) and its access tokens (RFC 9068), without a web app: who gets a
token, with which scope, and every token the admin API must refuse (RFC 9068 §4)."""

from __future__ import annotations

import base64
import dataclasses
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from broker.downstream.oidc.client_credentials import grant
from broker.downstream.oidc.errors import OAuthError
from broker.keys.jwt import sign_jwt
from broker.keys.keyring import KeyRing, generate_keyring, load_keyring
from broker.oidc import admin_tokens
from broker.oidc.client import DYNAMIC_SOURCE, OidcClient

ISSUER = "https://sso.city.example.org"
CI = OidcClient("ci-pipeline", "CI", (), "client_secret_basic", grant_types=("client_credentials",),
                scope=("admin:manage-parties", "admin:view-audit"), source="metadata/oidc-clients/ci.json")


def _keys(folder: Path) -> KeyRing:
    generate_keyring(folder, "test broker", bits=2048)
    return load_keyring(folder)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> KeyRing:
    return _keys(tmp_path_factory.mktemp("certs"))


def _part(token: str, index: int) -> dict[str, Any]:
    part = token.split(".")[index]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def test_the_token_is_an_rfc_9068_jwt_for_the_admin_api_and_comes_alone(keys: KeyRing) -> None:
    now = datetime.now(UTC)

    answer = grant(keys, ISSUER, CI, None, now)

    assert answer["token_type"] == "Bearer" and answer["expires_in"] == 300 and "refresh_token" not in answer
    assert answer["scope"] == "admin:manage-parties admin:view-audit"  # none asked for: every registered one
    header, claims = _part(answer["access_token"], 0), _part(answer["access_token"], 1)
    assert header["typ"] == "at+jwt" and header["alg"] == "RS256"
    assert claims["iss"] == ISSUER and claims["aud"] == f"{ISSUER}/api/admin"
    assert claims["sub"] == claims["client_id"] == "ci-pipeline" and claims["exp"] - claims["iat"] == 300
    verified = admin_tokens.verify(answer["access_token"], keys.jwt_keys, ISSUER, now)
    assert verified.client_id == "ci-pipeline" and verified.scopes == ("admin:manage-parties", "admin:view-audit")


def test_a_narrower_scope_is_granted_and_a_wider_one_refused(keys: KeyRing) -> None:
    now = datetime.now(UTC)
    assert grant(keys, ISSUER, CI, "admin:view-audit", now)["scope"] == "admin:view-audit"
    for asked in ("admin:view-audit admin:manage-citizens", "admin:reveal-claims", "openid", ""):
        with pytest.raises(OAuthError) as refused:
            grant(keys, ISSUER, CI, asked, now)
        assert refused.value.error == "invalid_scope", asked


@pytest.mark.parametrize("client", [
    dataclasses.replace(CI, token_endpoint_auth_method="none"),
    dataclasses.replace(CI, source=DYNAMIC_SOURCE),
    dataclasses.replace(CI, grant_types=("authorization_code",), scope=("openid", "admin:view-audit")),
    dataclasses.replace(CI, scope=("admin:reveal-claims", "admin:manage-operators")),
])
def test_only_a_confidential_automation_client_the_operator_registered_gets_one(keys: KeyRing,
                                                                                 client: OidcClient) -> None:
    with pytest.raises(OAuthError) as refused:
        grant(keys, ISSUER, client, None, datetime.now(UTC))
    assert refused.value.error == "unauthorized_client"


def _claims(now: datetime, **changes: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {"iss": ISSUER, "sub": "ci-pipeline", "client_id": "ci-pipeline",
                              "aud": f"{ISSUER}/api/admin", "scope": "admin:view-audit", "iat": int(now.timestamp()),
                              "exp": int((now + timedelta(minutes=5)).timestamp()), "jti": "j-1"}
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def test_a_well_formed_token_passes_within_the_leeway(keys: KeyRing) -> None:
    now = datetime.now(UTC)
    token = sign_jwt(_claims(now, aud=[f"{ISSUER}/api/admin", "other"]), keys.signing_key("ES256"), typ="at+jwt")
    assert admin_tokens.verify(token, keys.jwt_keys, ISSUER, now + timedelta(minutes=5, seconds=20)).scopes == (
        "admin:view-audit",)
    typed = sign_jwt(_claims(now), keys.signing_key("RS256"), typ="application/AT+JWT")  # RFC 7515 §4.1.9
    assert admin_tokens.verify(typed, keys.jwt_keys, ISSUER, now).client_id == "ci-pipeline"


@pytest.mark.parametrize(("changes", "typ", "why"), [
    ({}, "JWT", "typ"),  # an ID token's or any other JWT's type
    ({}, "logout+jwt", "typ"),
    ({"aud": f"{ISSUER}/oidc"}, "at+jwt", "aud"),
    ({"aud": "ci-pipeline"}, "at+jwt", "aud"),  # an ID token's audience
    ({"iss": "https://evil.example.org"}, "at+jwt", "iss"),
    ({"sub": "someone-else"}, "at+jwt", "client_id"),
    ({"client_id": None}, "at+jwt", "client_id"),
    ({"scope": None}, "at+jwt", "scope"),
    ({"exp": None}, "at+jwt", "exp"),
    ({"exp": 10 ** 20}, "at+jwt", "out of range"),
])
def test_tokens_the_admin_api_refuses(keys: KeyRing, changes: dict[str, Any], typ: str, why: str) -> None:
    now = datetime.now(UTC)
    token = sign_jwt(_claims(now, **changes), keys.signing_key("RS256"), typ=typ)

    with pytest.raises(admin_tokens.InvalidAccessToken, match=why):
        admin_tokens.verify(token, keys.jwt_keys, ISSUER, now)


def test_expired_early_tampered_unsigned_or_foreign_tokens_are_refused(keys: KeyRing, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    token = sign_jwt(_claims(now), keys.signing_key("RS256"), typ="at+jwt")
    header, payload, signature = token.split(".")
    tampered = ".".join((header, _b64({**_part(token, 1), "scope": "admin:manage-citizens"}), signature))
    unsigned = ".".join((_b64({"alg": "none", "typ": "at+jwt"}), payload, ""))
    foreign = sign_jwt(_claims(now), _keys(tmp_path).signing_key("RS256"), typ="at+jwt")
    cases = {"expired": (token, now + timedelta(minutes=6)),
             "issued in the future": (token, now - timedelta(minutes=1)), "signature": (tampered, now),
             "alg": (unsigned, now), "kid": (foreign, now), "too long": ("a" * 5000, now)}
    for why, (raw, at) in cases.items():
        with pytest.raises(admin_tokens.InvalidAccessToken, match=why):
            admin_tokens.verify(raw, keys.jwt_keys, ISSUER, at)
