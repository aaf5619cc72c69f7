"""The SAML IdP's answers to the SPs that start logins, as a ``DownstreamAdapter`` (``broker.core.protocol_ports``).

A signed Response over the HTTP-POST binding (``saml_responses``) whose NameID the SSO session keeps, so single
logout can name the person to the SP as it knows them (SAML Core §3.7.1); errors as a Response with the error's
status codes, to an SP that is still registered.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from broker.core import errors
from broker.core.model import LoginRequest, LoginResult, Protocol, UpstreamParty
from broker.core.outcomes import PostForm, Redirect
from broker.core.protocol_ports import DownstreamAdapter, DownstreamAnswer
from broker.core.sessions import Participant
from broker.downstream.saml_responses import error_response, session_answer
from broker.downstream.saml_server import IdpServers
from broker.saml.catalog import SpCatalog


class SamlAnswers:
    """``catalog()``: the registered SPs as they are now (a registry reload swaps the catalog)."""

    def __init__(self, servers: IdpServers, catalog: Callable[[], SpCatalog]) -> None:
        self._servers, self._catalog = servers, catalog

    @property
    def protocol(self) -> Protocol:
        return Protocol.SAML

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
