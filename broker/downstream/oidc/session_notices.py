"""What an OpenID Connect client hears when its citizen's SSO session at the broker ends
(``broker.core.logout_ports.SessionNotices``; used by ``broker.journeys.session_end``).

- Back-Channel Logout 1.0: a Logout Token (§2.4) for the client's ``backchannel_logout_uri`` (§2.2), as an outbox
  message POSTed form-encoded (§2.5). It carries ``sub`` (the identifier that client was given, pairwise) and
  ``sid`` both, whether the client asked for ``sid`` or not, a new ``jti``, a two-minute ``exp``, the ``events``
  member and no ``nonce`` (§2.4: so it cannot be taken for an ID token); its JOSE header has ``typ: logout+jwt``.
  It is signed with the key and algorithm of the client's ID tokens (``id_token.sign_for``).
- Front-Channel Logout 1.0: the client's ``frontchannel_logout_uri`` (§2), with ``iss`` and ``sid`` added to its
  query when the client registered ``frontchannel_logout_session_required`` (§3), for an iframe of the page the
  browser sees next.

Trusted: the registered client metadata (checked by ``broker.oidc.client_metadata``) and the participants the
broker recorded itself. Nothing is sent from here: the outbox's worker does that.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from broker.core.model import Protocol
from broker.core.outbox import OutgoingMessage
from broker.core.sessions import Participant
from broker.downstream.oidc.id_token import sign_for
from broker.keys.keyring import KeyRing
from broker.oidc.client import OidcClient

#: §2.4: the member of ``events`` that makes a JWT a logout token
BACKCHANNEL_LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
#: §2.4: the explicit JWT type (RFC 8725 §3.11) that keeps a logout token apart from other JWTs
LOGOUT_TOKEN_TYPE = "logout+jwt"  # noqa: S105 - a media type, not a password
#: how long a logout token is good for: §2.4 recommends at most two minutes
LOGOUT_TOKEN_LIFETIME = timedelta(minutes=2)
#: ``OutgoingMessage.kind`` of a logout token
KIND = "backchannel-logout"
#: §2.5: the token is POSTed as the form parameter ``logout_token``
FORM = "application/x-www-form-urlencoded"


def new_jti() -> str:
    """A logout token's ``jti`` (§2.4): 192 random bits, so a receiver can use it to spot a replay."""
    return secrets.token_urlsafe(24)


def logout_token_claims(issuer: str, client_id: str, sub: str, sid: str, jti: str, now: datetime) -> dict[str, Any]:
    """The claims of a logout token (§2.4): ``iss``, ``aud``, ``iat``, ``exp``, ``jti``, ``events``, ``sub`` and
    ``sid``; never ``nonce`` (§2.4: "A nonce Claim MUST NOT be present")."""
    issued = int(now.timestamp())
    return {
        "iss": issuer,
        "aud": client_id,
        "iat": issued,
        "exp": issued + int(LOGOUT_TOKEN_LIFETIME.total_seconds()),
        "jti": jti,
        "sub": sub,
        "sid": sid,
        "events": {BACKCHANNEL_LOGOUT_EVENT: {}},
    }


def with_session_query(uri: str, issuer: str, sid: str) -> str:
    """``uri`` with ``iss`` and ``sid`` added to its query (Front-Channel Logout 1.0 §3), the query it already has
    kept as registered (§2: the URI "MAY include ... query parameter components")."""
    parts = urlsplit(uri)
    added = urlencode({"iss": issuer, "sid": sid})
    return urlunsplit(parts._replace(query=f"{parts.query}&{added}" if parts.query else added))


class OidcSessionNotices:
    """``SessionNotices`` for the broker's OpenID provider.

    ``issuer`` is the provider's issuer (``ProviderSettings.issuer``), ``keys`` its key ring, ``clients`` finds a
    registered client by ``client_id`` (``FileRegistry.oidc_client``: files, then dynamic registrations), and
    ``new_id`` makes each token's ``jti`` (tests pass their own)."""

    def __init__(self, issuer: str, keys: KeyRing, clients: Callable[[str], OidcClient | None],
                 new_id: Callable[[], str] = new_jti) -> None:
        self._issuer, self._keys, self._clients, self._new_id = issuer, keys, clients, new_id

    def _client(self, participant: Participant) -> OidcClient | None:
        """The participant's client while it is still registered; None for another protocol's participant."""
        if participant.protocol is not Protocol.OIDC:
            return None
        return self._clients(participant.party_id)

    def back_channel(self, participant: Participant, sid: str, now: datetime) -> OutgoingMessage | None:
        """The signed logout token for the participant's ``backchannel_logout_uri`` (§2.4-2.5), or None."""
        client = self._client(participant)
        if client is None or client.backchannel_logout_uri is None:
            return None
        jti = self._new_id()
        claims = logout_token_claims(self._issuer, client.client_id, participant.subject, sid, jti, now)
        token = sign_for(self._keys, client, claims, typ=LOGOUT_TOKEN_TYPE)
        return OutgoingMessage(receiver=client.client_id, jti=jti, kind=KIND, url=client.backchannel_logout_uri,
                               body=urlencode({"logout_token": token}), content_type=FORM)

    def front_channel(self, participant: Participant, sid: str) -> str | None:
        """The participant's ``frontchannel_logout_uri``, with ``iss`` and ``sid`` when it asked for them (§3), or
        None."""
        client = self._client(participant)
        if client is None or client.frontchannel_logout_uri is None:
            return None
        if not client.frontchannel_logout_session_required:
            return client.frontchannel_logout_uri
        return with_session_query(client.frontchannel_logout_uri, self._issuer, sid)
