"""The SAML IdP's answers to the SPs that start logins, as a ``DownstreamAdapter`` (``broker.core.protocol_ports``).

A signed Response over the HTTP-POST binding (``saml_responses``) whose NameID the SSO session keeps, so single
logout can name the person to the SP as it knows them (SAML Core §3.7.1); errors as a Response with the error's
status codes, to an SP that is still registered.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from saml2 import BINDING_HTTP_POST

from broker.core import errors
from broker.core.model import LoginRequest, LoginResult, Protocol, UpstreamParty
from broker.core.outcomes import PostForm, Redirect
from broker.core.protocol_ports import REDIRECT, DownstreamAdapter, DownstreamAnswer, DownstreamMessage, RequestRefused
from broker.core.sessions import Participant
from broker.downstream.saml_requests import IncomingRequest, RequestRejected, parse_authn_request, redirect_request
from broker.downstream.saml_responses import error_response, session_answer
from broker.downstream.saml_server import IdpServers
from broker.saml.catalog import SpCatalog


def _posted(message: DownstreamMessage) -> IncomingRequest:
    fields = dict(reversed(message.fields))  # the first of repeated names, as a form's get() gives it
    if not fields.get("SAMLRequest"):
        raise RequestRejected(errors.InvalidRequest(detail="SAMLRequest missing"), None)
    return IncomingRequest(binding=BINDING_HTTP_POST, saml_request=fields["SAMLRequest"],
                           relay_state=fields.get("RelayState"), idp_hint=fields.get("idp_hint") or None)


class SamlAnswers:
    """The SAML IdP's SPs: their AuthnRequests and the answers to them. ``catalog()``: the registered SPs as they
    are now (a registry reload swaps the catalog)."""

    def __init__(self, servers: IdpServers, catalog: Callable[[], SpCatalog]) -> None:
        self._servers, self._catalog = servers, catalog

    @property
    def protocol(self) -> Protocol:
        return Protocol.SAML

    def read(self, message: DownstreamMessage, now: datetime) -> LoginRequest:
        """An AuthnRequest (``saml_requests``: the SP, its ACS URL, the signature, freshness)."""
        try:
            incoming = redirect_request(message.raw_query) if message.binding == REDIRECT else _posted(message)
            return parse_authn_request(self._servers, self._catalog(), incoming, now)
        except RequestRejected as rejected:
            raise RequestRefused(rejected.error, rejected.reply) from rejected

    def answer(self, result: LoginResult, claims: frozenset[str], sid: str, upstream: UpstreamParty | None,
               now: datetime) -> DownstreamAnswer:
        """The Response; ``upstream``'s entity ID becomes the AuthenticatingAuthority (SAML Core §2.7.2.2)."""
        form, name_id = session_answer(self._servers, self._catalog(), result,
                                       upstream.issuer if upstream else None, sid)
        login = result.request
        return DownstreamAnswer(form, Participant(login.downstream, Protocol.SAML, name_id.value, name_id.format))

    def failure(self, login: LoginRequest, error: errors.BrokerError) -> Redirect | PostForm | None:
        catalog = self._catalog()
        if login.downstream not in catalog.sps:
            return None
        return error_response(self._servers, catalog, login, error)


_check: type[DownstreamAdapter] = SamlAnswers
