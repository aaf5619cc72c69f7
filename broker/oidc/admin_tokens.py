"""The admin API's access tokens: JWTs in the form of RFC 9068, issued to automation clients by the client
credentials grant (RFC 6749 §4.4, ``broker.downstream.oidc.client_credentials``) and checked by the admin API
(``broker.web.admin_api.auth``) as RFC 9068 §4 says a resource server must.

Issued: header ``typ: at+jwt`` (RFC 9068 §2.1), signed with the broker's active key of the client's registered
algorithm, as its ID tokens are; claims ``iss``, ``sub`` and ``client_id`` (both the client: no resource owner is
involved, §2.2), ``aud`` (the admin API, ``audience``), ``scope`` (§2.2.3), ``iat``, ``exp`` (``LIFETIME``) and
``jti``. There is no refresh token (RFC 6749 §4.4.3) and no revocation: a token lives five minutes.

Checked (``verify``): the signature with one of the broker's published keys and the key's own algorithm, so
neither ``alg: none`` nor another key is accepted (RFC 8725 §3.1); ``typ`` is ``at+jwt``, so an ID token or a
logout token signed with the same keys is refused (RFC 9068 §4 step 1, RFC 8725 §3.11); ``iss`` is the broker
(§4 step 3); ``aud`` names the admin API (§4 step 4); ``exp`` is not past and ``iat`` not ahead, each within
``LEEWAY`` (§4 step 5); and the claims the broker always sets are there. What the client may still do (it may
have been removed, or lost a scope, since) is the caller's check: this module knows no registry.
Trusted: the broker's keys and its issuer. Not trusted: every token given to ``verify``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from broker.core.admin_scopes import CLIENT_SCOPES
from broker.keys.jwt import InvalidJwt, JwtKey, sign_jwt, verify_own_jwt
from broker.keys.keyring import KeyRing
from broker.oidc.client import DYNAMIC_SOURCE, OidcClient

TYP = "at+jwt"
#: the admin API's audience is the issuer with this path: ``https://sso.city.example.org/api/admin``
API_PATH = "/api/admin"
LIFETIME = timedelta(minutes=5)
#: the clock difference tolerated between the broker instances (one signs, another checks)
LEEWAY = timedelta(seconds=30)
MAX_TOKEN = 4096


class InvalidAccessToken(ValueError):
    """A token the admin API must refuse (RFC 6750 §3.1 ``invalid_token``); the message says why, for the log."""


@dataclass(frozen=True)
class AdminToken:
    """A verified access token: the client it was issued to and the scopes it carries."""

    client_id: str
    scopes: tuple[str, ...]
    jti: str
    issued_at: datetime
    expires_at: datetime


def audience(issuer: str) -> str:
    """The admin API's identifier, the ``aud`` of its tokens (RFC 9068 §2.2, RFC 8707 §2)."""
    return issuer.rstrip("/") + API_PATH


def registered_scopes(client: OidcClient | None) -> tuple[str, ...]:
    """The admin scopes ``client`` may be granted, or use, now: none unless it is an automation client
    (``broker.oidc.client_grants``) the operator registered: confidential (RFC 6749 §4.4) and not registered
    dynamically, whatever its metadata says."""
    if client is None or not client.is_automation or client.is_public or client.source == DYNAMIC_SOURCE:
        return ()
    return tuple(scope for scope in client.scope if scope in CLIENT_SCOPES)


def issue(keys: KeyRing, issuer: str, client: OidcClient, scopes: Sequence[str], now: datetime) -> str:
    """A signed access token for ``client`` with ``scopes`` (already checked against its registration)."""
    claims = {
        "iss": issuer,
        "sub": client.client_id,
        "client_id": client.client_id,
        "aud": audience(issuer),
        "scope": " ".join(scopes),
        "iat": int(now.timestamp()),
        "exp": int((now + LIFETIME).timestamp()),
        "jti": uuid.uuid4().hex,
    }
    return sign_jwt(claims, keys.signing_key(client.id_token_signed_response_alg), typ=TYP)


def verify(raw: str, keys: Sequence[JwtKey], issuer: str, now: datetime) -> AdminToken:
    """The token's client and scopes when it passes every check of the module docstring; else
    ``InvalidAccessToken``."""
    if len(raw) > MAX_TOKEN:
        raise InvalidAccessToken("token too long")
    try:
        claims = verify_own_jwt(raw, keys, typ=TYP)
    except InvalidJwt as exc:
        raise InvalidAccessToken(str(exc)) from exc
    if claims.get("iss") != issuer:  # RFC 9068 §4: "MUST exactly match"
        raise InvalidAccessToken("iss is not the broker")
    aud = claims.get("aud")
    if audience(issuer) not in (aud if isinstance(aud, list) else [aud]):
        raise InvalidAccessToken("aud is not the admin API")
    exp, iat = claims.get("exp"), claims.get("iat")
    if not isinstance(exp, int) or isinstance(exp, bool) or not isinstance(iat, int) or isinstance(iat, bool):
        raise InvalidAccessToken("exp or iat missing")
    try:
        expires_at, issued_at = datetime.fromtimestamp(exp, UTC), datetime.fromtimestamp(iat, UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise InvalidAccessToken("exp or iat out of range") from exc
    if now >= expires_at + LEEWAY:
        raise InvalidAccessToken("expired")
    if issued_at > now + LEEWAY:
        raise InvalidAccessToken("issued in the future")
    client_id, sub, scope, jti = (claims.get(name) for name in ("client_id", "sub", "scope", "jti"))
    if not isinstance(client_id, str) or not client_id or sub != client_id:
        raise InvalidAccessToken("client_id missing, or not the sub")
    if not isinstance(scope, str) or not isinstance(jti, str):
        raise InvalidAccessToken("scope or jti missing")
    return AdminToken(client_id, tuple(dict.fromkeys(scope.split())), jti, issued_at, expires_at)
