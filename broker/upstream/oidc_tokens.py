"""ID token validation, OpenID Connect Core 1.0 §3.1.3.7 (and §3.1.3.8 for ``at_hash``).

The order is the specification's: read the JOSE header and refuse any algorithm the upstream is not allowed
(never ``none``, never HMAC: §3.1.3.7 steps 6-8, RFC 8725 §3.1-3.2), verify the signature with a key from the
provider's JWKS, then check ``iss`` (step 2), ``aud``/``azp`` (steps 3-5), ``exp`` (step 9), ``iat`` (step 10),
``nonce`` (step 11) and ``sub`` (§2). The caller passes the time: nothing here reads the clock. Every failure
is ``UpstreamVerificationFailed`` with the reason in ``detail``; no ``joserfc`` exception leaves this module.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jws import extract_compact

from broker.core import errors
from broker.upstream.oidc_metadata import VerificationKey

#: (kid, alg) -> the provider's key; raises ``UpstreamVerificationFailed`` when there is none
KeyResolver = Callable[[str | None, str], VerificationKey]

_HASHES = {"256": hashlib.sha256, "384": hashlib.sha384, "512": hashlib.sha512}
MAX_SUB_LENGTH = 255  # OIDC Core 1.0 §2


@dataclass(frozen=True)
class IdTokenExpectations:
    """What a valid ID token must say for this authorization request."""

    issuer: str
    client_id: str
    nonce: str
    allowed_algs: tuple[str, ...]
    now: datetime
    clock_skew: timedelta
    access_token: str | None = None
    #: the issuer this token must carry, from its verified claims (Microsoft's ``{tenantid}`` template);
    #: ``issuer`` when not given
    issuer_of: Callable[[Mapping[str, Any]], str] | None = None
    #: the ``max_age`` sent in the authorization request (0 with ``prompt=login`` for a re-authentication);
    #: then ``auth_time`` is required and must be that recent (§3.1.3.7 step 13)
    max_age: int | None = None


def validate_id_token(raw: str, expected: IdTokenExpectations, resolve_key: KeyResolver) -> dict[str, Any]:
    """The verified claims of ``raw``, or ``UpstreamVerificationFailed``."""
    if expected.now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    claims, alg = verified_claims(raw, expected.allowed_algs, resolve_key)
    check_claims(claims, expected, alg)
    return claims


def verified_claims(raw: str, allowed_algs: tuple[str, ...], resolve_key: KeyResolver,
                    what: str = "ID token") -> tuple[dict[str, Any], str]:
    """The claims of the JWS ``raw`` once its header and signature check out (§3.1.3.7 steps 6-8), and its
    ``alg``; nothing of the claims is checked yet. Shared with the upstream's logout tokens (Back-Channel Logout
    1.0 §2.6 step 3: "in the same way ... ID Tokens"), which say ``what`` they are in the failure's detail."""
    alg, kid = _read_header(raw, allowed_algs, what)
    key = resolve_key(kid, alg)
    try:
        claims = dict(jwt.decode(raw, key, algorithms=[alg]).claims)
    except (JoseError, ValueError, TypeError) as exc:
        raise _failed(f"signature not valid ({type(exc).__name__})", what) from exc
    return claims, alg


def check_claims(claims: Mapping[str, Any], expected: IdTokenExpectations, alg: str) -> None:
    """The claim checks of §3.1.3.7 steps 2-5 and 9-11, on claims whose signature is already verified."""
    issuer = expected.issuer_of(claims) if expected.issuer_of is not None else expected.issuer
    if claims.get("iss") != issuer:
        raise _failed(f"iss {_show(claims.get('iss'))} is not {issuer!r}")
    audiences = _audiences(claims.get("aud"))
    if expected.client_id not in audiences:
        raise _failed(f"aud {_show(claims.get('aud'))} does not include this client")
    azp = claims.get("azp")
    if (azp is not None or len(audiences) > 1) and azp != expected.client_id:
        raise _failed(f"azp {_show(azp)} is not this client")
    now = expected.now.timestamp()
    skew = expected.clock_skew.total_seconds()
    exp = _number(claims, "exp", required=True)
    if exp is not None and now >= exp + skew:
        raise _failed(f"expired at {exp:.0f}, now {now:.0f}")
    iat = _number(claims, "iat", required=True)
    if iat is not None and iat > now + skew:
        raise _failed(f"issued in the future ({iat:.0f}, now {now:.0f})")
    nbf = _number(claims, "nbf", required=False)
    if nbf is not None and nbf > now + skew:
        raise _failed(f"not valid before {nbf:.0f}, now {now:.0f}")
    auth_time = _number(claims, "auth_time", required=expected.max_age is not None)
    if expected.max_age is not None and auth_time is not None and auth_time < now - expected.max_age - skew:
        raise _failed(f"auth_time {auth_time:.0f} is older than the max_age {expected.max_age} asked for "
                      f"(now {now:.0f}): the provider did not sign the person in again")
    nonce = claims.get("nonce")
    if not isinstance(nonce, str) or not hmac.compare_digest(nonce.encode(), expected.nonce.encode()):
        raise _failed("nonce does not match the authorization request")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub or len(sub) > MAX_SUB_LENGTH:
        raise _failed("sub is missing or not a string of 1-255 characters")
    at_hash = claims.get("at_hash")
    if at_hash is not None and expected.access_token is not None and not (
            isinstance(at_hash, str)
            and hmac.compare_digest(at_hash.encode(), half_hash(expected.access_token, alg).encode())):
        raise _failed("at_hash does not match the access token (§3.1.3.8)")


def half_hash(value: str, alg: str) -> str:
    """Base64url of the left half of the hash ``alg`` uses (``at_hash``/``c_hash``, OIDC Core 1.0 §3.1.3.6)."""
    digest = _HASHES[alg[-3:]](value.encode("utf-8")).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode("ascii")


def _read_header(raw: str, allowed_algs: tuple[str, ...], what: str) -> tuple[str, str | None]:
    if not isinstance(raw, str) or raw.count(".") != 2:
        raise _failed(f"not a signed JWT in compact form (an encrypted {what} is not supported)", what)
    try:
        header = extract_compact(raw.encode("ascii")).headers()
    except (JoseError, ValueError, TypeError) as exc:
        raise _failed(f"unreadable JOSE header ({type(exc).__name__})", what) from exc
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in allowed_algs:
        raise _failed(f"alg {_show(alg)} is not allowed for this upstream (allowed: {', '.join(allowed_algs)})",
                      what)
    if "crit" in header or "b64" in header:
        raise _failed("JOSE header has extensions (crit/b64) this broker does not understand", what)
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise _failed("kid is not a string", what)
    return alg, kid


def _audiences(aud: object) -> tuple[str, ...]:
    if isinstance(aud, str):
        return (aud,)
    if isinstance(aud, list) and all(isinstance(a, str) for a in aud):
        return tuple(aud)
    return ()


def _number(claims: Mapping[str, Any], name: str, *, required: bool) -> float | None:
    value = claims.get(name)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _failed(f"{name} is missing or not a number")
    # RFC 7519 §2 NumericDate is a JSON number, and JSON (RFC 8259 §6) has no NaN or Infinity; Python's json
    # reads them anyway, and every comparison with NaN is false: an exp of NaN would never expire.
    if not math.isfinite(value):
        raise _failed(f"{name} is not a finite number")
    return float(value)


def _show(value: object) -> str:
    return f"{str(value)!r:.100}"


def _failed(reason: str, what: str = "ID token") -> errors.UpstreamVerificationFailed:
    return errors.UpstreamVerificationFailed(detail=f"{what}: {reason}")
