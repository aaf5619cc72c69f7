"""The SAML IdP's single logout toward its SPs as the ``AppLogout`` port (``broker.core.logout_ports``), over
``saml_logout`` (parsing, signature and Destination checks, signed messages at the SPs' metadata endpoints)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT

from broker.core import errors
from broker.core.logout_ports import (
    REDIRECT,
    AppLogout,
    AppLogoutRequest,
    IncomingMessage,
    LogoutRefused,
    Refusal,
    ReplyTo,
    Sent,
)
from broker.core.model import Protocol
from broker.core.outcomes import PostForm, Redirect
from broker.core.sessions import Participant
from broker.downstream import saml_logout as slo
from broker.downstream.saml_requests import IncomingRequest
from broker.downstream.saml_server import IdpServers
from broker.saml.catalog import SpCatalog

_REFUSALS = {Refusal.REQUEST_DENIED: slo.REQUEST_DENIED, Refusal.UNKNOWN_PRINCIPAL: slo.UNKNOWN_PRINCIPAL}


def _incoming(message: IncomingMessage) -> IncomingRequest:
    binding = BINDING_HTTP_REDIRECT if message.binding == REDIRECT else BINDING_HTTP_POST
    return IncomingRequest(binding, message.message, message.relay_state, message.sig_alg, message.signature,
                           message.raw_query)


def _outgoing(out: slo.Outgoing) -> Redirect | PostForm:
    if out.binding == BINDING_HTTP_POST:
        return PostForm(out.url, out.fields, purpose="signing_out")
    return Redirect(out.url, 303)


class SamlAppLogout:
    """``catalog()``: the registered SPs as they are now."""

    def __init__(self, servers: IdpServers, catalog: Callable[[], SpCatalog]) -> None:
        self._servers, self._catalog = servers, catalog

    def read_request(self, message: IncomingMessage, now: datetime) -> AppLogoutRequest:
        try:
            logout = slo.parse_logout_request(self._servers, self._catalog(), _incoming(message), now)
        except slo.LogoutRejected as rejected:
            raise LogoutRefused(rejected.error, rejected.reply) from rejected
        reply = ReplyTo(logout.issuer, logout.request_id, logout.binding, logout.relay_state)
        return AppLogoutRequest(reply, logout.name_id, logout.name_id_format, logout.sp_name_qualifier,
                                logout.session_indexes)

    def read_response(self, message: IncomingMessage, now: datetime, *, issuer: str, request_id: str) -> bool:
        try:
            answer = slo.parse_logout_response(self._servers, self._catalog(), _incoming(message), now,
                                               expected_issuer=issuer, expected_request_id=request_id)
        except slo.LogoutRejected as rejected:
            raise LogoutRefused(rejected.error, rejected.reply) from rejected
        return answer.success

    def request(self, participant: Participant, sid: str, relay_state: str, now: datetime) -> Sent | None:
        if participant.protocol is not Protocol.SAML:
            return None
        out = slo.logout_request(self._servers, self._catalog(), participant.party_id, participant.subject,
                                 participant.name_id_format, sid, relay_state, now)
        return Sent(_outgoing(out), out.message_id) if out is not None else None

    def answer(self, reply: ReplyTo, *, partial: bool = False) -> Redirect | PostForm | None:
        out = slo.logout_response(self._servers, self._catalog(), reply, slo.SUCCESS,
                                  slo.PARTIAL_LOGOUT if partial else None)
        return _outgoing(out) if out is not None else None

    def refuse(self, reply: ReplyTo, error: errors.BrokerError,
               refusal: Refusal | None = None) -> Redirect | PostForm | None:
        sub = _REFUSALS[refusal] if refusal is not None else error.saml_substatus
        out = slo.logout_response(self._servers, self._catalog(), reply, error.saml_status, sub, error.message)
        return _outgoing(out) if out is not None else None


_check: type[AppLogout] = SamlAppLogout
