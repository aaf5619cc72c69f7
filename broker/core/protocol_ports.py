"""The two ports every protocol plugs into (issue 16): one for upstream identity providers (SAML, OpenID
Connect and plain OAuth 2.0 alike), one for downstream apps (the SAML IdP and the OpenID provider).

A journey (``broker.journeys``) calls only these; protocol checks (signatures, replay, ``state`` and mix-up,
status codes, unsolicited answers) live behind them in ``broker.upstream`` and ``broker.downstream``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol as Interface

from broker.core import errors
from broker.core.model import LoginRequest, LoginResult, Protocol, UpstreamIdentity, UpstreamParty
from broker.core.outcomes import PostForm, Redirect
from broker.core.sessions import Participant


@dataclass(frozen=True)
class UpstreamStart:
    """Where the browser goes to sign in, the handle the answer will carry back (an OAuth ``state``, a SAML
    ``RelayState``), and the adapter's own record of the request, opaque to the journey."""

    outgoing: Redirect | PostForm
    handle: str
    pending: str


@dataclass(frozen=True)
class VerifiedAnswer:
    """An upstream's answer after every check of its protocol: who signed in, and what the upstream needs to
    end its own session at logout (``SsoSession.upstream_state``)."""

    identity: UpstreamIdentity
    upstream_state: tuple[tuple[str, str], ...] = ()


class UpstreamAdapter(Interface):
    """One upstream protocol: its registered providers (by name), sending the browser to one and verifying its
    answer. ``pending`` is what ``begin`` returned, kept server-side by the journey under ``handle``."""

    @property
    def protocol(self) -> Protocol: ...

    def knows(self, name: str) -> bool:
        """Whether ``name`` is an upstream of this protocol that can be used now."""
        ...

    def proves_fresh_sign_in(self, name: str) -> bool:
        """Whether ``begin(reauthenticate=True)`` gets an answer that shows a fresh sign-in (OIDC ``auth_time``
        with ``max_age=0``, SAML ``ForceAuthn`` with the AuthnInstant): what a link proof needs."""
        ...

    def begin(self, name: str, now: datetime, login: LoginRequest | None,
              reauthenticate: bool = False) -> UpstreamStart:
        """The request to upstream ``name`` for ``login`` (None: the broker's own sign-in, a link proof)."""
        ...

    def finish(self, pending: str, answer: Mapping[str, str], now: datetime, *, arrived_at: str | None = None,
               fresh_required: bool = False) -> VerifiedAnswer:
        """Verify ``answer`` to the request ``pending``. ``arrived_at`` is the upstream whose endpoint received
        it, where the protocol has one per upstream (an answer at another upstream's endpoint is a mix-up);
        ``fresh_required``: the request must have asked for a fresh sign-in (a link proof)."""
        ...

    def finish_unsolicited(self, answer: Mapping[str, str], now: datetime) -> VerifiedAnswer:
        """An answer no request of this browser is waiting for: verified when the protocol allows it from the
        upstream it names (SAML IdP-initiated SSO, ``allow_unsolicited``), else ``LoginStateInvalid``."""
        ...


#: how a message came through the browser: in the query (a redirect) or in a form (a POST)
REDIRECT, POST = "redirect", "post"


@dataclass(frozen=True)
class DownstreamMessage:
    """An app's request as the browser brought it: the query's or the form's fields (repeated names kept), and
    for a redirect the raw query, whose octets a Redirect-binding signature covers (SAML Bindings §3.4.4.1)."""

    binding: str
    fields: tuple[tuple[str, str], ...]
    raw_query: bytes = b""


class RequestRefused(Exception):
    """An app's request refused; ``reply`` is the login to answer in the app's protocol once its return address
    was checked (else the person gets a page)."""

    def __init__(self, error: errors.BrokerError, reply: LoginRequest | None = None) -> None:
        super().__init__(error.message)
        self.error, self.reply = error, reply


@dataclass(frozen=True)
class DownstreamAnswer:
    """The app's answer in its protocol, and how the SSO session records the app for logout."""

    outgoing: Redirect | PostForm
    participant: Participant


class DownstreamAdapter(Interface):
    """One downstream protocol: reads an app's request, and answers the app that started a login."""

    @property
    def protocol(self) -> Protocol: ...

    def read(self, message: DownstreamMessage, now: datetime) -> LoginRequest:
        """The login an app asks for, after every check of its protocol (signature, registration, return
        address); ``RequestRefused`` otherwise."""
        ...

    def answer(self, result: LoginResult, claims: frozenset[str], sid: str, upstream: UpstreamParty | None,
               now: datetime) -> DownstreamAnswer:
        """The successful answer: ``result`` with the claim names the login may release (``claims``), the SSO
        session's ``sid`` (SAML SessionIndex, OIDC ``sid``) and the upstream that authenticated the person."""
        ...

    def failure(self, login: LoginRequest, error: errors.BrokerError) -> Redirect | PostForm | None:
        """The error in the app's protocol, or None when the app or its return address is no longer registered
        (then a page tells the person)."""
        ...
