"""The port for logout tokens an upstream OpenID provider sends the broker (OpenID Connect Back-Channel Logout 1.0,
the broker as relying party; issue 18). Implemented in ``broker.upstream.oidc_backchannel``; used by
``broker.journeys.upstream_backchannel``, which remembers the ``jti`` (replay) and ends the sessions.

Every check of §2.6 but the replay is the adapter's: signature with the upstream's own keys and algorithms,
``iss``, ``aud``, ``iat``/``exp``, ``events``, ``sub`` and/or ``sid``, no ``nonce``.

The provider's own session id (``sid``) reaches the broker twice: in the ID token of the sign-in (§2.1: an OP with
``backchannel_logout_session_supported`` puts it there) and in the logout token (§2.4). The upstream adapter keeps
the first as the ``UPSTREAM_SID`` pair of ``VerifiedAnswer.upstream_state`` (an adapter's own name/value pairs, as a
SAML upstream keeps its NameID and SessionIndex), so it survives the steps of a login (step-up, enrolment)
unchanged; the login journey records it in the session registry (``SsoSessionRecord.upstream_sid``), where the
back-channel journey finds the sessions a logout token names.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol as Interface
from typing import TypeGuard


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
    #: the upstream's own session id (§2.4), matched against ``SsoSessionRecord.upstream_sid``
    sid: str | None


#: the ``upstream_state`` name under which an OpenID upstream's adapter keeps the ID token's ``sid``
UPSTREAM_SID = "sid"
#: the longest ``sid`` kept (the registry's column; OIDC Core 1.0 §2 bounds ``sub`` alike)
MAX_UPSTREAM_SID = 255


def recordable_sid(value: object) -> TypeGuard[str]:
    """Whether ``value`` is a ``sid`` the broker keeps and matches: a string of 1-``MAX_UPSTREAM_SID`` printable
    characters (Front-Channel Logout 1.0 §3: "the same as an OAuth 2.0 Client Identifier", printable ASCII in
    RFC 6749 Appendix A.1; other printable text is kept too). Anything else is never recorded, and a logout token
    naming it matches no session."""
    return isinstance(value, str) and 0 < len(value) <= MAX_UPSTREAM_SID and value.isprintable()


def upstream_sid(upstream_state: Sequence[tuple[str, str]]) -> str | None:
    """The upstream's ``sid`` an adapter put into ``upstream_state`` (``UPSTREAM_SID``), if it is recordable."""
    found = dict(upstream_state).get(UPSTREAM_SID)
    return found if recordable_sid(found) else None


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
