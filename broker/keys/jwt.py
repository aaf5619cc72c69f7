"""The broker's own JWT keys as an OpenID Provider: the JWKS it publishes, the JWTs it signs, and the check of a
JWT it issued itself (an ``id_token_hint``).

Two algorithms (RFC 7518 §3.1): RS256 with the RSA key that also signs SAML, and ES256 with a P-256 key. Each
has one *active* key, the only one that signs, and may have a *next* key, published in the JWKS before it is
used so relying parties have it cached on the day of rotation (OpenID Connect Core 1.0 §10.1.1). A key's
``kid`` is its RFC 7638 thumbprint, so it never changes for the same key and needs no bookkeeping.

Trusted: the PEM files of ``certs/`` (``broker.keys.keyring`` checks their modes and types). Not trusted: every JWT
given to ``verify_own_jwt``. No ``joserfc`` object or exception leaves this module.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from joserfc import jwt
from joserfc.errors import InvalidPayloadError, JoseError
from joserfc.jwk import ECKey, RSAKey
from joserfc.jws import extract_compact

ALGORITHMS = ("RS256", "ES256")
_KEY_TYPES: dict[str, type[RSAKey] | type[ECKey]] = {"RS256": RSAKey, "ES256": ECKey}
#: JWK members of a private key (RFC 7518 §6.2.2, §6.3.2); none of them may ever be published
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth"})


@dataclass(frozen=True)
class JwtKey:
    """One signing key: ``kid`` is its RFC 7638 thumbprint; only an ``active`` key signs."""

    kid: str
    alg: str  # "RS256" | "ES256"
    active: bool
    private_pem: bytes = field(repr=False)


class InvalidJwt(ValueError):
    """A JWT that is not one the broker issued, or not intact; the message says why."""


def jwt_key(private_pem: bytes, alg: str, *, active: bool) -> JwtKey:
    """The ``JwtKey`` of a PEM private key; ``ValueError`` when the key does not suit ``alg``."""
    key = _private_key(private_pem, alg)
    return JwtKey(kid=key.thumbprint(), alg=alg, active=active, private_pem=private_pem)


@functools.lru_cache(maxsize=16)
def _private_key(private_pem: bytes, alg: str) -> RSAKey | ECKey:
    """The parsed key, cached: loading an RSA key checks it, which is too slow to repeat for every token."""
    key_type = _KEY_TYPES.get(alg)
    if key_type is None:
        raise ValueError(f"unsupported JWT signing algorithm {alg!r} (supported: {', '.join(ALGORITHMS)})")
    try:
        key = key_type.import_key(private_pem)
    except (JoseError, ValueError, TypeError) as exc:
        raise ValueError(f"not a PEM {key_type.key_type} private key for {alg} ({type(exc).__name__})") from exc
    if not key.is_private:
        raise ValueError(f"a {alg} signing key must be a private key")
    if isinstance(key, ECKey) and key.curve_name != "P-256":
        raise ValueError(f"ES256 needs a P-256 key, not {key.curve_name}")
    return key


def _public_key(key: JwtKey) -> RSAKey | ECKey:
    public = _private_key(key.private_pem, key.alg).as_dict(private=False)
    return _KEY_TYPES[key.alg].import_key(public)


def public_jwks(keys: Sequence[JwtKey]) -> dict[str, Any]:
    """The JWK Set (RFC 7517 §5) of ``keys``, active and next alike, with public members only."""
    published = []
    for key in keys:
        entry = {k: v for k, v in _private_key(key.private_pem, key.alg).as_dict(private=False).items()
                 if k not in PRIVATE_MEMBERS}
        published.append({**entry, "kid": key.kid, "alg": key.alg, "use": "sig"})
    return {"keys": published}


def sign_jwt(claims: Mapping[str, Any], key: JwtKey, typ: str = "JWT") -> str:
    """``claims`` as a compact JWS (RFC 7515 §7.1) with header ``alg``, ``kid`` and ``typ``; only an active
    key signs."""
    if not key.active:
        raise ValueError(f"key {key.kid} is a next key: it is published but must not sign yet")
    header = {"alg": key.alg, "kid": key.kid, "typ": typ}
    return jwt.encode(header, dict(claims), _private_key(key.private_pem, key.alg), algorithms=[key.alg],
                      default_type=None)


def _media_type(typ: object) -> str | None:
    """A JOSE ``typ`` compared as RFC 7515 §4.1.9 says: case-insensitively, ``application/`` optional."""
    if not isinstance(typ, str):
        return None
    typ = typ.lower()
    return typ[len("application/"):] if typ.startswith("application/") else typ


def verify_own_jwt(raw: str, keys: Sequence[JwtKey], typ: str | None = None) -> dict[str, Any]:
    """The claims of a JWT signed by one of ``keys`` (active or next), or ``InvalidJwt``; with ``typ``, only a
    JWT whose header names that type (explicit typing, RFC 8725 §3.11: an ID token is never taken for an access
    token, RFC 9068 §4).

    The ``kid`` selects the key and the header's ``alg`` must be that key's algorithm, so neither ``none``,
    an HMAC keyed with a public key (RFC 8725 §2.1, §3.1) nor an RS256 header on the EC key is accepted.
    Only the signature is checked: ``exp``, ``aud`` and the rest are for the caller, who knows what the token
    is for (an expired ``id_token_hint`` is still a good hint, OIDC Core 1.0 §3.1.2.1).
    """
    if not isinstance(raw, str) or raw.count(".") != 2:
        raise InvalidJwt("not a signed JWT in compact form")
    try:
        header = extract_compact(raw.encode("ascii")).headers()
    except (JoseError, ValueError, TypeError, UnicodeError) as exc:
        raise InvalidJwt(f"unreadable JOSE header ({type(exc).__name__})") from exc
    alg, kid = header.get("alg"), header.get("kid")
    if not isinstance(alg, str) or alg not in ALGORITHMS:
        raise InvalidJwt(f"alg {str(alg)!r:.40} is not one the broker signs with")
    if "crit" in header or "b64" in header:
        raise InvalidJwt("JOSE header has extensions (crit/b64) the broker never sets")
    if not isinstance(kid, str):
        raise InvalidJwt("JOSE header has no kid (the broker always sets one)")
    if typ is not None and _media_type(header.get("typ")) != _media_type(typ):
        raise InvalidJwt(f"typ {str(header.get('typ'))!r:.40} is not {typ}")
    key = next((k for k in keys if k.kid == kid), None)
    if key is None:
        raise InvalidJwt(f"kid {kid!r:.80} is not one of the broker's keys")
    if key.alg != alg:
        raise InvalidJwt(f"alg {alg} does not match key {key.kid} ({key.alg})")
    try:
        claims = jwt.decode(raw, _public_key(key), algorithms=[key.alg]).claims
    except InvalidPayloadError as exc:  # raised once the signature is verified
        raise InvalidJwt("payload is not a JSON object") from exc
    except (JoseError, ValueError, TypeError) as exc:
        raise InvalidJwt(f"signature not valid ({type(exc).__name__})") from exc
    if not isinstance(claims, dict):
        raise InvalidJwt("payload is not a JSON object")
    return dict(claims)
