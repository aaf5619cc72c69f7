"""The ports single logout needs (SAML 2.0 Profiles §4.4; issue 16): the apps' side (``AppLogout``: the broker as
SAML IdP tells its SPs, and answers an SP that asked) and the upstream side (``UpstreamLogout``: the broker as SAML
SP ends the session at the IdP it came from, and answers an IdP that asked). Implemented in
``broker.downstream.saml_app_logout`` and ``broker.upstream.saml_upstream_logout``; used by
``broker.journeys.logout``. Every signature, Issuer, Destination and InResponseTo check is the adapters'.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Protocol as Interface

from broker.core import errors
from broker.core.outbox import OutgoingMessage
from broker.core.outcomes import PostForm, Redirect
from broker.core.protocol_ports import POST as POST
from broker.core.protocol_ports import REDIRECT as REDIRECT
from broker.core.sessions import Participant, SsoSession


@dataclass(frozen=True)
class IncomingMessage:
    """A protocol message as the browser brought it: its binding ("redirect" or "post"), the message, the
    RelayState, and for the Redirect binding the signature parameters and the raw query they cover
    (Bindings §3.4.4.1: the signature is over the octets as sent)."""

    binding: str
    message: str
    relay_state: str | None
    sig_alg: str | None = None
    signature: str | None = None
    raw_query: bytes = b""


@dataclass(frozen=True)
class ReplyTo:
    """Whom a LogoutRequest is answered: a registered SP, at its metadata endpoint only, in response to its
    request (Core §3.7.2)."""

    issuer: str
    request_id: str
    binding: str
    relay_state: str | None


@dataclass(frozen=True)
class AppLogoutRequest:
    """An SP's verified LogoutRequest; whether it names this browser's session is the journey's question."""

    reply: ReplyTo
    name_id: str
    name_id_format: str | None
    sp_name_qualifier: str | None
    session_indexes: tuple[str, ...]


class LogoutRefused(Exception):
    """A refused logout message; ``reply`` is set once the sender is known to be a registered SP."""

    def __init__(self, error: errors.BrokerError, reply: ReplyTo | None = None) -> None:
        super().__init__(error.message)
        self.error, self.reply = error, reply


class Refusal(Enum):
    """Why a LogoutRequest is refused, beyond the error's own status (Core §3.2.2.2, §3.7.3.2)."""

    REQUEST_DENIED = "request-denied"  # a replay
    UNKNOWN_PRINCIPAL = "unknown-principal"  # it names another person or session


@dataclass(frozen=True)
class Sent:
    """A message sent through the browser, and its ID (the answer must be ``InResponseTo`` it)."""

    outgoing: Redirect | PostForm
    message_id: str


class AppLogout(Interface):
    """The SAML IdP's single logout toward its SPs."""

    def read_request(self, message: IncomingMessage, now: datetime) -> AppLogoutRequest:
        """An SP's LogoutRequest, verified; ``LogoutRefused`` otherwise."""
        ...

    def read_response(self, message: IncomingMessage, now: datetime, *, issuer: str, request_id: str) -> bool:
        """Whether the SP ``issuer`` answered the request ``request_id`` with Success; ``LogoutRefused`` for a
        message that is not that answer (forged, another SP's, another request's)."""
        ...

    def request(self, participant: Participant, sid: str, relay_state: str, now: datetime) -> Sent | None:
        """The LogoutRequest for ``participant`` (its NameID, SessionIndex ``sid``); None when its metadata
        publishes no SingleLogoutService."""
        ...

    def answer(self, reply: ReplyTo, *, partial: bool = False) -> Redirect | PostForm | None:
        """Success (or Success/PartialLogout) to the SP that asked; None when it is no longer registered."""
        ...

    def refuse(self, reply: ReplyTo, error: errors.BrokerError,
               refusal: Refusal | None = None) -> Redirect | PostForm | None:
        """The error, as a signed LogoutResponse; None when the SP is no longer registered."""
        ...


@dataclass(frozen=True)
class UpstreamLogoutMessage:
    """A verified LogoutRequest or LogoutResponse from an upstream IdP (``entity_id``)."""

    is_response: bool
    entity_id: str
    message_id: str
    in_response_to: str | None
    success: bool
    status: str | None
    name_id: str | None
    session_indexes: tuple[str, ...]


class UpstreamLogout(Interface):
    """The broker's single logout as SAML SP toward the IdPs its sessions came from."""

    def read(self, fields: Mapping[str, str], raw_query: bytes | None, endpoint: str,
             now: datetime) -> UpstreamLogoutMessage:
        """A message at the SP's SingleLogoutService ``endpoint``, verified against its sender's metadata;
        ``InvalidRequest`` otherwise."""
        ...

    def names_session(self, sso: SsoSession, message: UpstreamLogoutMessage) -> bool:
        """Whether the IdP's LogoutRequest names this session: it came from that IdP, with that NameID (and
        SessionIndex, when given) as the IdP issued them (Core §3.7.3)."""
        ...

    def request(self, sso: SsoSession, relay_state: str, now: datetime) -> tuple[Sent, str] | None:
        """A LogoutRequest to the IdP the session came from, and the IdP's entity ID; None when the session did not
        come from a SAML IdP, or the IdP publishes no SingleLogoutService."""
        ...

    def answer(self, entity_id: str, request_id: str, success: bool, relay_state: str | None,
               now: datetime) -> Redirect | PostForm:
        """The LogoutResponse to an IdP's LogoutRequest (``UnknownUpstream`` when it cannot be sent)."""
        ...


class SessionNotices(Interface):
    """How the apps of an ended session hear it without the browser, or in a frame of the signed-out page: OpenID
    Connect Back-Channel Logout 1.0 and Front-Channel Logout 1.0 (``broker.downstream.oidc.session_notices``).
    The participants of other protocols (SAML) are the ``AppLogout`` chain's."""

    def back_channel(self, participant: Participant, sid: str, now: datetime) -> OutgoingMessage | None:
        """The logout token (Back-Channel Logout 1.0 §2.4: signed, ``events``, ``sid`` and/or ``sub``, no
        ``nonce``, a short ``exp``, a new ``jti``) POSTed to the participant's ``backchannel_logout_uri``
        (§2.5), as an outbox message; None when the participant is no OIDC client or registered no such URI."""
        ...

    def front_channel(self, participant: Participant, sid: str) -> str | None:
        """The participant's ``frontchannel_logout_uri`` with ``iss`` and ``sid`` added when it asked for them
        (Front-Channel Logout 1.0 §2-3), for an iframe of the signed-out page; None when it registered none."""
        ...
