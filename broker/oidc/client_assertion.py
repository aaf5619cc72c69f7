"""The ``private_key_jwt`` client assertion: OpenID Connect Core 1.0 §9 and RFC 7523 §3.

The order: read the JOSE header and refuse any algorithm but RS256, ES256 and PS256 (never ``none``, never
HMAC: RFC 8725 §3.1-3.2), pick the key from the client's registered JWKS by ``kid`` (or its only key of the
matching type when the assertion names none), verify the signature, then the claims of RFC 7523 §3: ``iss``
and ``sub`` are the client (item 1-2), ``aud`` names this server (item 3), ``exp`` is given and not passed
(item 4), ``nbf``/``iat`` are not in the future (items 5-6), ``jti`` is given (item 7). The caller keeps the
``jti`` until ``expires_at`` and refuses it a second time: this module reads no clock and keeps no state.

Trusted: ``client_id`` (looked up by the caller), ``jwks_json`` (the client's registration), ``audiences`` and
``now``. Not trusted: everything in ``assertion``. Every failure is ``InvalidClientAssertion`` with a reason for
the operator's log; no ``joserfc`` exception leaves this module.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from joserfc import jwt
from joserfc.errors import InvalidPayloadError, JoseError
from joserfc.jwk import ECKey, RSAKey
from joserfc.jws import extract_compact

#: the algorithm -> the JWK key type it needs (RFC 7518 §3.1); P-256 for ES256 (§3.4)
ALGORITHMS: Mapping[str, str] = {"RS256": "RSA", "PS256": "RSA", "ES256": "EC"}
CLOCK_SKEW = timedelta(seconds=60)
MAX_JTI_LENGTH = 256  # it is stored for replay detection
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


class InvalidClientAssertion(ValueError):
    """The client assertion does not authenticate the client; the message says why."""


@dataclass(frozen=True)
class ClientAssertion:
    """A verified assertion: its ``jti`` must not be accepted again before ``expires_at``."""

    jti: str
    expires_at: datetime


def verify_client_assertion(assertion: str, client_id: str, jwks_json: str, audiences: Collection[str],
                            now: datetime, max_lifetime: timedelta = timedelta(minutes=5)) -> ClientAssertion:
    """The verified assertion of ``client_id``, or ``InvalidClientAssertion``.

    ``audiences``: the values ``aud`` may name (the token endpoint URL, the issuer). ``max_lifetime``: how far
    in the future ``exp`` may lie, so a stolen assertion is useful for minutes at most.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    alg, kid = _read_header(assertion)
    key = _select_key(_client_keys(jwks_json), alg, kid)
    try:
        claims = jwt.decode(assertion, key, algorithms=[alg]).claims
    except InvalidPayloadError as exc:  # raised once the signature is verified
        raise InvalidClientAssertion("payload is not a JSON object") from exc
    except (JoseError, ValueError, TypeError) as exc:
        raise InvalidClientAssertion(f"signature not valid ({type(exc).__name__})") from exc
    if not isinstance(claims, dict):
        raise InvalidClientAssertion("payload is not a JSON object")
    return _check_claims(claims, client_id, audiences, now, max_lifetime)


def _read_header(assertion: str) -> tuple[str, str | None]:
    if not isinstance(assertion, str) or assertion.count(".") != 2:
        raise InvalidClientAssertion("not a signed JWT in compact form")
    try:
        header = extract_compact(assertion.encode("ascii")).headers()
    except (JoseError, ValueError, TypeError, UnicodeError) as exc:
        raise InvalidClientAssertion(f"unreadable JOSE header ({type(exc).__name__})") from exc
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in ALGORITHMS:
        raise InvalidClientAssertion(f"alg {_show(alg)} is not allowed (allowed: {', '.join(ALGORITHMS)})")
    if "crit" in header or "b64" in header:
        raise InvalidClientAssertion("JOSE header has extensions (crit/b64) the broker does not understand")
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise InvalidClientAssertion("kid is not a string")
    return alg, kid


def _client_keys(jwks_json: str) -> list[dict[str, Any]]:
    try:
        document = json.loads(jwks_json)
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidClientAssertion("the client's registered jwks is not JSON") from exc
    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list):
        raise InvalidClientAssertion("the client's registered jwks is not a JWK Set")
    return [key for key in keys if isinstance(key, dict)]


def _usable(entry: Mapping[str, Any], alg: str) -> bool:
    """A signature key of the type ``alg`` needs, not restricted to another algorithm or use."""
    kty = ALGORITHMS[alg]
    return (entry.get("kty") == kty and (kty != "EC" or entry.get("crv") == "P-256")
            and entry.get("use", "sig") == "sig" and entry.get("alg", alg) == alg)


def _select_key(entries: list[dict[str, Any]], alg: str, kid: str | None) -> RSAKey | ECKey:
    candidates = [e for e in entries if _usable(e, alg)]
    if kid is not None:
        candidates = [e for e in candidates if e.get("kid") == kid]
        if len(candidates) != 1:
            raise InvalidClientAssertion(f"no single {alg} key with kid {_show(kid)} in the client's jwks")
    elif len(candidates) != 1:
        raise InvalidClientAssertion(f"the assertion has no kid and the client's jwks has {len(candidates)} "
                                     f"{alg} keys, not one")
    public = {k: v for k, v in candidates[0].items() if k not in _PRIVATE_MEMBERS}
    try:
        return (RSAKey if alg != "ES256" else ECKey).import_key(public)
    except (JoseError, ValueError, TypeError) as exc:
        raise InvalidClientAssertion(f"the client's {alg} key is not usable ({type(exc).__name__})") from exc


def _check_claims(claims: Mapping[str, Any], client_id: str, audiences: Collection[str], now: datetime,
                  max_lifetime: timedelta) -> ClientAssertion:
    # RFC 7523 §3 items 1-2, OIDC Core §9: "iss ... MUST contain the client_id", "sub ... MUST contain the client_id"
    for name in ("iss", "sub"):
        if claims.get(name) != client_id:
            raise InvalidClientAssertion(f"{name} {_show(claims.get(name))} is not the client_id")
    aud = claims.get("aud")
    if not set(_audiences(aud)) & set(audiences):
        raise InvalidClientAssertion(f"aud {_show(aud)} names neither the token endpoint nor the issuer")
    at, skew = now.timestamp(), CLOCK_SKEW.total_seconds()
    exp = _number(claims, "exp")
    if exp is None:
        raise InvalidClientAssertion("exp is missing")
    if at >= exp + skew:
        raise InvalidClientAssertion(f"expired at {exp:.0f}, now {at:.0f}")
    if exp > at + max_lifetime.total_seconds() + skew:
        raise InvalidClientAssertion(f"exp {exp:.0f} is more than {max_lifetime} after now ({at:.0f})")
    for name in ("iat", "nbf"):
        value = _number(claims, name)
        if value is not None and value > at + skew:
            raise InvalidClientAssertion(f"{name} {value:.0f} is in the future (now {at:.0f})")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI_LENGTH:
        raise InvalidClientAssertion(f"jti is missing or not a string of 1-{MAX_JTI_LENGTH} characters")
    return ClientAssertion(jti=jti, expires_at=datetime.fromtimestamp(exp, UTC))


def _audiences(aud: object) -> tuple[str, ...]:
    if isinstance(aud, str):
        return (aud,)
    if isinstance(aud, list):
        return tuple(a for a in aud if isinstance(a, str))
    return ()


def _number(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    # a NumericDate is a finite JSON number (RFC 7519 §2); Python's json also reads NaN, which compares false
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidClientAssertion(f"{name} is not a finite number")
    return float(value)


def _show(value: object) -> str:
    """``value`` for a log line: a repr (so a missing claim reads None, not 'None'), cut at 100 characters."""
    return f"{value!r:.100}"
