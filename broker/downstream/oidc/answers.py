"""The OpenID provider's authorization responses to its clients, as a ``DownstreamAdapter``
(``broker.core.protocol_ports``): a code (RFC 6749 §4.1.2) or an error (§4.1.2.1), by redirect or, with
``response_mode=form_post``, by a posted form; always with ``iss`` (RFC 9207) and to a redirect URI the client
still has registered.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from broker.core import errors
from broker.core.model import LoginRequest, LoginResult, Protocol, UpstreamParty
from broker.core.outcomes import PostForm, Redirect
from broker.core.protocol_ports import DownstreamAdapter, DownstreamAnswer, DownstreamMessage, RequestRefused
from broker.core.sessions import Participant
from broker.downstream.oidc import responses
from broker.downstream.oidc.authorize import AuthorizeRejected, parse_authorization_request
from broker.downstream.oidc.provider import OidcProvider
from broker.oidc.client import OidcClient


def _outgoing(reply: str | PostForm) -> Redirect | PostForm:
    return reply if isinstance(reply, PostForm) else Redirect(reply, 303)


class OidcAnswers:
    """``client(client_id)``: a registered client as it is now; ``issuer``: the provider's issuer identifier."""

    def __init__(self, provider: OidcProvider, client: Callable[[str], OidcClient | None], issuer: str) -> None:
        self._provider, self._client, self._issuer = provider, client, issuer

    @property
    def protocol(self) -> Protocol:
        return Protocol.OIDC

    def read(self, message: DownstreamMessage, now: datetime) -> LoginRequest:
        """An authorization request (OIDC Core §3.1.2.1, by GET or POST; ``authorize``)."""
        try:
            return parse_authorization_request(message.fields, self._client)
        except AuthorizeRejected as rejected:
            raise RequestRefused(rejected.error, rejected.reply) from rejected

    def client_for(self, login: LoginRequest) -> OidcClient:
        """The client, if it and the login's redirect URI are still registered (else ``UnknownParty``)."""
        client = self._client(login.downstream)
        if client is None or login.return_to not in client.redirect_uris:
            raise errors.UnknownParty(detail=f"client {login.downstream!r} or its redirect URI is no longer "
                                             "registered")
        return client

    def answer(self, result: LoginResult, claims: frozenset[str], sid: str, upstream: UpstreamParty | None,
               now: datetime) -> DownstreamAnswer:
        """The code; ``claims`` are the names its grant may release (request, registration, policy, consent)."""
        login = result.request
        client = self.client_for(login)
        code = self._provider.authorization_code(result, claims, sid, now)
        subject = self._provider.subject(client, result.account.account_id)
        return DownstreamAnswer(_outgoing(responses.success(login, self._issuer, code)),
                                Participant(login.downstream, Protocol.OIDC, subject))

    def failure(self, login: LoginRequest, error: errors.BrokerError) -> Redirect | PostForm | None:
        try:
            self.client_for(login)
        except errors.UnknownParty:
            return None
        return _outgoing(responses.failure(login, self._issuer, error))


_check: type[DownstreamAdapter] = OidcAnswers
