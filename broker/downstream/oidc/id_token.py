"""ID tokens and the claims a client may read (OpenID Connect Core 1.0 §2, §3.1.3.6, §5.1, §8).

``sub`` is pairwise per sector by default (§8.1: the client's redirect-URI host, or its
``sector_identifier_uri``, or the client alone when its redirect URIs are loopback, RFC 8252 §7.3), so two
unrelated apps cannot correlate a citizen; clients registered with
``subject_type: public`` get one identifier shared by every public client (§8). Neither reveals the
broker's internal account id.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from broker.core.claims import BY_NAME, ClaimValue
from broker.core.grants import Grant
from broker.core.identifiers import pairwise_id
from broker.keys.jwt import sign_jwt
from broker.keys.keyring import KeyRing
from broker.oidc.client import OidcClient

#: the sector every ``public`` subject is computed in
PUBLIC_SECTOR = "\x01public"


def subject(secret: bytes, client: OidcClient, account_id: str) -> str:
    sector = PUBLIC_SECTOR if client.subject_type == "public" else client.sector or client.client_id
    return pairwise_id(secret, sector, account_id)


def oidc_claims(released: Mapping[str, ClaimValue]) -> dict[str, Any]:
    """Broker claim names -> OIDC claim names (§5.1); claims with no OIDC name are not sent."""
    out: dict[str, Any] = {}
    for name, value in released.items():
        definition = BY_NAME.get(name)
        if definition is not None and definition.oidc_name:
            out[definition.oidc_name] = (dict(value) if isinstance(value, Mapping)
                                         else list(value) if isinstance(value, tuple) else value)  # roles: an array
    return out


def at_hash(access_token: str) -> str:
    """§3.1.3.6: left half of the SHA-256 of the access token, base64url (RS256 and ES256 both hash with
    SHA-256)."""
    digest = hashlib.sha256(access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[:16]).decode("ascii").rstrip("=")


def id_token(keys: KeyRing, issuer: str, client: OidcClient, grant: Grant, sub: str,
             released: Mapping[str, ClaimValue], now: datetime, lifetime: timedelta,
             access_token: str | None, with_nonce: bool = True) -> str:
    """A signed ID token (§2) with the client's registered algorithm.

    ``auth_time``, ``acr`` and ``amr`` say how the person really signed in at the upstream (the acr is the
    upstream's, never the one asked for); ``sid`` names the SSO session for logout. The person's claims go
    in the ID token too (most client libraries read them from there); ``with_nonce`` is false for tokens
    refreshed later (§12.2).
    """
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": sub,
        "aud": client.client_id,
        "azp": client.client_id,
        "iat": int(now.timestamp()),
        "exp": int((now + lifetime).timestamp()),
        "auth_time": int(grant.auth_time.timestamp()),
        "sid": grant.sid,
    }
    if grant.nonce is not None and with_nonce:
        claims["nonce"] = grant.nonce
    if grant.acr is not None:
        claims["acr"] = grant.acr
    if grant.amr:
        claims["amr"] = list(grant.amr)
    if access_token is not None:
        claims["at_hash"] = at_hash(access_token)
    claims.update(oidc_claims(released))
    return sign_for(keys, client, claims)


def sign_for(keys: KeyRing, client: OidcClient, claims: Mapping[str, Any], typ: str = "JWT") -> str:
    """``claims`` signed for ``client``: with the broker's active key of the client's registered
    ``id_token_signed_response_alg``, as its ID tokens are; logout tokens use the same keys (Back-Channel Logout
    1.0 §2.4), with their own ``typ``."""
    return sign_jwt(claims, keys.signing_key(client.id_token_signed_response_alg), typ=typ)
