"""A relying party's check of a logout token (OpenID Connect Back-Channel Logout 1.0 §2.6), written from the
specification with joserfc, independently of the broker's code; shared by the unit and the flow tests."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from joserfc import jwt
from joserfc.jwk import KeySet
from joserfc.jws import extract_compact

EVENT = "http://schemas.openid.net/event/backchannel-logout"


def logout_token_of(body: str) -> str:
    """§2.5: the form body holds exactly one parameter, ``logout_token``."""
    form = parse_qs(body, strict_parsing=True)
    assert list(form) == ["logout_token"] and len(form["logout_token"]) == 1, form
    return form["logout_token"][0]


def validate_logout_token(token: str, jwks: dict[str, Any], issuer: str, client_id: str, now: int,
                          algorithm: str = "RS256") -> dict[str, Any]:
    """The claims of ``token`` once it passes §2.6 as an RP checks it; ``AssertionError`` or a joserfc error
    otherwise. ``jwks`` is the OP's published JWK Set, ``algorithm`` the one the RP registered for ID tokens."""
    header = extract_compact(token.encode("ascii")).headers()
    # §2.6 step 3: the same algorithm as the RP's ID tokens; never "none"; RFC 8725 §3.11: explicit typing
    assert header["alg"] == algorithm
    assert header["typ"] == "logout+jwt"
    assert header["kid"] in {key["kid"] for key in jwks["keys"]}
    # §2.6 step 3: the signature, against the OP's JWKS
    key_set = KeySet.import_key_set({"keys": jwks["keys"]})
    claims: dict[str, Any] = dict(jwt.decode(token, key_set, algorithms=[algorithm]).claims)
    # §2.6 step 3: iss, aud, iat, exp as for an ID token (OIDC Core §3.1.3.7)
    registry = jwt.JWTClaimsRegistry(
        now=now, leeway=0,
        iss={"essential": True, "value": issuer},
        aud={"essential": True, "value": client_id},
        iat={"essential": True}, exp={"essential": True}, jti={"essential": True},
    )
    registry.validate(claims)
    assert isinstance(claims["iat"], int) and isinstance(claims["exp"], int) and claims["iat"] <= now
    # §2.6 step 4-5: sub or sid present (the broker sends both), events with the back-channel logout member
    assert isinstance(claims.get("sub"), str) and claims["sub"]
    assert isinstance(claims.get("sid"), str) and claims["sid"]
    assert isinstance(claims.get("events"), dict) and claims["events"].get(EVENT) == {}
    # §2.6 step 6: no nonce
    assert "nonce" not in claims
    return claims
