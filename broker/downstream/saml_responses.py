"""Answers to SAML SPs: signed Responses over the HTTP-POST binding (SAML 2.0 Bindings §3.5).

Success: Response and Assertion both signed (RSA-SHA256, exclusive c14n; in one pass on one parsed tree,
``broker.saml.message_signing``), Audience = SP entity id,
SubjectConfirmationData Recipient = ACS URL, InResponseTo and NotOnOrAfter set, a pairwise persistent
NameID (SAML 2.0 Core §8.3.7) or a one-time transient one, attributes under the names and NameFormat
the SP uses, and the AuthnStatement's SessionIndex = the SSO session's ``sid`` (Core §2.7.2), which the SP
names again in a LogoutRequest (single logout, ``broker.downstream.saml_logout``). Errors: a signed Response
with the error's status codes (SAML 2.0 Core §3.2.2.2).
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from typing import Any

from saml2 import samlp
from saml2.assertion import authn_statement
from saml2.saml import NAMEID_FORMAT_PERSISTENT, NAMEID_FORMAT_TRANSIENT, NameID
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

from broker.core import errors
from broker.core.identifiers import pairwise_id
from broker.core.model import LoginRequest, LoginResult
from broker.core.outcomes import PostForm
from broker.downstream.saml_server import IdpServers
from broker.saml.attributes import to_ava
from broker.saml.catalog import SpCatalog
from broker.saml.message_signing import sign_message

AC_UNSPECIFIED = "urn:oasis:names:tc:SAML:2.0:ac:classes:unspecified"


def subject_id(servers: IdpServers, request: LoginRequest, account_id: str) -> str:
    """The persistent NameID value this SP sees for this account: stable, pairwise, opaque."""
    return pairwise_id(servers.settings.pairwise_secret, request.downstream, account_id)


def _name_id(servers: IdpServers, request: LoginRequest, account_id: str) -> Any:
    if request.state("nameid_format") == NAMEID_FORMAT_TRANSIENT:
        return NameID(format=NAMEID_FORMAT_TRANSIENT, text="_" + secrets.token_hex(20))
    return NameID(
        format=NAMEID_FORMAT_PERSISTENT,
        name_qualifier=servers.settings.entity_id,
        sp_name_qualifier=request.downstream,
        text=subject_id(servers, request, account_id),
    )


@dataclass(frozen=True)
class IssuedNameId:
    """The NameID an SP received, as the SSO session remembers it for single logout."""

    value: str
    format: str


def _form(request: LoginRequest, xml: str) -> PostForm:
    fields = [("SAMLResponse", base64.b64encode(xml.encode()).decode("ascii"))]
    if request.relay_state:
        fields.append(("RelayState", request.relay_state))
    return PostForm(request.return_to, tuple(fields))


def authn_response(servers: IdpServers, catalog: SpCatalog, result: LoginResult,
                   authenticating_authority: str | None, session_index: str | None = None) -> PostForm:
    return session_answer(servers, catalog, result, authenticating_authority, session_index)[0]


def session_answer(servers: IdpServers, catalog: SpCatalog, result: LoginResult, authenticating_authority: str | None,
                   session_index: str | None) -> tuple[PostForm, IssuedNameId]:
    """The signed Response and the NameID it carries; ``session_index`` (the SSO session's sid) becomes the
    AuthnStatement's SessionIndex (pysaml2 would put a random one there)."""
    request = result.request
    statement = authn_statement(
        authn_class=result.acr or AC_UNSPECIFIED,
        authn_auth=authenticating_authority,  # SAML 2.0 Core §2.7.2.2 AuthenticatingAuthority
        authn_instant=int(result.auth_time.timestamp()),
    )
    if session_index:
        statement.session_index = session_index
    server = servers.server(catalog)
    name_id = _name_id(servers, request, result.account.account_id)
    # create_authn_response cannot take a ready AuthnStatement; _authn_response can, given the configured policy.
    # It builds the Response unsigned; sign_message signs the Assertion, then the Response, on one parsed tree.
    response = server._authn_response(
        request.request_id, request.return_to, request.downstream,
        identity=to_ava(result.released),
        name_id=name_id,
        authn_statement=statement,
        policy=server.config.getattr("policy", "idp"),
        sign_response=False,
        sign_assertion=False,
    )
    xml = sign_message(server, response, (response.assertion,), sign_alg=SIG_RSA_SHA256, digest_alg=DIGEST_SHA256)
    return _form(request, xml), IssuedNameId(str(name_id.text), str(name_id.format))


def error_response(servers: IdpServers, catalog: SpCatalog, request: LoginRequest,
                   error: errors.BrokerError) -> PostForm:
    inner = samlp.StatusCode(value=error.saml_substatus) if error.saml_substatus else None
    status = samlp.Status(
        status_code=samlp.StatusCode(value=error.saml_status, status_code=inner),
        status_message=samlp.StatusMessage(text=error.message),
    )
    # pysaml2's public create_error_response forces the top-level code to Responder; the SP must
    # see Requester for its own mistakes (SAML 2.0 Core §3.2.2.2), so build it from the parts.
    server = servers.server(catalog)
    response = server._response(request.request_id, request.return_to, status, sign=False,
                                sp_entity_id=request.downstream)
    return _form(request, sign_message(server, response, sign_alg=SIG_RSA_SHA256, digest_alg=DIGEST_SHA256))
