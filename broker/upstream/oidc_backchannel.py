"""Logout tokens from an upstream OpenID provider, validated as OpenID Connect Back-Channel Logout 1.0 §2.6 says
(the broker as relying party; the ``UpstreamLogoutTokens`` port of ``broker.core.upstream_logout_tokens``).

The token is a JWT the provider POSTs to ``/upstream/<name>/backchannel-logout`` (§2.5). It is checked with the
upstream's registered settings, and with the very code and keys its ID tokens are (``oidc_tokens.verified_claims``
over the provider's cached JWKS, ``OidcUpstream.signing_key``): only the algorithms allowed for its ID tokens
(never ``none``, never HMAC), ``iss`` the upstream's issuer (a preset's template, Microsoft's ``{tenantid}``,
applies as for ID tokens), ``aud`` the broker's client id there, ``iat`` neither in the future nor older than
``MAX_AGE`` (with the upstream's ``clock_skew_seconds``), ``exp`` when present not passed, ``events`` with the
back-channel logout member, ``sub`` and/or ``sid``, and no ``nonce`` (§2.4: a logout token is not an ID token).
``jti`` is required; remembering it (replay) is the journey's, over the shared pending store.

Everything from the request is untrusted until the signature is verified; nothing of joserfc leaves the module and
every refusal is ``UpstreamVerificationFailed`` with the reason in ``detail`` (the log's, never the caller's).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from joserfc.errors import JoseError
from joserfc.jws import extract_compact

from broker.core import errors
from broker.core.upstream_logout_tokens import UpstreamLogoutToken, UpstreamLogoutTokens
from broker.upstream.factory import ProviderAdapter
from broker.upstream.oidc import OidcUpstream
from broker.upstream.oidc_tokens import MAX_SUB_LENGTH, verified_claims

#: §2.4: the member of ``events`` that makes a JWT a logout token
LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
#: how old a logout token may be (its ``iat``), besides the clock skew; its ``jti`` is remembered this long
MAX_AGE = timedelta(minutes=10)
#: §2.4 explicit typing (RFC 8725 §3.11); a token typed as anything else is another kind of JWT
_TYPES = frozenset({"logout+jwt", "application/logout+jwt", "jwt"})
_WHAT = "logout token"
#: a token longer than this is not read at all (a logout token is a few hundred bytes)
MAX_TOKEN_LENGTH = 16_384


class OidcBackChannel:
    """``provider(name)``: the client of a registered upstream (``Services.upstream_adapter``); only OpenID
    Connect ones (``OidcUpstream``) send logout tokens."""

    def __init__(self, provider: Callable[[str], ProviderAdapter | None]) -> None:
        self._provider = provider

    def knows(self, upstream: str) -> bool:
        return self._oidc(upstream) is not None

    def verify(self, upstream: str, token: str, now: datetime) -> UpstreamLogoutToken:
        found = self._oidc(upstream)
        if found is None:
            raise errors.UnknownUpstream(detail=f"logout token for {upstream!r:.100}, no OpenID Connect upstream")
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        if len(token) > MAX_TOKEN_LENGTH:
            raise _failed(f"{len(token)} characters long")
        settings = found.settings
        _check_type(token)
        claims, _ = verified_claims(token, settings.allowed_algs, lambda kid, alg: found.signing_key(kid, alg, now),
                                    _WHAT)
        skew = timedelta(seconds=settings.clock_skew_seconds)
        return check_claims(claims, upstream=upstream, issuer=settings.quirks.expected_issuer(settings.issuer, claims),
                            client_id=settings.client_id, now=now, skew=skew,
                            identity=lambda: settings.quirks.identity_key(settings.issuer, claims))

    def _oidc(self, upstream: str) -> OidcUpstream | None:
        found = self._provider(upstream)
        return found if isinstance(found, OidcUpstream) else None


def check_claims(claims: Mapping[str, Any], *, upstream: str, issuer: str, client_id: str, now: datetime,
                 skew: timedelta, identity: Callable[[], tuple[str, str]]) -> UpstreamLogoutToken:
    """§2.6 steps 3-6 (and §2.4) on claims whose signature is verified; ``identity`` keys the ``sub``."""
    if claims.get("iss") != issuer:  # step 3: as in ID tokens (OIDC Core 1.0 §3.1.3.7 step 2)
        raise _failed(f"iss {_show(claims.get('iss'))} is not {issuer!r}")
    aud = claims.get("aud")
    audiences = (aud,) if isinstance(aud, str) else tuple(aud) if isinstance(aud, list) else ()
    if client_id not in audiences:  # step 3: "aud ... contains the client_id"
        raise _failed(f"aud {_show(aud)} does not include this client")
    at, leeway = now.timestamp(), skew.total_seconds()
    iat = _number(claims, "iat", required=True)
    if iat is None or iat > at + leeway:  # step 3: iat as in ID tokens (§3.1.3.7 step 10)
        raise _failed(f"issued in the future ({iat}, now {at:.0f})")
    if iat < at - MAX_AGE.total_seconds() - leeway:
        raise _failed(f"issued at {iat:.0f}, more than {MAX_AGE} before now ({at:.0f})")
    exp = _number(claims, "exp", required=False)  # REQUIRED in 1.0 final; drafts before it had none
    if exp is not None and at >= exp + leeway:
        raise _failed(f"expired at {exp:.0f}, now {at:.0f}")
    events = claims.get("events")  # step 5: "events ... contains ... http://schemas.openid.net/event/..."
    if not isinstance(events, dict) or not isinstance(events.get(LOGOUT_EVENT), dict):
        raise _failed("events has no back-channel logout member (a JSON object)")
    if "nonce" in claims:  # step 7: "Verify that the Logout Token does not contain a nonce Claim"
        raise _failed("it carries a nonce: an ID token is no logout token")
    sub, sid = _string(claims, "sub"), _string(claims, "sid")
    if sub is None and sid is None:  # step 6: "contains a sub Claim, a sid Claim, or both"
        raise _failed("neither sub nor sid")
    jti = _string(claims, "jti")
    if jti is None:  # §2.4: REQUIRED, and the replay check needs it
        raise _failed("no jti")
    return UpstreamLogoutToken(upstream=upstream, jti=jti,
                               keep_jti_until=datetime.fromtimestamp(iat, now.tzinfo) + MAX_AGE + 2 * skew,
                               identity=_identity(identity) if sub is not None else None, sid=sid)


def _identity(identity: Callable[[], tuple[str, str]]) -> tuple[str, str] | None:
    """The identity key, or None when the preset cannot key this token (Microsoft keys on ``tid`` and ``oid``,
    which a logout token need not carry): the token is valid, its person cannot be found."""
    try:
        return identity()
    except errors.UpstreamVerificationFailed:
        return None


def _check_type(token: str) -> None:
    """§2.4, RFC 8725 §3.11: a ``typ`` other than a logout token's (an access token's ``at+jwt``) is refused."""
    try:
        typ = extract_compact(token.encode("ascii")).headers().get("typ")
    except (JoseError, ValueError, TypeError, UnicodeError):
        return  # verified_claims refuses it with the reason
    if typ is not None and (not isinstance(typ, str) or typ.lower() not in _TYPES):
        raise _failed(f"typ {_show(typ)} is not a logout token's")


def _string(claims: Mapping[str, Any], name: str) -> str | None:
    value = claims.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > MAX_SUB_LENGTH:
        raise _failed(f"{name} is not a string of 1-{MAX_SUB_LENGTH} characters")
    return value


def _number(claims: Mapping[str, Any], name: str, *, required: bool) -> float | None:
    value = claims.get(name)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _failed(f"{name} is missing or not a finite number")  # RFC 7519 §2 NumericDate
    return float(value)


def _show(value: object) -> str:
    return f"{str(value)!r:.100}"


def _failed(reason: str) -> errors.UpstreamVerificationFailed:
    return errors.UpstreamVerificationFailed(detail=f"{_WHAT}: {reason}")


_check: type[UpstreamLogoutTokens] = OidcBackChannel
