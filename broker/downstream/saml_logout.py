"""Single Logout messages of the broker's SAML IdP (SAML 2.0 Core §3.7, Profiles §4.4, Bindings §3.4-3.5).

No Flask here: the web layer (``broker.web.saml_logout``) runs the chain. What is trusted:

- An incoming **LogoutRequest** (an SP starts logout) is accepted only after, in order: the size limits and
  no DOCTYPE; it parses as a LogoutRequest (pysaml2; an enveloped XML signature, if any, verified with the
  issuer's metadata certificates by the in-process backend, which ignores ``ds:KeyInfo`` keys); the Issuer
  is a registered SP; a signature is REQUIRED (Profiles §4.4.4.1 requires signing or binding-level
  integrity; the front-channel bindings have only the signature): the Redirect binding's detached signature
  over the raw query octets, or the POST binding's enveloped one; SHA-1 only for SPs in
  ``sha1_allowed_for``; Destination equals the endpoint it arrived at (Bindings §3.4.5.2, §3.5.5.2);
  IssueInstant fresh and NotOnOrAfter not passed. Whether its NameID and SessionIndex name this browser's
  session is the web layer's question (``LogoutRequestIn``).
- An incoming **LogoutResponse** (a participant answers the broker's LogoutRequest) must come from the
  participant asked, be signed by it, answer exactly the request the broker sent (InResponseTo), and be
  addressed to the broker's endpoint.
- Outgoing messages go only to endpoints from the SP's metadata, never to an address named in a message;
  they are signed (RSA-SHA256): Redirect over the query octets, POST enveloped.
"""

from __future__ import annotations

import base64
import functools
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote_plus

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, samlp
from saml2.s_utils import UnsupportedBinding
from saml2.saml import NAMEID_FORMAT_PERSISTENT, NAMEID_FORMAT_TRANSIENT, NameID
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

from broker.core import errors
from broker.core.logout_ports import ReplyTo
from broker.core.outcomes import PostForm
from broker.downstream.saml_requests import (
    MAX_XML_BYTES,
    IncomingRequest,
    RequestRejected,
    check_issue_instant,
    check_size,
    uses_sha1,
)
from broker.downstream.saml_server import IdpServers
from broker.saml import redirect_signature
from broker.saml.catalog import SpCatalog

BINDINGS = (BINDING_HTTP_REDIRECT, BINDING_HTTP_POST)  # the order of preference for what the broker sends
STATUS = "urn:oasis:names:tc:SAML:2.0:status:"
SUCCESS, PARTIAL_LOGOUT = STATUS + "Success", STATUS + "PartialLogout"
REQUESTER, RESPONDER = STATUS + "Requester", STATUS + "Responder"
UNKNOWN_PRINCIPAL, REQUEST_DENIED = STATUS + "UnknownPrincipal", STATUS + "RequestDenied"
#: a LogoutRequest the broker sends is void after this (Core §3.7.1 NotOnOrAfter)
REQUEST_VALIDITY = timedelta(minutes=5)


@dataclass(frozen=True)
class LogoutRequestIn:
    """A LogoutRequest that passed the checks of the module doc; what it asks to end is not yet checked."""

    issuer: str
    request_id: str
    binding: str
    relay_state: str | None
    name_id: str
    name_id_format: str | None
    sp_name_qualifier: str | None
    session_indexes: tuple[str, ...]


@dataclass(frozen=True)
class LogoutResponseIn:
    issuer: str
    in_response_to: str
    status: str
    substatus: str | None

    @property
    def success(self) -> bool:
        return self.status == SUCCESS


@dataclass(frozen=True)
class Outgoing:
    """A message for the browser to carry: a Redirect URL (the signed query included) or a POST form."""

    binding: str
    url: str
    message_id: str
    fields: tuple[tuple[str, str], ...] = ()

    def post_form(self) -> PostForm:
        return PostForm(self.url, self.fields)


class LogoutRejected(Exception):
    """A refused LogoutRequest/LogoutResponse; ``reply`` is set once the sender is a registered SP."""

    def __init__(self, error: errors.BrokerError, reply: ReplyTo | None = None) -> None:
        super().__init__(error.message)
        self.error, self.reply = error, reply


# -- decoding -------------------------------------------------------------------------------------------------------

def _decoded_xml(incoming: IncomingRequest) -> bytes:
    """The message's XML (DEFLATE for Redirect, Bindings §3.4.4.1; plain base64 for POST), size-limited, no DTD."""
    try:
        check_size(incoming)
    except RequestRejected as rejected:
        raise LogoutRejected(rejected.error) from rejected
    try:
        raw = base64.b64decode(incoming.saml_request)
        if incoming.binding == BINDING_HTTP_REDIRECT:
            inflater = zlib.decompressobj(-zlib.MAX_WBITS)
            raw = inflater.decompress(raw, MAX_XML_BYTES + 1)
    except (ValueError, zlib.error) as exc:
        raise LogoutRejected(errors.InvalidRequest(detail="message is not base64/DEFLATE")) from exc
    if len(raw) > MAX_XML_BYTES:
        raise LogoutRejected(errors.InvalidRequest(detail="message too large"))
    if b"<!doctype" in raw.lower():
        raise LogoutRejected(errors.InvalidRequest(detail="message carries a DOCTYPE"))
    return raw


def _endpoint(servers: IdpServers, binding: str) -> str:
    settings = servers.settings
    return settings.slo_redirect_url if binding == BINDING_HTTP_REDIRECT else settings.slo_post_url


def _certs(catalog: SpCatalog, entity_id: str) -> list[str]:
    return [redirect_signature.pem_from_base64(cert)
            for _, cert in catalog.metadata.certs(entity_id, "spsso", "signing")]


def _check_redirect_signature(servers: IdpServers, catalog: SpCatalog, issuer: str, incoming: IncomingRequest,
                              param: str, reply: ReplyTo | None) -> None:
    if incoming.signature is None:
        raise LogoutRejected(errors.InvalidSignature(detail=f"unsigned Redirect {param}"), reply)
    try:
        redirect_signature.verify(incoming.raw_query, incoming.sig_alg or "", incoming.signature,
                                  _certs(catalog, issuer), message_param=param,
                                  allow_sha1=issuer in servers.settings.sha1_allowed_for)
    except redirect_signature.RedirectSignatureError as exc:
        raise LogoutRejected(errors.InvalidSignature(detail=str(exc)), reply) from exc


def _check_xml_signature_algorithms(servers: IdpServers, issuer: str, message: Any, reply: ReplyTo | None) -> None:
    if issuer not in servers.settings.sha1_allowed_for and uses_sha1(message.signature):
        raise LogoutRejected(errors.InvalidSignature(detail="SHA-1 signature from an SP not allowed it"), reply)


# -- LogoutRequest from an SP ---------------------------------------------------------------------------------------

def parse_logout_request(servers: IdpServers, catalog: SpCatalog, incoming: IncomingRequest,
                         now: datetime) -> LogoutRequestIn:
    """A LogoutRequest checked as listed in the module doc; ``LogoutRejected`` otherwise."""
    _decoded_xml(incoming)
    try:
        parsed = servers.server(catalog).parse_logout_request(incoming.saml_request, incoming.binding)
    except Exception as exc:  # pysaml2 raises many kinds, mostly IncorrectlySigned wrapping the cause
        name = type(exc).__name__
        cause = f"; cause {type(exc.__cause__).__name__}" if exc.__cause__ else ""
        if name in ("IncorrectlySigned", "SignatureError", "MissingKey"):
            raise LogoutRejected(errors.InvalidSignature(detail=f"{name}{cause}")) from exc
        raise LogoutRejected(errors.InvalidRequest(detail=f"unparseable LogoutRequest: {name}{cause}")) from exc
    message = parsed.message if parsed is not None else None
    if message is None or message.issuer is None:
        raise LogoutRejected(errors.InvalidRequest(detail="LogoutRequest without Issuer"))
    issuer = str(message.issuer.text or "").strip()
    if issuer not in catalog.sps:
        raise LogoutRejected(errors.UnknownParty(detail=f"LogoutRequest from unknown SP {issuer[:200]!r}"))
    reply = ReplyTo(issuer, str(message.id), incoming.binding, incoming.relay_state)
    if incoming.binding == BINDING_HTTP_REDIRECT:
        _check_redirect_signature(servers, catalog, issuer, incoming, "SAMLRequest", reply)
    elif message.signature is None:
        raise LogoutRejected(errors.InvalidSignature(detail="unsigned POST LogoutRequest"), reply)
    else:
        _check_xml_signature_algorithms(servers, issuer, message, reply)
    if message.destination != _endpoint(servers, incoming.binding):
        raise LogoutRejected(errors.InvalidRequest(detail="Destination is not this endpoint"), reply)
    try:
        check_issue_instant(servers, message, now)
        _check_not_on_or_after(servers, message, now)
    except errors.BrokerError as exc:
        raise LogoutRejected(exc, reply) from exc
    name_id = message.name_id
    if name_id is None or not name_id.text:
        raise LogoutRejected(errors.InvalidRequest(detail="LogoutRequest without a plain NameID"), reply)
    return LogoutRequestIn(
        issuer=issuer, request_id=str(message.id), binding=incoming.binding, relay_state=incoming.relay_state,
        name_id=str(name_id.text).strip(), name_id_format=name_id.format, sp_name_qualifier=name_id.sp_name_qualifier,
        session_indexes=tuple(str(si.text or "").strip() for si in message.session_index or []),
    )


def _check_not_on_or_after(servers: IdpServers, message: Any, now: datetime) -> None:
    if not message.not_on_or_after:
        return
    try:
        until = datetime.fromisoformat(str(message.not_on_or_after).replace("Z", "+00:00"))
    except ValueError as exc:
        raise errors.InvalidRequest(detail="NotOnOrAfter is not a dateTime") from exc
    if until.tzinfo is None or now >= until + servers.settings.clock_skew:
        raise errors.RequestExpired(detail="LogoutRequest past its NotOnOrAfter")


# -- LogoutResponse from a participant ------------------------------------------------------------------------------

def parse_logout_response(servers: IdpServers, catalog: SpCatalog, incoming: IncomingRequest, now: datetime, *,
                          expected_issuer: str, expected_request_id: str) -> LogoutResponseIn:
    """A participant's answer to the broker's LogoutRequest ``expected_request_id`` (Core §3.7.2)."""
    xml = _decoded_xml(incoming)
    try:
        message = samlp.logout_response_from_string(xml.decode("utf-8"))
    except Exception as exc:  # defusedxml refusals, bad XML, bad UTF-8
        raise LogoutRejected(errors.InvalidRequest(detail=f"unparseable LogoutResponse: {type(exc).__name__}")) from exc
    if message is None or message.issuer is None or message.status is None:
        raise LogoutRejected(errors.InvalidRequest(detail="LogoutResponse without Issuer or Status"))
    issuer = str(message.issuer.text or "").strip()
    if issuer != expected_issuer or issuer not in catalog.sps:
        raise LogoutRejected(errors.UnknownParty(detail=f"LogoutResponse from {issuer[:200]!r}, not the SP asked"))
    if incoming.binding == BINDING_HTTP_REDIRECT:
        _check_redirect_signature(servers, catalog, issuer, incoming, "SAMLResponse", None)
    else:
        try:
            servers.server(catalog).sec.correctly_signed_logout_response(xml.decode("utf-8"), must=True)
        except Exception as exc:
            raise LogoutRejected(errors.InvalidSignature(detail=f"LogoutResponse: {type(exc).__name__}")) from exc
        _check_xml_signature_algorithms(servers, issuer, message, None)
    if message.in_response_to != expected_request_id:
        raise LogoutRejected(errors.InvalidRequest(detail="InResponseTo is not the request the broker sent"))
    if message.destination != _endpoint(servers, incoming.binding):
        raise LogoutRejected(errors.InvalidRequest(detail="Destination is not this endpoint"))
    try:
        check_issue_instant(servers, message, now)
    except errors.BrokerError as exc:
        raise LogoutRejected(exc) from exc
    code = message.status.status_code
    inner = code.status_code.value if code is not None and code.status_code is not None else None
    return LogoutResponseIn(issuer, str(message.in_response_to), str(code.value if code else ""), inner)


# -- messages the broker sends --------------------------------------------------------------------------------------

def slo_endpoint(catalog: SpCatalog, entity_id: str, preferred: str | None = None,
                 response: bool = False) -> tuple[str, str] | None:
    """(binding, URL) of the SP's SingleLogoutService from its metadata, ``preferred`` binding first; for a
    response its ResponseLocation when it has one (Metadata §2.2.2). None when it publishes none."""
    order = [preferred, *BINDINGS] if preferred in BINDINGS else list(BINDINGS)
    for binding in order:
        try:
            endpoints = catalog.metadata.single_logout_service(entity_id, binding, "spsso") or []
        except UnsupportedBinding:  # pysaml2's way of saying the SP has no SingleLogoutService with it
            continue
        for endpoint in endpoints:
            location = (endpoint.get("response_location") if response else None) or endpoint.get("location")
            if location:
                return str(binding), str(location)
    return None


def logout_request(servers: IdpServers, catalog: SpCatalog, entity_id: str, subject: str, name_id_format: str | None,
                   session_index: str, relay_state: str, now: datetime) -> Outgoing | None:
    """A signed LogoutRequest to a participant (Profiles §4.4.4.1), or None when it has no SLO endpoint."""
    target = slo_endpoint(catalog, entity_id)
    if target is None:
        return None
    binding, url = target
    if name_id_format == NAMEID_FORMAT_TRANSIENT:
        name_id = NameID(format=NAMEID_FORMAT_TRANSIENT, text=subject)
    else:  # persistent, and sessions stored before formats were recorded
        name_id = NameID(format=NAMEID_FORMAT_PERSISTENT, name_qualifier=servers.settings.entity_id,
                         sp_name_qualifier=entity_id, text=subject)
    post = binding == BINDING_HTTP_POST
    request_id, message = servers.server(catalog).create_logout_request(
        url, entity_id, name_id=name_id, session_indexes=[session_index], sign=post,
        expire=(now + REQUEST_VALIDITY).strftime("%Y-%m-%dT%H:%M:%SZ"), sign_alg=SIG_RSA_SHA256,
        digest_alg=DIGEST_SHA256,
    )
    return _outgoing(servers, binding, url, str(request_id), str(message), "SAMLRequest", relay_state)


def logout_response(servers: IdpServers, catalog: SpCatalog, reply: ReplyTo, status: str,
                    substatus: str | None = None, message: str | None = None) -> Outgoing | None:
    """The signed LogoutResponse to the SP that asked (Core §3.7.2), at its metadata endpoint, preferably in the
    binding it used; None when its metadata names no SingleLogoutService."""
    target = slo_endpoint(catalog, reply.issuer, reply.binding, response=True)
    if target is None:
        return None
    binding, url = target
    inner = samlp.StatusCode(value=substatus) if substatus else None
    status_element = samlp.Status(status_code=samlp.StatusCode(value=status, status_code=inner),
                                  status_message=samlp.StatusMessage(text=message) if message else None)
    server = servers.server(catalog)
    xml = server._status_response(samlp.LogoutResponse, server._issuer(), status_element,
                                  sign=binding == BINDING_HTTP_POST, sign_alg=SIG_RSA_SHA256,
                                  digest_alg=DIGEST_SHA256, in_response_to=reply.request_id, destination=url)
    response_id = samlp.logout_response_from_string(str(xml)).id
    return _outgoing(servers, binding, url, str(response_id), str(xml), "SAMLResponse", reply.relay_state)


def _outgoing(servers: IdpServers, binding: str, url: str, message_id: str, xml: str, param: str,
              relay_state: str | None) -> Outgoing:
    if binding == BINDING_HTTP_POST:
        fields = [(param, base64.b64encode(xml.encode()).decode("ascii"))]
        if relay_state:
            fields.append(("RelayState", relay_state))
        return Outgoing(binding, url, message_id, tuple(fields))
    compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -zlib.MAX_WBITS)
    deflated = compressor.compress(xml.encode()) + compressor.flush()
    # Bindings §3.4.4.1: sign "param=value&RelayState=value&SigAlg=value" exactly as it is sent
    parts = [f"{param}={quote_plus(base64.b64encode(deflated).decode('ascii'))}"]
    if relay_state:
        parts.append(f"RelayState={quote_plus(relay_state)}")
    parts.append(f"SigAlg={quote_plus(SIG_RSA_SHA256)}")
    signed = "&".join(parts)
    signature = _private_key(str(servers.settings.key_file)).sign(signed.encode("ascii"), padding.PKCS1v15(),
                                                                 hashes.SHA256())
    query = f"{signed}&Signature={quote_plus(base64.b64encode(signature).decode('ascii'))}"
    return Outgoing(binding, url + ("&" if "?" in url else "?") + query, message_id)


@functools.lru_cache(maxsize=4)
def _private_key(path: str) -> rsa.RSAPrivateKey:
    with open(path, "rb") as handle:
        key = serialization.load_pem_private_key(handle.read(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("the IdP signing key must be RSA")
    return key
