"""The port for logout tokens an upstream OpenID provider sends the broker (OpenID Connect Back-Channel Logout 1.0,
the broker as relying party; issue 18). Implemented in ``broker.upstream.oidc_backchannel``; used by
``broker.journeys.upstream_backchannel``, which remembers the ``jti`` (replay) and ends the sessions.

Every check of §2.6 but the replay is the adapter's: signature with the upstream's own keys and algorithms,
``iss``, ``aud``, ``iat``/``exp``, ``events``, ``sub`` and/or ``sid``, no ``nonce``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol as Interface


@dataclass(frozen=True)
class UpstreamLogoutToken:
    """A logout token that passed every check of Back-Channel Logout 1.0 §2.6 (the replay aside)."""

    #: the registered upstream it came from (the ``upstream`` of the SSO sessions it may end)
    upstream: str
    #: the token's ``jti`` (§2.4), and how long it must be remembered: after that its ``iat`` is too old anyway
    jti: str
    keep_jti_until: datetime
    #: the linked identity (issuer, subject) its ``sub`` names, as the upstream's sign-ins key it
    #: (``AccountStore.find_by_identity``); None when the token has no ``sub`` (a ``sid`` alone, §2.4)
    identity: tuple[str, str] | None
    #: the upstream's own session id (§2.1); the broker does not record it, so it cannot select by it
    sid: str | None


class UpstreamLogoutTokens(Interface):
    """Logout tokens of the registered OpenID Connect upstreams."""

    def knows(self, upstream: str) -> bool:
        """Whether ``upstream`` is a registered OpenID Connect provider (not SAML, not plain OAuth 2.0)."""
        ...

    def verify(self, upstream: str, token: str, now: datetime) -> UpstreamLogoutToken:
        """The verified token; ``UnknownUpstream`` when ``upstream`` is no OpenID Connect upstream,
        ``UpstreamVerificationFailed`` when the token fails a check, ``UpstreamError`` when the provider's keys
        cannot be fetched."""
        ...
